"""``lfp-surrogate figures``: probe, head and LFP/CSD figures of a file."""

from __future__ import annotations

HELP = (
    "save figures of a shard or signals file: the cell with each probe, the cell "
    "in each head, LFP and CSD heat maps, dipole traces"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    parser.add_argument(
        "path",
        help="a dataset shard or signals file (HDF5) with extracellular signals: "
        "simulated with --probe/--head/--meg, or written by `forward`",
    )
    parser.add_argument("--out", required=True, help="folder for the PNG files")
    parser.add_argument("--sim", type=int, default=0, help="simulation to show")
    parser.add_argument("--force", action="store_true", help="replace figures")


def run(args) -> int:
    """Make and save the figures."""
    from ..figures import save_figures
    from ._common import report, with_flag_names

    names = {"out": "--out", "sim": "--sim"}
    with with_flag_names(names):
        paths = save_figures(args.path, args.out, sim=args.sim, force=args.force)
    for path in paths:
        report(str(path))
    return 0
