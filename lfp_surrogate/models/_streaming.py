"""Streaming prediction of long inputs in chunks with carried context."""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor

from .._logging import logger, progress, use_log_level
from .._validation import check_positive, check_type
from ._checks import check_counts

if TYPE_CHECKING:
    from ._surrogate import Surrogate, SurrogateOutput


@dataclass(eq=False)
class StreamingState:
    """Context carried between chunks of a streamed prediction.

    Holds, for every causal convolution of the backbone (and last, for the
    local input path when the model has one), its last
    ``(kernel_size - 1) * dilation`` input bins, so a chunk is computed from
    its own bins plus this cache; the size is fixed, whatever the duration.

    Parameters
    ----------
    caches : list of Tensor
        One per convolution, shape (n_batch, channels, (kernel_size - 1) *
        dilation).
    n_batch : int
        Number of inputs streamed side by side.
    n_times : int
        Bins consumed so far.
    """

    caches: list[Tensor]
    n_batch: int
    n_times: int = 0

    @property
    def nbytes(self) -> int:
        """Memory held by the caches (bytes)."""
        return sum(c.numel() * c.element_size() for c in self.caches)


def _require_eval(model) -> None:
    from ._surrogate import Surrogate

    check_type(model, Surrogate, "model")
    if model.training:
        raise RuntimeError(
            "model is in training mode; call model.eval() before streaming "
            "prediction (dropout would make the chunks differ from one-shot "
            "prediction)"
        )


def iter_stream(
    model: Surrogate,
    chunks: Iterable[Tensor],
    state: StreamingState | None = None,
) -> Iterator[SurrogateOutput]:
    """Predict a stream given as successive chunks, one output per chunk.

    Parameters
    ----------
    model : Surrogate
        In eval mode.
    chunks : iterable of Tensor, each shape (n_batch, 2, n_seg, n_chunk)
        Successive bins of the input (any chunk lengths), dense or sparse
        COO, on any device (moved to the model's).
    state : StreamingState | None
        Where a previous stream stopped; ``None`` starts at time 0.

    Yields
    ------
    out : SurrogateOutput
        ``vmem`` (n_batch, n_seg, n_chunk) in mV and ``spike_logit``
        (n_batch, n_chunk) on the model's device; ``aux_losses`` empty.
    """
    _require_eval(model)
    device = model.vmem_mean.device
    with torch.no_grad():
        for chunk in chunks:
            chunk = check_counts(chunk, model.n_seg, "chunk").to(device)
            out, state = model.step(chunk, state)
            yield out


def predict_stream(
    model: Surrogate,
    counts: Tensor | np.ndarray,
    chunk: int = 1000,
    *,
    verbose: bool | str | int | None = None,
) -> SurrogateOutput:
    """Predict an arbitrarily long input in chunks of ``chunk`` bins.

    Equals ``model(counts)`` in eval mode (to float precision) for any
    ``chunk``, while the network's working memory depends on ``chunk``, not
    on the duration: each chunk is moved to the model's device, predicted
    with the context carried in a :class:`StreamingState`, and its output
    moved back.

    Parameters
    ----------
    model : Surrogate
        In eval mode.
    counts : Tensor | ndarray, shape (n_batch, 2, n_seg, n_times)
        Input spike counts per bin: a tensor (dense or sparse COO) on any
        device, or a numpy array (a memory map is read chunk by chunk).
    chunk : int
        Bins per step.
    verbose : bool | str | int | None
        Log level for this call (``None``: the current one).

    Returns
    -------
    out : SurrogateOutput
        ``vmem`` (n_batch, n_seg, n_times) in mV and ``spike_logit``
        (n_batch, n_times), on the device of ``counts`` (CPU for an ndarray);
        ``aux_losses`` empty.
    """
    from ._surrogate import SurrogateOutput

    _require_eval(model)
    counts = check_counts(counts, model.n_seg, convert=False)
    check_positive(chunk, "chunk", integer=True)
    out_device = counts.device if isinstance(counts, Tensor) else torch.device("cpu")
    n_batch, _, _, n_times = counts.shape
    starts = range(0, n_times, chunk)
    with use_log_level(verbose):
        logger.info(
            "Streaming prediction: %d x %d segments x %d bins in %d chunks of %d",
            n_batch,
            model.n_seg,
            n_times,
            len(starts),
            chunk,
        )
        start_time = time.perf_counter()
        pieces = _chunks(counts, chunk)
        vmem, logit = [], []
        for out in iter_stream(model, progress(pieces, total=len(starts))):
            vmem.append(out.vmem.to(out_device))
            logit.append(out.spike_logit.to(out_device))
        result = SurrogateOutput(torch.cat(vmem, -1), torch.cat(logit, -1), {})
        elapsed = time.perf_counter() - start_time
        logger.info(
            "Streaming prediction done: %d bins in %.2f s (%.0f bins/s per input)",
            n_times,
            elapsed,
            n_times / max(elapsed, 1e-12),
        )
    return result


def _chunks(counts: Tensor | np.ndarray, chunk: int) -> Iterator[Tensor]:
    """Successive slices of ``chunk`` bins (sparse: sorted once by time)."""
    n_times = counts.shape[-1]
    if isinstance(counts, np.ndarray):  # e.g. a memory map: copy chunk by chunk
        for t0 in range(0, n_times, chunk):
            yield torch.tensor(counts[..., t0 : t0 + chunk])
        return
    if counts.layout != torch.sparse_coo:
        for t0 in range(0, n_times, chunk):
            yield counts[..., t0 : t0 + chunk]
        return

    counts = counts.coalesce()
    indices, values = counts.indices(), counts.values()  # (4, nnz), (nnz,)
    order = torch.argsort(indices[3], stable=True)
    indices, values = indices[:, order], values[order]
    t = indices[3].cpu().numpy()
    for t0 in range(0, n_times, chunk):
        t1 = min(t0 + chunk, n_times)
        i0, i1 = np.searchsorted(t, [t0, t1])
        idx = indices[:, i0:i1].clone()
        idx[3] -= t0
        shape = (*counts.shape[:3], t1 - t0)
        yield torch.sparse_coo_tensor(
            idx, values[i0:i1], shape, check_invariants=False
        ).coalesce()
