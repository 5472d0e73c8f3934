"""``lfp-surrogate bench``: throughput of the surrogate against NEURON."""

from __future__ import annotations

HELP = (
    "throughput (simulated cell-seconds per wall-clock second) of the surrogate "
    "and of NEURON on the same cores, written to JSON"
)


def add_arguments(parser):
    """Add this subcommand's options."""
    from .._bench import DEFAULT_PROBE
    from ._common import add_config_argument

    parser.add_argument("--out", required=True, metavar="FILE.json", help="result")
    parser.add_argument(
        "--model",
        default=None,
        metavar="NAME|PATH",
        help="shipped model name or saved model folder (default: an untrained "
        "network of the default architecture; timing does not depend on weights)",
    )
    parser.add_argument(
        "--cell", default=None, help="cell (default: the model's, else l5_ttpc1)"
    )
    parser.add_argument(
        "--batches",
        default="1,8,64",
        metavar="B1,B2,...",
        help="surrogate batch sizes, comma-separated",
    )
    parser.add_argument(
        "--duration", type=float, default=1000.0, help="simulated time per input (ms)"
    )
    parser.add_argument(
        "--device",
        default="cpu",
        choices=("cpu", "cuda", "auto"),
        help="cuda: also time the surrogate on the GPU (skipped if none); auto: "
        "when one is available",
    )
    parser.add_argument(
        "--n-jobs", type=int, default=2, help="cores per side (threads, workers)"
    )
    parser.add_argument(
        "--repeat", type=int, default=3, help="timed repeats (median reported)"
    )
    parser.add_argument("--probe", default=DEFAULT_PROBE, help="LFP probe placement")
    parser.add_argument("--head", default="four_sphere_lfpy_default", help="EEG head")
    parser.add_argument("--seed", type=int, default=0, help="seed of the inputs")
    parser.add_argument(
        "--neuron-imem",
        default="recorded",
        choices=("recorded", "derived"),
        help="NEURON's imem: recorded i_membrane_ (as the ground truth) or "
        "derived from bin-mean vmem",
    )
    parser.add_argument("--force", action="store_true", help="replace --out")
    add_config_argument(parser)


def _batches(text) -> tuple[int, ...]:
    if isinstance(text, list | tuple):
        return tuple(int(b) for b in text)
    try:
        return tuple(int(b) for b in str(text).split(",") if b.strip())
    except ValueError:
        raise ValueError(
            f"--batches must be positive integers separated by commas (e.g. "
            f"1,8,64), got {text!r}"
        ) from None


def run(args) -> int:
    """Measure and write the JSON."""
    import argparse
    import json
    from pathlib import Path

    from .._io import atomic_path
    from ..bench import format_throughput, throughput
    from ._common import apply_config

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    apply_config(args, {a.dest: a.default for a in parser._actions})
    out = Path(args.out)
    if out.exists() and not args.force:
        raise FileExistsError(f"--out {out} exists; pass --force to replace it")
    result = throughput(
        args.model,
        cell=args.cell,
        duration=args.duration,
        batches=_batches(args.batches),
        probe=args.probe,
        head=args.head,
        device=args.device,
        n_jobs=args.n_jobs,
        repeat=args.repeat,
        seed=args.seed,
        neuron_imem=args.neuron_imem,
    )
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(format_throughput(result))
    print(f"wrote {out}")
    return 0
