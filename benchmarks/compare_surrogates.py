"""Heads, loss terms and data size compared on one held-out set, at a fixed budget.

Every run trains on the same machine for the same wall-clock budget (both
cores), with the same seed, and is judged by ``lfp_surrogate.metrics.evaluate``
on the same held-out simulations, paired with the linear baseline:

- heads: ``mh``, ``mmoe``, ``mmoeex`` (full loss, all training data);
- loss ablation (``mh``, all data): voltages only; + derived currents;
  + dipole and LFP (the full loss, shared with the heads run); and the full
  loss without each segment's linear path from its own input;
- learning curve (``mh``, full loss): 1/8, 1/4, 1/2 and all of the training
  simulations (the first ones; whole simulations).

Each run's model and report stay in ``--work``; a run whose report exists is
not repeated, so an interrupted comparison resumes. Writes the summary JSON.

Usage::

    python benchmarks/compare_surrogates.py --train data/train \
        --held-out data/held_out --budget-minutes 6 --work data/compare \
        --out benchmarks/results/compare_surrogates.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

logger = logging.getLogger("lfp_surrogate")

#: Loss presets: TrainConfig weights that switch terms off.
LOSSES = {
    "vmem": dict(w_imem=0.0, w_dipole=0.0, w_lfp=0.0),
    "vmem+imem": dict(w_dipole=0.0, w_lfp=0.0),
    "full": {},
}

#: The headline metrics copied into the summary (keys of report["metrics"]).
HEADLINE = (
    "vmem_rmse",
    "soma_clipped_rmse",
    "spike_auc",
    "spike_tpr_at_fpr_1%",
    "imem_relative_rmse",
    "dipole_x_correlation_lowpass",
    "dipole_y_correlation_lowpass",
    "dipole_z_correlation_lowpass",
    "lfp_correlation_lowpass",
)


#: Heads compared besides ``mh``.
HEADS = ("mmoe", "mmoeex")
#: Taps of each segment's own-input filter, as in the shipped model.
LOCAL_KERNEL = 64


def training_config(budget: float, seed: int, loss: str):
    """The shipped model's training settings, for ``budget`` minutes."""
    from lfp_surrogate.train import TrainConfig

    return TrainConfig(
        window=1000,
        batch_size=4,
        max_minutes=budget,
        max_epochs=1000,
        seed=seed,
        num_workers=1,
        **LOSSES[loss],
    )


def subset(train: Path, n: int, work: Path) -> Path:
    """A folder of links to the first ``n`` shards of ``train``."""
    shards = sorted(train.glob("shard-*.h5"))
    if n > len(shards):
        raise ValueError(f"asked for {n} shards, {train} holds {len(shards)}")
    folder = work / f"data_{n}"
    folder.mkdir(parents=True, exist_ok=True)
    for shard in shards[:n]:
        link = folder / shard.name
        if not link.exists():
            link.symlink_to(shard.resolve())
    return folder


def headline(metrics: dict) -> dict:
    """Value and interval of the summary metrics of one model."""
    return {
        key: dict(value=metrics[key].get("value"), ci=metrics[key].get("ci"))
        for key in HEADLINE
        if key in metrics
    }


def run_one(
    name, data, held_out, work, *, arch, loss, budget, seed, baseline, local=48
):
    """Train (unless done) and evaluate one variant; return its report."""
    from lfp_surrogate.metrics import evaluate, save_report
    from lfp_surrogate.train import train

    folder = work / name
    report_path = folder / "report.json"
    if report_path.exists():
        logger.info("%s: done before, reading %s", name, report_path)
        return json.loads(report_path.read_text())
    config = training_config(budget, seed, loss)
    t0 = time.perf_counter()
    if not (folder / "model.json").exists():
        train(
            data,
            folder,
            arch=arch,
            model_overrides=dict(local_kernel=local),
            config=config,
            resume=(folder / "checkpoints" / "last.ckpt").exists(),
        )
    train_wall = time.perf_counter() - t0
    report = evaluate(folder, held_out, baseline=baseline)
    report["run"] = dict(
        name=name,
        arch=arch,
        loss=loss,
        data=str(data),
        budget_minutes=budget,
        train_wall_s=train_wall,
        seed=seed,
    )
    save_report(report, report_path, overwrite=True)
    return report


def summarise(args, runs, n_shards) -> dict:
    """The comparison so far, as JSON types."""
    return dict(
        machine=dict(
            processor=platform.machine(),
            cores=os.cpu_count(),
            python=platform.python_version(),
        ),
        budget_minutes=args.budget_minutes,
        budget_note=(
            "every run trains for the same wall-clock minutes on this machine with "
            "both cores (torch 2 threads, 1 loader process), seed fixed"
        ),
        train=str(args.train),
        n_train_shards=n_shards,
        held_out=str(args.held_out),
        runs={
            name: dict(
                run=rep.get("run"),
                model=headline(rep["metrics"]["model"]),
                baseline=headline(rep["metrics"].get("baseline", {})),
            )
            for name, rep in runs.items()
        },
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", required=True, help="training dataset folder")
    parser.add_argument("--held-out", required=True, help="held-out dataset folder")
    parser.add_argument(
        "--budget-minutes", type=float, default=4.0, help="training budget per run"
    )
    parser.add_argument("--work", default="data/compare", help="models and reports")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--baseline",
        default=None,
        help="trained linear baseline (default: train one in WORK/linear)",
    )
    parser.add_argument(
        "--only",
        default="heads,loss,data,local",
        help="comma-separated parts to run: heads, loss, data, local",
    )
    parser.add_argument(
        "--out", default="benchmarks/results/compare_surrogates.json", help="JSON"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    from lfp_surrogate.train import train

    train_dir, held_out, work = Path(args.train), Path(args.held_out), Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    parts = set(args.only.split(","))
    n_shards = len(sorted(train_dir.glob("shard-*.h5")))

    # the linear baseline, trained like the others on all data
    base = Path(args.baseline) if args.baseline else work / "linear"
    if not (base / "model.json").exists():
        train(
            train_dir,
            base,
            arch="linear",
            config=training_config(args.budget_minutes, args.seed, "full"),
            resume=(base / "checkpoints" / "last.ckpt").exists(),
        )

    # (name, data, arch, loss, local kernel): mh_full is shared by every part
    plan = [("mh_full", train_dir, "mh", "full", LOCAL_KERNEL)]
    if "heads" in parts:
        plan += [(f"{a}_full", train_dir, a, "full", LOCAL_KERNEL) for a in HEADS]
    if "loss" in parts:
        plan += [
            ("mh_vmem", train_dir, "mh", "vmem", LOCAL_KERNEL),
            ("mh_vmem_imem", train_dir, "mh", "vmem+imem", LOCAL_KERNEL),
        ]
    if "local" in parts:
        plan.append(("mh_full_nolocal", train_dir, "mh", "full", 0))
    if "data" in parts:
        for frac in (8, 4, 2):
            n = max(2, n_shards // frac)
            plan.append(
                (
                    f"mh_full_{n}sims",
                    subset(train_dir, n, work),
                    "mh",
                    "full",
                    LOCAL_KERNEL,
                )
            )

    runs = {}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    for name, data, arch, loss, local in plan:
        runs[name] = run_one(
            name,
            data,
            held_out,
            work,
            arch=arch,
            loss=loss,
            budget=args.budget_minutes,
            seed=args.seed,
            baseline=base,
            local=local,
        )
        # the summary so far: an interrupted comparison keeps what it has
        out.write_text(json.dumps(summarise(args, runs, n_shards), indent=2))
        logger.info("%s done; summary in %s", name, out)
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
