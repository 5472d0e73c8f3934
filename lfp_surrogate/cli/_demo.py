"""``lfp-surrogate demo``: the main job, end to end on the default cell."""

from __future__ import annotations

HELP = (
    "predict LFP, CSD, dipole, EEG and MEG of the default cell with the shipped "
    "surrogate on a held-out input, run NEURON on the same input, and print the "
    "errors and the speed ratio (a few minutes on 2 cores)"
)

#: Seed of the demo's held-out input (the shipped model never saw it).
DEMO_SEED = 31337


def add_arguments(parser):
    """Add this subcommand's options."""
    from ._common import add_config_argument

    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument("--force", action="store_true", help="replace --out")
    parser.add_argument(
        "--model", default="l5_ttpc1", metavar="NAME|DIR", help="surrogate"
    )
    parser.add_argument(
        "--duration", type=float, default=3000.0, help="input duration (ms)"
    )
    parser.add_argument("--seed", type=int, default=DEMO_SEED, help="input seed")
    add_config_argument(parser)


def run(args) -> int:
    """Run the demo and print its table."""
    import argparse

    from ..validate import format_summary, validate
    from ._common import apply_config, flag_names, report, with_flag_names

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    with with_flag_names(flag_names(parser)):
        result = validate(
            args.model,
            args.out,
            n_sims=1,
            duration=args.duration,
            seed=args.seed,
            ood=False,
            n_boot=200,
            force=args.force,
        )
    wall = result["wall_time"]
    report(
        f"\nlfp-surrogate demo: {args.duration:g} ms of held-out input to the "
        f"default cell; Neuropixels shank 50 µm from the apical axis, laminar "
        f"probe, four-sphere EEG, spherical MEG\n"
    )
    report(format_summary(result))
    report(
        f"\nNEURON took {wall['neuron_s']:.1f} s (one simulation, its 1-s warm-up "
        f"included), the surrogate {wall['surrogate_s']:.2f} s. Figures: "
        f"{args.out}/figures/, HDF5: {args.out}/neuron/ (NEURON) and "
        f"{args.out}/surrogate/ (surrogate), report: {args.out}/report.json"
    )
    return 0
