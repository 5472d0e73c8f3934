"""``lfp-surrogate validate``: the surrogate against NEURON on held-out inputs."""

from __future__ import annotations

HELP = (
    "run held-out inputs through the surrogate and through full NEURON/LFPy, and "
    "write report.json (metrics with intervals, spectra, coherence, wall times, "
    "out-of-distribution scenarios) and figures"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    from ._common import add_config_argument

    parser.add_argument(
        "--model",
        default="l5_ttpc1",
        metavar="NAME|DIR",
        help="shipped model name or model folder (default: the shipped l5_ttpc1)",
    )
    parser.add_argument("--n-sims", type=int, default=20, help="held-out inputs")
    parser.add_argument(
        "--duration", type=float, default=5000.0, help="ms per held-out input"
    )
    parser.add_argument(
        "--seed", type=int, default=2000, help="root seed of the held-out inputs"
    )
    parser.add_argument("--out", required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--force", action="store_true", help="replace a non-empty --out"
    )
    parser.add_argument(
        "--probe",
        default=None,
        metavar="'NAME [position=X,Y,Z] [rotation=RX,RY,RZ] [label=L]'",
        help="scored LFP probe (default: a Neuropixels shank along the apical "
        "axis, 50 µm from it); a laminar probe for the CSD is added",
    )
    parser.add_argument(
        "--head",
        action="append",
        default=None,
        metavar="NAME",
        help="EEG head model, repeatable (default four_sphere_lfpy_default)",
    )
    parser.add_argument(
        "--no-ood",
        action="store_true",
        help="skip the out-of-distribution scenarios",
    )
    parser.add_argument("--ood-n-sims", type=int, default=2, help="inputs per scenario")
    parser.add_argument(
        "--ood-duration", type=float, default=None, help="ms per scenario input"
    )
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument(
        "--n-jobs", type=int, default=None, help="NEURON processes (default: cores)"
    )
    parser.add_argument("--device", default="cpu", help="surrogate device: cpu|cuda")
    parser.add_argument("--no-figures", action="store_true", help="skip the figures")
    add_config_argument(parser)


def run(args) -> int:
    """Validate and print the summary table."""
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
            n_sims=args.n_sims,
            duration=args.duration,
            seed=args.seed,
            probe=args.probe,
            heads=tuple(args.head or ("four_sphere_lfpy_default",)),
            ood=not args.no_ood,
            ood_n_sims=args.ood_n_sims,
            ood_duration=args.ood_duration,
            n_boot=args.n_boot,
            n_jobs=args.n_jobs,
            device=args.device,
            figures=not args.no_figures,
            force=args.force,
        )
    report(format_summary(result))
    report(f"report and figures written to {args.out}")
    return 0
