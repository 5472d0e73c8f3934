"""A sparse container for the input spike trains of one simulation."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import numpy as np

from .._validation import check_array, check_positive


@dataclass(frozen=True, eq=False)
class SpikeTrains:
    """Excitatory and inhibitory input spikes, one channel of each per segment.

    Parameters
    ----------
    exc_seg, inh_seg : ndarray of int32, shape (n_exc,), (n_inh,)
        Segment index of each spike (excitatory: AMPA + NMDA; inhibitory:
        GABA_A).
    exc_t, inh_t : ndarray of float64, shape (n_exc,), (n_inh,)
        Spike times (ms), in ``(0, duration]``, sorted.
    n_seg : int
        Number of segments of the cell.
    duration : float
        Duration (ms).
    """

    exc_seg: np.ndarray
    exc_t: np.ndarray
    inh_seg: np.ndarray
    inh_t: np.ndarray
    n_seg: int
    duration: float

    def __post_init__(self):
        check_positive(self.n_seg, "n_seg", integer=True)
        check_positive(self.duration, "duration")
        for kind in ("exc", "inh"):
            seg = check_array(getattr(self, f"{kind}_seg"), f"{kind}_seg", ndim=1)
            t = check_array(getattr(self, f"{kind}_t"), f"{kind}_t", ndim=1)
            if seg.shape != t.shape:
                raise ValueError(
                    f"{kind}_seg and {kind}_t must have the same length, got "
                    f"{seg.shape[0]} and {t.shape[0]}"
                )
            if seg.size and (seg.min() < 0 or seg.max() >= self.n_seg):
                raise ValueError(
                    f"{kind}_seg holds segment indices from {seg.min()} to "
                    f"{seg.max()}, outside [0, {self.n_seg - 1}] for a cell of "
                    f"{self.n_seg} segments"
                )
            if t.size and (t.min() <= 0 or t.max() > self.duration):
                raise ValueError(
                    f"{kind}_t holds spike times from {t.min():g} to {t.max():g} "
                    f"ms, outside (0, {self.duration:g}] ms (the duration)"
                )
            order = np.lexsort((seg, t))
            object.__setattr__(self, f"{kind}_seg", seg[order].astype(np.int32))
            object.__setattr__(self, f"{kind}_t", t[order].astype(np.float64))

    @property
    def n_exc(self) -> int:
        """Number of excitatory spikes."""
        return int(self.exc_t.size)

    @property
    def n_inh(self) -> int:
        """Number of inhibitory spikes."""
        return int(self.inh_t.size)

    def input_hash(self) -> str:
        """SHA-256 (16 hex digits) of the spikes, duration and segment count."""
        digest = hashlib.sha256()
        digest.update(f"{self.n_seg} {self.duration!r}".encode())
        for arr in (self.exc_seg, self.exc_t, self.inh_seg, self.inh_t):
            digest.update(np.ascontiguousarray(arr).tobytes())
        return digest.hexdigest()[:16]

    def window(self, t0: float, t1: float) -> SpikeTrains:
        """The spikes in ``(t0, t1]``, shifted by ``-t0``."""
        parts = {}
        for kind in ("exc", "inh"):
            t = getattr(self, f"{kind}_t")
            sel = (t > t0) & (t <= t1)
            parts[f"{kind}_seg"] = getattr(self, f"{kind}_seg")[sel]
            parts[f"{kind}_t"] = t[sel] - t0
        return SpikeTrains(n_seg=self.n_seg, duration=t1 - t0, **parts)

    def binned(self, interval: float = 1.0, dtype=np.float32) -> np.ndarray:
        """Spike counts per segment and output bin.

        Bin k counts the spikes in ``(k * interval, (k + 1) * interval]``, the
        same convention as the simulated voltages, so output bin k depends on
        input bins <= k only.

        Returns
        -------
        counts : ndarray, shape (2, n_seg, n_times)
            Excitatory (0) and inhibitory (1) spike counts.
        """
        n_times = int(round(self.duration / interval))
        counts = np.zeros((2, self.n_seg, n_times), dtype=dtype)
        for i, kind in enumerate(("exc", "inh")):
            t = getattr(self, f"{kind}_t")
            k = np.clip(np.ceil(t / interval).astype(np.int64) - 1, 0, n_times - 1)
            np.add.at(counts[i], (getattr(self, f"{kind}_seg"), k), 1)
        return counts
