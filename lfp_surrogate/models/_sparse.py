"""Sparse input tensors built directly from spike times."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import torch

from .._validation import check_positive

if TYPE_CHECKING:
    from ..inputs import SpikeTrains


def sparse_counts(
    spikes: SpikeTrains | Sequence[SpikeTrains],
    interval: float = 1.0,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Binned spike counts as a sparse COO tensor, without a dense copy.

    Uses the binning of :meth:`SpikeTrains.binned`: bin k counts the spikes in
    ``(k * interval, (k + 1) * interval]``.

    Parameters
    ----------
    spikes : SpikeTrains | sequence of SpikeTrains
        One input, or several of equal ``n_seg`` and duration (the batch).
    interval : float
        Bin width (ms).
    dtype : torch.dtype
        Dtype of the counts.

    Returns
    -------
    counts : Tensor, sparse COO, shape (n_batch, 2, n_seg, n_times)
        Excitatory (0) and inhibitory (1) counts, coalesced, on the CPU.
    """
    check_positive(interval, "interval")
    items = [spikes] if hasattr(spikes, "exc_t") else list(spikes)
    if not items:
        raise ValueError("spikes must hold at least one SpikeTrains, got none")
    n_seg = items[0].n_seg
    n_times = int(round(items[0].duration / interval))
    indices = []
    for b, item in enumerate(items):
        this = int(round(item.duration / interval))
        if item.n_seg != n_seg or this != n_times:
            raise ValueError(
                f"spikes must share n_seg and duration, got item {b} with "
                f"{item.n_seg} segments and {this} bins, item 0 with {n_seg} "
                f"and {n_times}"
            )
        for kind, name in enumerate(("exc", "inh")):
            t = getattr(item, f"{name}_t")
            k = np.clip(np.ceil(t / interval).astype(np.int64) - 1, 0, n_times - 1)
            seg = getattr(item, f"{name}_seg").astype(np.int64)
            indices.append(
                np.stack([np.full_like(k, b), np.full_like(k, kind), seg, k])
            )
    idx = torch.from_numpy(np.concatenate(indices, axis=1))  # (4, n_spikes)
    values = torch.ones(idx.shape[1], dtype=dtype)
    shape = (len(items), 2, n_seg, n_times)
    # indices are in range by construction: skip the invariant checks
    return torch.sparse_coo_tensor(
        idx, values, shape, check_invariants=False
    ).coalesce()
