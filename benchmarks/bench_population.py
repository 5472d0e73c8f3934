"""Population throughput: surrogate cells against NEURON runs, in one run.

A cortical column of ``--n-cells`` cells (``column_layout`` at ``--density``)
is computed twice on the same cores: by the surrogate
(:func:`lfp_surrogate.population.predict_population`: batched network,
derived currents, per-cell forward maps to the LFP on a laminar probe, the
CSD, the summed dipole, EEG in the four-sphere head and MEG) and by NEURON
(:func:`lfp_surrogate.population.simulate_population`: one full simulation
per cell, the same maps). Reports the throughput of each, in cells ×
simulated seconds per wall-clock second, their ratio, and the agreement of
the summed signals (correlation and relative RMS error per signal). Writes
JSON.

Without ``--model``, the shipped model of ``--cell`` is used when there is
one; otherwise a small ``ball_and_stick`` surrogate is trained here first (a
minute), and the JSON says so: its agreement says little about a properly
trained model, its speed ratio is what a small network on a small cell gives.

Usage::

    python benchmarks/bench_population.py --out benchmarks/results/population.json
    python benchmarks/bench_population.py --model l5_ttpc1 --n-cells 10
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

PROBE = "Laminar-16-100"
HEAD = "four_sphere_lfpy_default"


def _train_small_model(folder: Path, cell: str, seed: int) -> Path:
    """A small surrogate of ``cell`` trained here (data + fit, about a minute)."""
    from lfp_surrogate.data import DatasetConfig, generate_dataset
    from lfp_surrogate.inputs import InputStatistics
    from lfp_surrogate.simulate import SimulationConfig
    from lfp_surrogate.train import TrainConfig, train

    data = folder / "data"
    generate_dataset(
        data,
        DatasetConfig(
            SimulationConfig(cell=cell, duration=1000.0),
            inputs=InputStatistics(exc_rate=6.0, inh_rate=2.0),
            n_sims=8,
            seed=seed,
        ),
        n_jobs=1,
    )
    out = folder / "model"
    train(
        data,
        out,
        arch="mh",
        model_overrides=dict(widths=32, dilations=(1, 2, 4, 8), tower_width=16),
        config=TrainConfig(window=200, batch_size=8, max_epochs=8, val_fraction=0.25),
    )
    return out


def _agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Correlation and relative RMS error of surrogate ``a`` against NEURON ``b``."""
    a = a - a.mean(axis=-1, keepdims=True)
    b = b - b.mean(axis=-1, keepdims=True)
    corr = float(np.corrcoef(a.ravel(), b.ravel())[0, 1])
    rel = float(np.sqrt(np.mean((a - b) ** 2)) / max(np.sqrt(np.mean(b**2)), 1e-30))
    return dict(correlation=corr, relative_rmse=rel)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--out", default="benchmarks/results/population.json", help="JSON file"
    )
    parser.add_argument(
        "--model", default=None, help="shipped model name or saved model folder"
    )
    parser.add_argument(
        "--cell",
        default="ball_and_stick",
        help="cell of the shipped or trained model when --model is not given",
    )
    parser.add_argument("--n-cells", type=int, default=10)
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument(
        "--density", type=float, default=1.0e5, help="somata per mm³ in the column"
    )
    parser.add_argument(
        "--depth",
        default=None,
        help="soma depths below the pia 'MIN,MAX' (µm; default: just deep "
        "enough for the cell's height)",
    )
    parser.add_argument("--batch-size", type=int, default=64, help="cells per call")
    parser.add_argument("--device", default="cpu", help="torch device")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    import torch

    from lfp_surrogate._io import atomic_path
    from lfp_surrogate.forward import ForwardConfig, HeadPlacement, ProbePlacement
    from lfp_surrogate.population import (
        Population,
        PopulationForward,
        column_layout,
        predict_population,
        simulate_population,
    )
    from lfp_surrogate.train import load_model, shipped_models

    out = Path(args.out)
    if out.exists() and not args.force:
        parser.error(f"{out} exists; pass --force to overwrite it")

    # the surrogate: given, shipped, or trained here
    provenance = "given"
    tmp = None
    model = args.model
    if model is None:
        if args.cell in shipped_models():
            model, provenance = args.cell, "shipped"
        else:
            tmp = tempfile.TemporaryDirectory(prefix="bench_population_")
            t0 = time.perf_counter()
            model = str(_train_small_model(Path(tmp.name), args.cell, args.seed))
            provenance = (
                f"no shipped model of {args.cell!r}: a small surrogate was trained "
                f"by this script ({time.perf_counter() - t0:.0f} s: 8 x 1 s of "
                f"data, 8 epochs); its agreement says little about a fully trained "
                f"model"
            )
    saved = load_model(model)
    geometry = saved.geometry

    # a column just deep enough for the cell, a laminar probe above the somata
    reach = float(np.max(np.r_[geometry.y.ravel()]))
    if args.depth:
        depth = tuple(float(v) for v in args.depth.split(","))
    else:
        depth = (reach + 100.0, reach + 300.0)
    layout = column_layout(
        args.n_cells, depth=depth, density=args.density, seed=args.seed
    )
    population = Population(
        [str(model)] * args.n_cells, layout.positions, layout.rotations, seed=args.seed
    )
    config = ForwardConfig(
        probes=[ProbePlacement(PROBE, position=(0.0, -np.mean(depth) + 400.0, 0.0))],
        inside="ignore",
        heads=[HEAD],
        head_placement=HeadPlacement(direction=(0.0, 0.0, 1.0)),
        meg=["spherical"],
    )
    t0 = time.perf_counter()
    forward = PopulationForward(population, {str(model): geometry}, config)
    build_s = time.perf_counter() - t0

    # both draw the same inputs (population seed, the model's training
    # statistics); drawing them is outside both timings
    surrogate = predict_population(
        population,
        args.duration,
        forward,
        batch_size=args.batch_size,
        device=args.device,
    )
    neuron = simulate_population(population, args.duration, forward)

    result = dict(
        benchmark="population",
        model=str(model),
        model_provenance=provenance,
        cell=geometry.name,
        n_seg=int(geometry.n_seg),
        n_parameters=int(saved.model.n_parameters),
        n_cells=args.n_cells,
        duration_ms=args.duration,
        column=dict(
            depth_um=list(depth),
            radius_um=layout.radius,
            density_per_mm3=layout.density,
        ),
        signals={k: list(v.shape) for k, v in neuron.signals.items()},
        forward_build_s=build_s,
        surrogate=dict(
            wall_s=surrogate.wall_time,
            throughput_cell_s_per_s=surrogate.throughput,
            batch_size=args.batch_size,
            device=args.device,
        ),
        neuron=dict(
            wall_s=neuron.wall_time,
            throughput_cell_s_per_s=neuron.throughput,
            note="one process, cells one after another, 1-s warm-up each included",
        ),
        speed_ratio=surrogate.throughput / neuron.throughput,
        agreement={
            key: _agreement(surrogate[key], neuron[key]) for key in neuron.keys()
        },
        hardware=dict(
            cpu=platform.processor() or platform.machine(),
            cores=os.cpu_count(),
            torch_threads=torch.get_num_threads(),
            torch=torch.__version__,
        ),
        note="throughput: cells x simulated seconds per wall-clock second; "
        "both sides in this process on the same cores; other load on the "
        "machine slows both",
    )
    with atomic_path(out, suffix=".json") as path:
        path.write_text(json.dumps(result, indent=2))
    logging.info(
        "surrogate %.2f, NEURON %.2f cell-s/s: ratio %.1f; written to %s",
        surrogate.throughput,
        neuron.throughput,
        result["speed_ratio"],
        out,
    )
    if tmp is not None:
        tmp.cleanup()
    return result


if __name__ == "__main__":
    main()
