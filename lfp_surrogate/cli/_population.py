"""``lfp-surrogate population``: a column of surrogate cells, signals summed."""

from __future__ import annotations

HELP = (
    "predict the LFP, CSD, dipole, EEG and MEG of a cortical column of "
    "surrogate cells (optionally against NEURON) into an HDF5 file"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    from ._common import add_config_argument, add_forward_arguments

    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="surrogate by shipped name or folder; repeatable (cells take the "
        "models in turn)",
    )
    parser.add_argument("--n-cells", type=int, default=10, help="cells")
    parser.add_argument(
        "--depth",
        default="1000,1200",
        metavar="MIN,MAX",
        help="soma depths below the pial surface (µm); the pia is y = 0",
    )
    parser.add_argument(
        "--density", type=float, default=None, help="somata per mm³ in the column"
    )
    parser.add_argument("--radius", type=float, default=None, help="column radius (µm)")
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--seed", type=int, default=0, help="layout and inputs")
    parser.add_argument("--batch-size", type=int, default=64, help="cells per call")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument(
        "--neuron",
        action="store_true",
        help="also simulate every cell with NEURON (the reference; slow)",
    )
    parser.add_argument("--out", required=True, help="HDF5 file to write")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    add_forward_arguments(parser)
    add_config_argument(parser)


def run(args) -> int:
    """Lay out the column, predict, write."""
    import argparse
    from pathlib import Path

    from ..forward import ForwardConfig
    from ..population import (
        Population,
        column_layout,
        predict_population,
        simulate_population,
    )
    from ._common import apply_config, forward_config_from_args, report

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"--out {out} exists; pass --force to replace it")
    if not args.model:
        raise ValueError(
            "--model is required: a shipped model name or a folder written by "
            "`lfp-surrogate train` (repeat it for several cell types)"
        )
    try:
        depth = tuple(float(v) for v in str(args.depth).split(","))
    except ValueError:
        depth = ()
    if len(depth) != 2:
        raise ValueError(
            f"--depth must be two numbers MIN,MAX (µm), got {args.depth!r}"
        )
    if args.density is None and args.radius is None:
        args.radius = 100.0
    layout = column_layout(
        args.n_cells, depth, radius=args.radius, density=args.density, seed=args.seed
    )
    types = [args.model[i % len(args.model)] for i in range(args.n_cells)]
    population = Population(types, layout.positions, layout.rotations, seed=args.seed)
    config = ForwardConfig.from_dict(forward_config_from_args(args) or {})
    result = predict_population(
        population,
        args.duration,
        config,
        batch_size=args.batch_size,
        device=args.device,
    )
    reference = (
        simulate_population(population, args.duration, config) if args.neuron else None
    )
    _write(out, population, layout, result, reference)
    report(
        f"population of {args.n_cells} cells written to {out} "
        f"({result.throughput:.1f} cell-seconds per second)"
    )
    return 0


def _write(out, population, layout, result, reference) -> None:
    """Signals (and the NEURON reference under ``neuron/``) into one HDF5 file."""
    import json

    import h5py

    from .. import __version__
    from .._io import atomic_path

    with atomic_path(out, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
        f.attrs["kind"] = "lfp_surrogate.population"
        f.attrs["population"] = json.dumps(population.to_dict())
        f.attrs["column_radius"] = layout.radius
        f.attrs["column_density"] = layout.density
        f.attrs["version"] = __version__
        f.create_dataset("t", data=result.t).attrs["units"] = "ms"
        f.create_dataset("positions", data=population.positions).attrs["units"] = "µm"
        f.create_dataset("rotations", data=population.rotations).attrs["units"] = "deg"
        for prefix, signals in (("", result), ("neuron/", reference)):
            if signals is None:
                continue
            for key in signals.keys():
                dset = f.create_dataset(prefix + key, data=signals[key])
                dset.attrs["units"] = signals.units[key]
            f.attrs[f"{prefix or 'surrogate/'}wall_time"] = signals.wall_time
