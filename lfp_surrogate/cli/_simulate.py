"""``lfp-surrogate simulate``: ground-truth NEURON simulations into HDF5 shards."""

from __future__ import annotations

HELP = "simulate the detailed cell under synaptic input and write HDF5 shards"


def add_arguments(parser):
    """Add this subcommand's options."""
    from ..inputs import InputStatistics
    from ..simulate import SimulationConfig
    from ._common import add_config_argument, add_forward_arguments

    sim = SimulationConfig()
    stats = InputStatistics()
    parser.add_argument("--cell", default=sim.cell, help="catalogue name")
    parser.add_argument("--n-sims", type=int, default=1, help="simulations")
    parser.add_argument(
        "--duration", type=float, default=sim.duration, help="ms per simulation"
    )
    parser.add_argument("--seed", type=int, default=0, help="root seed")
    parser.add_argument("--out", required=True, help="dataset folder")
    parser.add_argument(
        "--sims-per-shard", type=int, default=1, help="simulations per shard"
    )
    parser.add_argument(
        "--n-jobs",
        type=int,
        default=None,
        help="worker processes (default: cores); with --scheduler local, the "
        "workers of the local Dask cluster",
    )
    parser.add_argument(
        "--scheduler",
        default=None,
        metavar="ADDRESS|local",
        help="run the simulations on a Dask cluster: the scheduler's address "
        "(tcp://host:8786), or 'local' to start one of --n-jobs worker "
        "processes here (needs the 'dask' extra; OUT must be on a file system "
        "every worker sees)",
    )
    parser.add_argument("--dt", type=float, default=sim.dt, help="time step (ms)")
    parser.add_argument(
        "--interval", type=float, default=sim.interval, help="output interval (ms)"
    )
    parser.add_argument(
        "--sample",
        action="store_true",
        help="store point samples instead of bin means",
    )
    parser.add_argument(
        "--no-imem", action="store_true", help="do not store the currents"
    )
    parser.add_argument(
        "--exc-rate",
        type=float,
        default=stats.exc_rate,
        help="excitatory rate per µm of dendrite (Hz/µm)",
    )
    parser.add_argument(
        "--inh-rate",
        type=float,
        default=stats.inh_rate,
        help="inhibitory rate per µm of dendrite (Hz/µm)",
    )
    parser.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted dataset (with its stored --probe/--head/"
        "--meg settings when none are given)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace our shards in OUT (other files are kept)",
    )
    add_forward_arguments(parser)
    add_config_argument(parser)


def run(args) -> int:
    """Generate the dataset."""
    import argparse

    from ..data import DatasetConfig, generate_dataset
    from ..inputs import InputStatistics
    from ..simulate import SimulationConfig
    from ._common import (
        apply_config,
        flag_names,
        forward_config_from_args,
        report,
        with_flag_names,
    )

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    defaults = {a.dest: a.default for a in parser._actions}
    apply_config(args, defaults)
    # the settings are checked (and named by their flags) before --out is touched
    with with_flag_names(flag_names(parser)):
        sim = SimulationConfig(
            cell=args.cell,
            duration=args.duration,
            dt=args.dt,
            interval=args.interval,
            reduce="sample" if args.sample else "mean",
            record_imem=not args.no_imem,
        )
        stats = InputStatistics(exc_rate=args.exc_rate, inh_rate=args.inh_rate)
        forward = forward_config_from_args(args)
        if not forward and args.resume:
            forward = _stored_forward(args.out)
        config = DatasetConfig(
            simulation=sim,
            inputs=stats,
            n_sims=args.n_sims,
            seed=args.seed,
            sims_per_shard=args.sims_per_shard,
            forward=forward,
        )
        generate_dataset(
            args.out,
            config,
            n_jobs=args.n_jobs,
            scheduler=args.scheduler,
            resume=args.resume,
            force=args.force,
        )
    report(f"dataset written to {args.out}")
    return 0


def _stored_forward(out) -> dict:
    """The forward settings of the dataset in ``out``, for a bare ``--resume``.

    Resuming without --probe/--head/--meg/--forward-config continues with
    what the dataset was made with, and says so.
    """
    from pathlib import Path

    from .._logging import logger
    from ..data import CONFIG_NAME, DatasetConfig
    from ..data._generate import describe_forward

    if not (Path(out) / CONFIG_NAME).is_file():
        return {}
    stored = DatasetConfig.load(out).forward
    if stored:
        logger.info(
            "Resuming with the forward settings stored in %s (%s)",
            Path(out) / CONFIG_NAME,
            describe_forward(stored),
        )
    return dict(stored)
