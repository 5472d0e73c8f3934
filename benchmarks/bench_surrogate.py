"""Throughput of the surrogate against NEURON, both on the same cores.

Calls :func:`lfp_surrogate.bench.throughput` (the function behind
``lfp-surrogate bench``): simulated cell-seconds per wall-clock second of the
surrogate (network alone, currents, forward models, whole path to LFP +
dipole + EEG) at batch 1, 8 and 64, and of the fastest NEURON path to the same
outputs (the package's recording loop plus the same matrices on bin-mean
imem, one worker process per core), in the same run; the ratios, peak
memory, the configuration and the break-even. Writes JSON. Run it with the
CPU otherwise idle.

Usage::

    python benchmarks/bench_surrogate.py --out benchmarks/results/surrogate.json
    python benchmarks/bench_surrogate.py --model l5_ttpc1 --device auto
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="benchmarks/results/surrogate.json", help="JSON file"
    )
    parser.add_argument(
        "--model",
        default=None,
        help="shipped model name or saved model folder (default: untrained "
        "network of the default architecture)",
    )
    parser.add_argument("--cell", default=None, help="default: the model's cell")
    parser.add_argument("--batches", default="1,8,64", help="comma-separated")
    parser.add_argument("--duration", type=float, default=1000.0, help="ms per input")
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda", "auto"))
    parser.add_argument("--n-jobs", type=int, default=2, help="cores per side")
    parser.add_argument("--repeat", type=int, default=3, help="median of N runs")
    parser.add_argument(
        "--neuron-imem", default="recorded", choices=("recorded", "derived")
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from lfp_surrogate._io import atomic_path
    from lfp_surrogate.bench import format_throughput, throughput

    out = Path(args.out)
    if out.exists() and not args.force:
        parser.error(f"{out} exists; pass --force to overwrite it")
    try:
        batches = tuple(int(b) for b in args.batches.split(",") if b.strip())
    except ValueError:
        parser.error(f"--batches must be integers separated by commas: {args.batches}")
    result = throughput(
        args.model,
        cell=args.cell,
        duration=args.duration,
        batches=batches,
        device=args.device,
        n_jobs=args.n_jobs,
        repeat=args.repeat,
        seed=args.seed,
        neuron_imem=args.neuron_imem,
        verbose="INFO",
    )
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    print(format_throughput(result))
    print(f"wrote {out}")
    return result


if __name__ == "__main__":
    main()
