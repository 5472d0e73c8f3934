"""``lfp-surrogate info``: describe any file or folder the package writes."""

from __future__ import annotations

import json
from pathlib import Path

HELP = "describe a file or folder written by lfp_surrogate (kind, cell, shapes, units)"


def add_arguments(parser):
    """Add this subcommand's options."""
    parser.add_argument("path", help="an HDF5 file, dataset folder or .npz file")


def run(args) -> int:
    """Print the description."""
    print(describe(args.path))
    return 0


def describe(path) -> str:
    """A human-readable description of ``path``."""
    import h5py

    from .._io import open_hdf5
    from ..data import CONFIG_NAME, DatasetConfig

    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"path: no such file or folder: {path}")
    if path.is_dir():
        if not (path / CONFIG_NAME).exists():
            raise ValueError(f"{path} is a folder but holds no {CONFIG_NAME}")
        cfg = DatasetConfig.load(path)
        shards = sorted(path.glob("shard-*.h5"))
        lines = [
            f"{path}: dataset folder",
            f"  cell: {cfg.simulation.cell}",
            f"  simulations: {cfg.n_sims} x {cfg.simulation.duration:g} ms, seed "
            f"{cfg.seed}, {len(shards)} of {cfg.n_shards} shards complete",
            f"  dt {cfg.simulation.dt:g} ms, interval {cfg.simulation.interval:g} ms "
            f"({cfg.simulation.reduce})",
        ]
        if shards:
            lines.append(describe(shards[0]).replace("\n", "\n  "))
        return "\n".join(lines)
    if path.suffix == ".npz":
        return _describe_npz(path)
    try:
        is_hdf5 = h5py.is_hdf5(path)
    except OSError:
        is_hdf5 = False
    if not is_hdf5:
        raise ValueError(
            f"{path} is not an HDF5 file or dataset folder written by lfp_surrogate"
        )
    lines = []
    with open_hdf5(path, "path", what="an HDF5 file written by lfp_surrogate") as f:
        kind = f.attrs.get("kind", "unknown (not written by lfp_surrogate)")
        lines.append(f"{path}: {kind}")
        for key in ("cell", "cell_hash", "dt", "interval", "duration", "reduce"):
            if key in f.attrs:
                lines.append(f"  {key}: {f.attrs[key]}")

        def visit(name, obj):
            if isinstance(obj, h5py.Dataset) and not name.startswith("geometry"):
                units = obj.attrs.get("units", "")
                lines.append(
                    f"  {name:<20} {str(obj.dtype):<8} {str(obj.shape):<22} {units}"
                )

        f.visititems(visit)
        for key in ("simulation", "input_statistics"):
            if key in f.attrs:
                settings = json.loads(f.attrs[key])
                text = ", ".join(f"{k}={v}" for k, v in settings.items())
                lines.append(f"  {key}: {text}")
    return "\n".join(lines)


def _describe_npz(path: Path) -> str:
    """A saved cell geometry or imem operator (``.npz``)."""
    from .._io import open_npz

    writers = "CellGeometry.save or ImemOperator.save"
    with open_npz(path, what="a geometry or operator", writer=writers) as npz:
        files = set(npz.files)
    if "header" in files:
        from ..cells import CellGeometry

        geo = CellGeometry.load(path)
        return (
            f"{path}: cell geometry of {geo.name} ({geo.n_seg} segments, hash "
            f"{geo.cell_hash}), positions in µm"
        )
    if "format" in files:
        from ..currents import ImemOperator

        op = ImemOperator.load(path)
        return (
            f"{path}: imem operator ({op.n_seg} segments, cell hash "
            f"{op.cell_hash}), vmem (mV) -> imem (nA)"
        )
    raise ValueError(f"{path} is not a geometry or operator file written by {writers}")
