"""``lfp-surrogate cells``: list the named cell models."""

from __future__ import annotations

HELP = "list the named cell models"


def add_arguments(parser):
    """Add this subcommand's options."""
    parser.add_argument(
        "--build",
        metavar="NAME",
        help="build one cell in NEURON and print its segments per region",
    )


def run(args) -> int:
    """Print the catalogue (or one built cell's summary)."""
    from ..cells import REGIONS, build_cell, list_cells

    if args.build:
        cell = build_cell(args.build)
        geo = cell.geometry
        print(f"{geo.name}: {geo.n_seg} segments, hash {geo.cell_hash}")
        for code, region in enumerate(REGIONS):
            n = int((geo.region == code).sum())
            if n:
                print(f"  {region:<13} {n:5d} segments")
        return 0
    cells = list_cells()
    width = max(len(n) for n in cells)
    for name, spec in cells.items():
        print(f"{name:<{width}}  {spec.description}")
    return 0
