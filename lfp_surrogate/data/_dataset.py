"""Read access to a dataset folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ._config import DatasetConfig
from ._generate import shard_path
from ._shards import open_shard, read_soma_spikes, read_spikes


class Dataset:
    """A complete dataset folder, read shard by shard (nothing is preloaded).

    Parameters
    ----------
    folder : path-like
        Folder written by :func:`generate_dataset`.

    Attributes
    ----------
    config : DatasetConfig
    cell_hash : str
    n_seg : int
    """

    def __init__(self, folder):
        self.folder = Path(folder)
        self.config = DatasetConfig.load(self.folder)
        missing = [
            str(shard_path(self.folder, s))
            for s in range(self.config.n_shards)
            if not shard_path(self.folder, s).exists()
        ]
        if missing:
            raise ValueError(
                f"dataset {self.folder} is incomplete: {len(missing)} of "
                f"{self.config.n_shards} shards missing (first: {missing[0]}); "
                f"finish it with `lfp-surrogate simulate ... --resume`"
            )
        with open_shard(shard_path(self.folder, 0)) as f:
            self.cell_hash = str(f.attrs["cell_hash"])
            self.n_seg = int(f["vmem"].shape[1])
            self.t = f["t"][:]

    @property
    def n_sims(self) -> int:
        """Number of simulations."""
        return self.config.n_sims

    def _locate(self, sim: int):
        if not 0 <= sim < self.n_sims:
            raise IndexError(f"sim must be in [0, {self.n_sims - 1}], got {sim}")
        spp = self.config.sims_per_shard
        return shard_path(self.folder, sim // spp), sim % spp

    def read(self, sim: int, name: str = "vmem", t0: int = 0, t1=None) -> np.ndarray:
        """Bins ``t0:t1`` of dataset ``name`` for one simulation.

        Returns
        -------
        data : ndarray, shape (n_channels..., n_times)
            float32, in the dataset's ``units``.
        """
        path, j = self._locate(sim)
        with open_shard(path) as f:
            if name not in f:
                raise KeyError(f"{path} has no dataset {name!r}")
            return f[name][j, ..., t0:t1]

    def spikes(self, sim: int):
        """The input :class:`SpikeTrains` of one simulation."""
        path, j = self._locate(sim)
        with open_shard(path) as f:
            return read_spikes(f, j)

    def soma_spikes(self, sim: int) -> np.ndarray:
        """Somatic spike times (ms) of one simulation."""
        path, j = self._locate(sim)
        with open_shard(path) as f:
            return read_soma_spikes(f, j)

    def input_hashes(self) -> list[str]:
        """Hash of every simulation's input, in order."""
        out = []
        for s in range(self.config.n_shards):
            with open_shard(shard_path(self.folder, s)) as f:
                out.extend(h.decode() for h in f["input_hash"][:])
        return out

    def __repr__(self) -> str:
        c = self.config
        return (
            f"<Dataset {self.folder}: {c.n_sims} x {c.simulation.duration:g} ms of "
            f"{c.simulation.cell}, {self.n_seg} segments>"
        )
