"""Torch datasets of training windows, streamed from HDF5 shards."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._shards import open_shard, read_soma_spikes, read_spikes


def soma_spike_bins(spike_times, n_times: int, interval: float = 1.0) -> np.ndarray:
    """Somatic spikes per output bin (bin k holds (k, k+1] intervals).

    Returns
    -------
    target : ndarray of float32, shape (n_times,)
        1 where the bin holds at least one spike, else 0.
    """
    out = np.zeros(n_times, np.float32)
    k = np.ceil(np.asarray(spike_times) / interval).astype(np.int64) - 1
    out[k[(k >= 0) & (k < n_times)]] = 1.0
    return out


class WindowDataset:
    """Windows of (input counts, vmem, soma spikes) from dataset shards.

    Nothing is preloaded: each item reads one window of one simulation from
    its shard (the files are opened lazily in each worker process).

    Parameters
    ----------
    shards : list of path-like
        Complete shard files of one cell.
    window : int
        Bins per window.
    stride : int | None
        Bins between window starts (default: ``window``).

    Notes
    -----
    Items are dicts of float32 numpy arrays: ``counts`` (2, n_seg, window)
    excitatory and inhibitory spike counts per bin, ``vmem`` (n_seg, window)
    in mV, ``spike`` (window,) somatic spike indicator, and ``index`` (the
    window's position in :attr:`windows`).
    """

    def __init__(self, shards, window: int, *, stride: int | None = None):
        from .._validation import check_positive

        check_positive(window, "window", integer=True)
        stride = window if stride is None else stride
        check_positive(stride, "stride", integer=True)
        self.shards = [Path(p) for p in shards]
        if not self.shards:
            raise ValueError("shards must hold at least one shard file, got none")
        self.window = window
        self.windows = []  # (shard, j, k0)
        self.sims = []  # (shard, j, input_hash)
        hashes = set()
        for s, path in enumerate(self.shards):
            with open_shard(path) as f:
                n_sims, n_seg, n_times = f["vmem"].shape
                if n_times < window:
                    raise ValueError(
                        f"window ({window} bins) is longer than the simulations of "
                        f"{path} ({n_times} bins)"
                    )
                hashes.add(str(f.attrs["cell_hash"]))
                self.n_seg = n_seg
                self.interval = float(f.attrs["interval"])
                for j in range(n_sims):
                    self.sims.append((s, j, f["input_hash"][j].decode()))
                    for k0 in range(0, n_times - window + 1, stride):
                        self.windows.append((s, j, k0))
        if len(hashes) > 1:
            raise ValueError(f"shards come from different cells: {sorted(hashes)}")
        self.cell_hash = hashes.pop()
        self._files = {}
        self._spikes = {}

    def __len__(self) -> int:
        return len(self.windows)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_files"] = {}  # h5py handles do not cross processes
        state["_spikes"] = {}  # rebuilt in each worker, not pickled
        return state

    def _file(self, s):
        if s not in self._files:
            self._files[s] = open_shard(self.shards[s])
        return self._files[s]

    def _sim(self, s, j):
        key = (s, j)
        if key not in self._spikes:
            f = self._file(s)
            n_times = f["vmem"].shape[2]
            spikes = read_spikes(f, j)
            soma = soma_spike_bins(read_soma_spikes(f, j), n_times, self.interval)
            # counts per 1-ms bin are small integers: a byte each in memory
            counts = spikes.binned(self.interval, dtype=np.uint16)
            if counts.max(initial=0) <= np.iinfo(np.uint8).max:
                counts = counts.astype(np.uint8)
            self._spikes[key] = (counts, soma)
        return self._spikes[key]

    def __getitem__(self, i: int) -> dict:
        s, j, k0 = self.windows[i]
        k1 = k0 + self.window
        counts, soma = self._sim(s, j)
        return dict(
            counts=counts[:, :, k0:k1].astype(np.float32),
            vmem=self._file(s)["vmem"][j, :, k0:k1],
            spike=soma[k0:k1],
            index=np.int64(i),
        )

    def spike_weights(self, boost: float = 4.0) -> np.ndarray:
        """Sampling weight per window: ``boost`` for windows with a somatic
        spike, 1 otherwise (data balancing around spikes).

        Returns
        -------
        weights : ndarray, shape (n_windows,)
        """
        weights = np.ones(len(self.windows))
        for i, (s, j, k0) in enumerate(self.windows):
            _, soma = self._sim(s, j)
            if soma[k0 : k0 + self.window].any():
                weights[i] = boost
        return weights

    def input_hashes(self) -> list[str]:
        """Hashes of the inputs of every simulation in the dataset."""
        return [h for _, _, h in self.sims]


def vmem_normalisation(shards, *, max_sims: int = 32, seed: int = 0):
    """Robust per-segment centre and scale of the membrane potential.

    The centre is the median and the scale half the 16-84 % inter-quantile
    range (equal to the standard deviation for a Gaussian, but not inflated by
    the rare action potentials), floored at 0.5 mV.

    Returns
    -------
    center, scale : ndarray of float32, shape (n_seg,)
        mV.
    """
    rng = np.random.default_rng(seed)
    sims = []
    for path in shards:
        with open_shard(path) as f:
            sims.extend((path, j) for j in range(f["vmem"].shape[0]))
    pick = rng.permutation(len(sims))[:max_sims]
    parts = []
    for i in sorted(pick):
        path, j = sims[i]
        with open_shard(path) as f:
            parts.append(f["vmem"][j])
    v = np.concatenate(parts, axis=1)
    center = np.median(v, axis=1)
    q16, q84 = np.percentile(v, [16, 84], axis=1)
    scale = np.maximum(0.5 * (q84 - q16), 0.5)
    return center.astype(np.float32), scale.astype(np.float32)
