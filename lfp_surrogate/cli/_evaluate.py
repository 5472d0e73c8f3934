"""``lfp-surrogate evaluate``: score a surrogate against held-out NEURON runs."""

from __future__ import annotations

HELP = (
    "score a trained surrogate (and a baseline) against held-out NEURON "
    "simulations: voltages, spikes, currents, dipole and LFP, with bootstrap "
    "intervals, written to JSON"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    from ..metrics import DEFAULT_EVAL_PROBE, DEFAULT_EVAL_SPAN
    from ._common import add_config_argument

    lo, hi = DEFAULT_EVAL_SPAN
    parser.add_argument(
        "--model", required=True, metavar="NAME|PATH", help="model folder or name"
    )
    parser.add_argument(
        "--data", required=True, metavar="DIR", help="dataset of held-out simulations"
    )
    parser.add_argument(
        "--baseline",
        default=None,
        metavar="NAME|PATH",
        help="second model compared paired by simulation (e.g. --arch linear)",
    )
    parser.add_argument("--out", required=True, metavar="FILE.json", help="report")
    parser.add_argument("--force", action="store_true", help="replace --out")
    parser.add_argument(
        "--probe",
        default=DEFAULT_EVAL_PROBE,
        metavar="'NAME [position=X,Y,Z] [rotation=RX,RY,RZ] [label=L]'",
        help="LFP probe placement (µm, degrees; default: a Neuropixels shank "
        "along the apical axis, 50 µm from it)",
    )
    parser.add_argument(
        "--probe-span",
        default=f"{lo:g},{hi:g}",
        metavar="YMIN,YMAX",
        help="contacts scored: y along the apical axis in this range (µm from "
        "the soma); 'all' for every contact",
    )
    parser.add_argument(
        "--lowpass", type=float, default=100.0, help="low-pass cut-off (Hz)"
    )
    parser.add_argument("--n-boot", type=int, default=1000, help="bootstrap resamples")
    parser.add_argument("--seed", type=int, default=0, help="seed of the bootstrap")
    parser.add_argument(
        "--spike-threshold",
        type=float,
        default=0.5,
        help="spike probability that makes a bin part of a predicted spike",
    )
    parser.add_argument(
        "--batch", type=int, default=4, help="simulations predicted side by side"
    )
    parser.add_argument(
        "--chunk", type=int, default=1000, help="bins per streaming step"
    )
    add_config_argument(parser)


def _span(text: str):
    if str(text).strip().lower() == "all":
        return None
    try:
        lo, hi = (float(v) for v in str(text).split(","))
    except ValueError:
        raise ValueError(
            f"--probe-span must be YMIN,YMAX in µm (e.g. -200,1200) or 'all', got "
            f"{text!r}"
        ) from None
    return lo, hi


def run(args) -> int:
    """Evaluate, write the report and print the headline numbers."""
    import argparse
    from pathlib import Path

    from ..metrics import evaluate, format_report, save_report
    from ._common import apply_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"--out {out} exists; pass --force to replace it")
    report = evaluate(
        args.model,
        args.data,
        baseline=args.baseline,
        probe=args.probe,
        probe_span=_span(args.probe_span),
        lowpass_hz=args.lowpass,
        n_boot=args.n_boot,
        seed=args.seed,
        spike_threshold=args.spike_threshold,
        batch=args.batch,
        chunk=args.chunk,
    )
    save_report(report, out, overwrite=args.force)
    data = report["data"]
    print(
        f"{data['n_sims']} held-out simulations ({data['scored_seconds']:.3g} s "
        f"scored), 95 % bootstrap intervals over simulations:"
    )
    print(format_report(report))
    print(f"report written to {out}")
    return 0
