"""Copy a trained model into the package, with its held-out metrics in the card.

The shipped model is ``lfp_surrogate/_data/models/NAME/`` (``model.safetensors``
and ``model.json``), loadable as ``load_model(NAME)``. The card gains a
``held_out`` section (the headline metrics of an ``evaluate`` report, each with
its 95 % bootstrap interval, and those of the linear baseline), how to
reproduce the model, and what it does not model.

Usage::

    python benchmarks/ship_model.py data/models/l5_ttpc1 \
        data/models/l5_ttpc1/held_out.json --name l5_ttpc1
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

PACKAGE_MODELS = Path(__file__).resolve().parents[1] / "lfp_surrogate/_data/models"
#: The shipped model must stay small enough for the wheel.
MAX_MB = 25.0


def held_out_section(report: dict) -> dict:
    """Value and interval of every metric of the model (and the baseline)."""

    def pick(metrics):
        return {
            key: dict(value=entry.get("value"), ci=entry.get("ci"))
            for key, entry in metrics.items()
            if isinstance(entry, dict) and "value" in entry
        }

    out = dict(
        data=report["data"],
        settings=report.get("settings"),
        units=report.get("units"),
        model=pick(report["metrics"]["model"]),
    )
    if "baseline" in report["metrics"]:
        out["baseline"] = pick(report["metrics"]["baseline"])
        out["baseline_model"] = report.get("baseline")
    return out


def training_input_reference(saved) -> dict:
    """Ranges of the input features over the training inputs (for predict's
    out-of-distribution warnings)."""
    from lfp_surrogate.predict import read_inputs, reference_from_inputs

    training = saved.card["training"]
    shards = sorted(Path(training["data"]).glob("shard-*.h5"))
    inputs = [s for shard in shards for s in read_inputs(shard, saved.geometry)]
    regions = training["input_statistics"]["regions"]
    return reference_from_inputs(inputs, saved.geometry, regions)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="trained model folder")
    parser.add_argument("report", help="held-out report of `lfp-surrogate evaluate`")
    parser.add_argument("--name", default="l5_ttpc1", help="name of the shipped model")
    args = parser.parse_args(argv)

    from lfp_surrogate.train import load_model

    src = Path(args.model)
    saved = load_model(src)  # refuses anything that is not a saved model
    report = json.loads(Path(args.report).read_text())
    overlap = saved.training_input_hashes & set(report["data"]["input_hashes"])
    if overlap:
        raise SystemExit(f"{args.report} scores {len(overlap)} training inputs")
    card = dict(saved.card)
    card["held_out"] = held_out_section(report)
    card["input_reference"] = training_input_reference(saved)
    card["reproduce"] = "bash benchmarks/train_shipped.sh (see the README)"
    card["limitations"] = [
        "the cell's apical dendrites carry no calcium channels: NMDA plateaus "
        "but no calcium hot zone and no BAC firing",
        "trained on the default input statistics only (inhomogeneous Poisson, "
        "0.3 Hz/um excitation and inhibition, slow modulation); other inputs "
        "are out of distribution",
        "1-ms bin means: extracellular spike waveforms are out of scope",
    ]
    dest = PACKAGE_MODELS / args.name
    dest.mkdir(parents=True, exist_ok=True)
    weights = dest / "model.safetensors"
    shutil.copyfile(src / "model.safetensors", weights)
    (dest / "model.json").write_text(json.dumps(card, indent=2))
    size = weights.stat().st_size / 1e6
    if size > MAX_MB:
        raise SystemExit(f"{weights} is {size:.1f} MB, over the {MAX_MB} MB limit")
    load_model(args.name)  # loads by name from the package
    print(f"shipped {args.name}: {dest} ({size:.1f} MB)")


if __name__ == "__main__":
    main()
