"""Extracellular signals from any file of voltages (no NEURON)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import h5py
import numpy as np

from .._io import atomic_path, open_hdf5
from .._logging import logger, progress, use_log_level
from ._shards import read_cell, write_cell
from ._signals import compute_signals, signal_specs

#: Value of the ``kind`` attribute of a signals file.
SIGNALS_KIND = "lfp_surrogate.signals"
_COPY_ATTRS = ("cell", "cell_hash", "dt", "interval", "duration", "reduce", "seed")


def forward_file(
    vmem_path,
    out,
    forward: dict,
    *,
    force: bool = False,
    chunk: int = 10_000,
    verbose=None,
) -> Path:
    """Derive imem, LFP, CSD, dipole, EEG and MEG from a file's voltages.

    Parameters
    ----------
    vmem_path : path-like
        An HDF5 file with ``vmem`` (n_sims, n_seg, n_times) in mV and the
        cell's ``geometry`` and ``imem_operator`` groups (a dataset shard or a
        prediction file).
    out : path-like
        Output HDF5 file, written atomically; an existing file is refused
        unless ``force``.
    forward : dict
        Plain-dict :class:`~lfp_surrogate.forward.ForwardConfig`.
    force : bool
        Replace ``out``.
    chunk : int
        Time bins processed at once (bounds memory).
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    out : Path
        The file written, with ``imem`` (nA) and the signals under the same
        names and units as in the ground-truth shards.
    """
    from ..forward import ForwardConfig, ForwardModel

    with use_log_level(verbose):
        vmem_path, out = Path(vmem_path), Path(out)
        if not vmem_path.exists():
            raise FileNotFoundError(f"--vmem: no such file: {vmem_path}")
        if out.is_dir():
            raise ValueError(
                f"out must be the path of an HDF5 file, got the folder {out}; "
                f"give e.g. {out / 'signals.h5'} (--force never replaces a folder)"
            )
        if out.exists() and not force:
            raise FileExistsError(f"out ({out}) exists; pass --force to replace it")
        if out.resolve() == vmem_path.resolve():
            raise ValueError("out must differ from the input file")
        src = open_hdf5(
            vmem_path, "--vmem", what="a dataset shard or file with a vmem dataset"
        )
        with src:
            if "vmem" not in src or src["vmem"].ndim != 3:
                raise ValueError(
                    f"{vmem_path}: needs a dataset 'vmem' of shape (n_sims, n_seg, "
                    f"n_times)"
                )
            geometry, operator = read_cell(src, source=str(vmem_path))
            if operator is None:
                raise ValueError(
                    f"{vmem_path}: group 'imem_operator' is missing; files written "
                    f"by lfp_surrogate carry it"
                )
            vmem = src["vmem"]
            n_sims, n_seg, n_times = vmem.shape
            if n_seg != geometry.n_seg:
                raise ValueError(
                    f"{vmem_path}: vmem has {n_seg} segments but the stored cell "
                    f"{geometry.name} has {geometry.n_seg}"
                )
            t0 = time.perf_counter()
            fwd = ForwardModel(geometry, ForwardConfig.from_dict(forward))
            specs = signal_specs(fwd)
            with atomic_path(out, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
                for key in _COPY_ATTRS:
                    if key in src.attrs:
                        f.attrs[key] = src.attrs[key]
                f.attrs["kind"] = SIGNALS_KIND
                f.attrs["source"] = str(vmem_path)
                f.attrs["forward"] = json.dumps(forward)
                if "t" in src:
                    f.create_dataset("t", data=src["t"][:]).attrs["units"] = "ms"
                write_cell(f, geometry, operator)
                shape = (n_sims, n_seg, n_times)
                dsets = {"imem": f.create_dataset("imem", shape, np.float32)}
                dsets["imem"].attrs["units"] = "nA"
                for name, (chan, units, attrs) in specs.items():
                    d = f.create_dataset(name, (n_sims, *chan, n_times), np.float32)
                    d.attrs["units"] = units
                    for key, value in attrs.items():
                        d.attrs[key] = value
                    dsets[name] = d
                steps = [
                    (i, k) for i in range(n_sims) for k in range(0, n_times, chunk)
                ]
                for i, k0 in progress(steps, desc="forward", unit="chunk"):
                    k1 = min(n_times, k0 + chunk)
                    imem = operator.apply(vmem[i, :, k0:k1].astype(np.float64))
                    dsets["imem"][i, :, k0:k1] = imem
                    for name, value in compute_signals(fwd, imem).items():
                        dsets[name][i, ..., k0:k1] = value
            logger.info(
                "Wrote %d signals of %d x %d bins to %s in %.1f s",
                len(specs) + 1,
                n_sims,
                n_times,
                out,
                time.perf_counter() - t0,
            )
            return out
