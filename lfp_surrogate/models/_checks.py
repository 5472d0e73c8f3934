"""Checks of tensor inputs to the networks.

TODO: move ``check_counts`` into ``lfp_surrogate/_validation.py`` (owned by the
lead) if other stages need tensor checks; kept here so that the models package
adds no torch import to the shared helpers.
"""

from __future__ import annotations

import numpy as np
import torch

from .._validation import check_type


def check_counts(
    counts: torch.Tensor | np.ndarray,
    n_seg: int,
    name: str = "counts",
    convert: bool = True,
) -> torch.Tensor | np.ndarray:
    """Check binned input counts; return them as a tensor (or as they are).

    Parameters
    ----------
    counts : Tensor | ndarray, shape (n_batch, 2, n_seg, n_times)
        Excitatory (0) and inhibitory (1) spike counts per segment and bin,
        dense or (tensor only) sparse COO.
    n_seg : int
        Number of segments the model expects.
    name : str
        Parameter name for messages.
    convert : bool
        Whether a numpy array is returned as a tensor (sharing memory; a
        read-only array is copied) or left as it is.

    Returns
    -------
    counts : Tensor | ndarray, shape (n_batch, 2, n_seg, n_times)
        The same data.
    """
    if isinstance(counts, np.ndarray):
        _check_shape(counts.shape, n_seg, name)
        if counts.dtype.kind not in "iuf":
            raise TypeError(
                f"{name} must hold real counts (float or int), got {counts.dtype}"
            )
        if not convert:
            return counts
        # torch warns on read-only arrays (e.g. memory maps): copy those
        return torch.from_numpy(counts if counts.flags.writeable else counts.copy())
    check_type(
        counts,
        torch.Tensor,
        name,
        "a torch.Tensor (dense or sparse COO) or a numpy array",
    )
    if counts.layout not in (torch.strided, torch.sparse_coo):
        raise TypeError(
            f"{name} must be a dense or sparse COO tensor, got layout "
            f"{counts.layout}; convert with .to_sparse_coo() or .to_dense()"
        )
    _check_shape(tuple(counts.shape), n_seg, name)
    if counts.dtype == torch.bool or counts.is_complex():
        raise TypeError(
            f"{name} must hold real counts (float or int), got {counts.dtype}"
        )
    return counts


def _check_shape(shape: tuple[int, ...], n_seg: int, name: str) -> None:
    if len(shape) != 4 or shape[1] != 2 or shape[2] != n_seg or shape[3] < 1:
        fix = ""
        if len(shape) == 3 and shape[:2] == (2, n_seg):
            fix = f"; add a batch axis with {name}[None]"
        raise ValueError(
            f"{name} must have shape (n_batch, 2, n_seg, n_times) with n_seg = "
            f"{n_seg} and n_times >= 1, got {shape}{fix}"
        )


def check_segment_vector(
    value: torch.Tensor | np.ndarray, n_seg: int, name: str
) -> torch.Tensor:
    """Return ``value`` as a finite float tensor of shape (n_seg,)."""
    if not isinstance(value, torch.Tensor):
        value = torch.as_tensor(np.asarray(value, dtype=np.float64))
    if tuple(value.shape) != (n_seg,):
        raise ValueError(
            f"{name} must have shape (n_seg,) = ({n_seg},), got {tuple(value.shape)}"
        )
    if not torch.isfinite(value).all():
        raise ValueError(f"{name} must be finite, got NaN or infinite values")
    return value
