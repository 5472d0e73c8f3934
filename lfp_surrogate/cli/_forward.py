"""``lfp-surrogate forward``: extracellular signals from any file of voltages."""

from __future__ import annotations

HELP = (
    "compute LFP, CSD, dipole, EEG and MEG from the voltages in a dataset shard "
    "or prediction file (no NEURON needed)"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    from ._common import add_config_argument, add_forward_arguments

    parser.add_argument(
        "--vmem", required=True, metavar="FILE.h5", help="file with a vmem dataset"
    )
    parser.add_argument("--out", required=True, metavar="FILE.h5", help="output")
    parser.add_argument("--force", action="store_true", help="replace OUT if it exists")
    add_forward_arguments(parser)
    add_config_argument(parser)


def run(args) -> int:
    """Compute and write the signals."""
    import argparse

    from ..data import forward_file
    from ._common import (
        apply_config,
        flag_names,
        forward_config_from_args,
        report,
        with_flag_names,
    )

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    with with_flag_names(flag_names(parser)):
        config = forward_config_from_args(args)
        if not config:
            raise ValueError(
                "nothing to compute: give at least one --probe, --head or --meg "
                "(or --forward-config)"
            )
        out = forward_file(args.vmem, args.out, config, force=args.force)
    report(f"signals written to {out}")
    return 0
