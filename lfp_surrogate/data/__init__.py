"""Datasets: HDF5 shards of simulations, written atomically and resumable."""

from ._config import CONFIG_NAME, DatasetConfig, package_versions
from ._dataset import Dataset
from ._forward_file import SIGNALS_KIND, forward_file
from ._generate import generate_dataset, remove_dataset, shard_path
from ._shards import (
    SHARD_KIND,
    open_shard,
    read_cell,
    read_soma_spikes,
    read_spikes,
    write_cell,
)
from ._signals import compute_signals, signal_specs
from ._windows import WindowDataset, soma_spike_bins, vmem_normalisation

__all__ = [
    "CONFIG_NAME",
    "SHARD_KIND",
    "Dataset",
    "WindowDataset",
    "DatasetConfig",
    "SIGNALS_KIND",
    "compute_signals",
    "forward_file",
    "generate_dataset",
    "open_shard",
    "package_versions",
    "read_cell",
    "read_soma_spikes",
    "read_spikes",
    "remove_dataset",
    "shard_path",
    "signal_specs",
    "soma_spike_bins",
    "vmem_normalisation",
    "write_cell",
]
