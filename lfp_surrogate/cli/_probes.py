"""``lfp-surrogate probes``: list probes, or draw one beside a cell."""

from __future__ import annotations

HELP = "list the probes (MEAutility, probes/ folder) or plot one beside a cell"


def add_arguments(parser):
    """Add this subcommand's options."""
    parser.add_argument(
        "--plot",
        metavar="'NAME|FILE [position=X,Y,Z] [rotation=RX,RY,RZ]'",
        help="draw this placed probe with the cell's morphology",
    )
    parser.add_argument("--cell", default="l5_ttpc1", help="cell to draw")
    parser.add_argument("--out", metavar="FIG.png", help="figure file for --plot")
    parser.add_argument("--force", action="store_true", help="replace OUT")


def run(args) -> int:
    """List or plot."""
    from pathlib import Path

    from ..forward import ProbePlacement, list_probes, plot_probe_morphology
    from ._common import parse_probe, report, with_flag_names

    if not args.plot:
        rows = list_probes()
        width = max(len(name) for name, _ in rows)
        for name, source in rows:
            print(f"{name:<{width}}  {source}")
        return 0
    if not args.out:
        raise ValueError("--out FIG.png is needed with --plot")
    out = Path(args.out)
    if out.is_dir():
        raise ValueError(
            f"--out must be a figure file, got the folder {out}; give e.g. "
            f"{out / 'probe.png'}"
        )
    if out.exists() and not args.force:
        raise FileExistsError(f"--out {out} exists; pass --force to replace it")
    from ..cells import cell_geometry

    geometry = cell_geometry(args.cell)
    with with_flag_names({"probe": "--plot"}):
        placement = ProbePlacement(**parse_probe(args.plot))
    fig = plot_probe_morphology(geometry, [placement])
    from .._io import atomic_path

    with atomic_path(out, suffix=out.suffix) as tmp:
        fig.savefig(tmp, dpi=150, format=out.suffix.lstrip(".") or "png")
    report(f"figure written to {out}")
    return 0
