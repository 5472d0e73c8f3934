"""Time to build and to apply each forward operator (LFP, CSD, dipole, EEG, MEG).

The cell is ``l5_ttpc1`` (its cached geometry), a geometry file
(``CellGeometry.save``, ``.npz``) or ``synthetic`` (913 segments). Each
operator is built once (timed), then applied to 1 s of 1-ms bins
(``n_seg x 1000``) with numpy (float64) and torch (float32, batch 1 and
``--batch``; CPU, and CUDA when available). Writes JSON.

Usage::

    python benchmarks/bench_forward.py --out benchmarks/results/forward.json
    python benchmarks/bench_forward.py --geometry l5.npz --out forward.json
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

logger = logging.getLogger("lfp_surrogate.bench")


def best_of(fn, repeat):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def timed(fn):
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def load_geometry(path):
    from lfp_surrogate.cells import CellGeometry, cell_geometry

    if path == "synthetic":
        from lfp_surrogate.forward._synthetic import synthetic_geometry

        return synthetic_geometry(913, seed=0), "synthetic_geometry(913, seed=0)"
    if path and Path(path).is_file():
        return CellGeometry.load(path), str(path)
    if path:
        raise FileNotFoundError(f"--geometry: no such file {path}")
    return cell_geometry("l5_ttpc1"), "l5_ttpc1 (cached geometry)"


def build_operators(geometry, probe: str):
    import numpy as np

    import lfp_surrogate.forward as fwd

    rng = np.random.default_rng(0)
    try:
        electrodes = fwd.EEGElectrodes.from_montage("standard_1020", 90000.0)
        electrode_source = "MNE standard_1020"
    except ImportError:
        electrodes = fwd.EEGElectrodes(
            fwd.project_to_sphere(rng.normal(size=(64, 3)), 90000.0)
        )
        electrode_source = "64 random electrodes on the scalp"
    # a MEAutility shank lies along z: turn it onto the apical axis (+y)
    shank = fwd.ProbePlacement(
        probe, position=(40.0, 300.0, 0.0), rotation=(-90.0, 0.0, 0.0)
    )
    laminar = fwd.ProbePlacement("Laminar-16-100", position=(40.0, 300.0, 0.0))
    extended = fwd.ProbePlacement(
        probe,
        label=f"{probe}-10pt",
        position=(40.0, 300.0, 0.0),
        rotation=(-90.0, 0.0, 0.0),
        n_points=10,
    )
    sensors = fwd.MEGSensors.on_sphere(100, 110000.0)
    head = fwd.HeadPlacement()
    specs = {
        f"lfp_{probe}": lambda: fwd.LFPOperator(geometry, shank, inside="ignore"),
        f"lfp_{probe}_10pt": lambda: fwd.LFPOperator(
            geometry, extended, inside="ignore"
        ),
        "lfp_Laminar-16-100_pointsource": lambda: fwd.LFPOperator(
            geometry, laminar, method="pointsource", inside="ignore"
        ),
        "csd_Laminar-16-100": lambda: fwd.CSDOperator(geometry, laminar),
        "dipole": lambda: fwd.DipoleOperator(geometry),
        "eeg_four_sphere_lfpy_default": lambda: fwd.EEGOperator(
            geometry, "four_sphere_lfpy_default", electrodes, head
        ),
        "eeg_infinite_homogeneous": lambda: fwd.EEGOperator(
            geometry, "infinite_homogeneous", electrodes, head
        ),
        "meg_spherical": lambda: fwd.MEGOperator(geometry, "spherical", sensors, head),
        "meg_infinite": lambda: fwd.MEGOperator(geometry, "infinite", sensors, head),
    }
    ops = {}
    for name, build in specs.items():
        op, build_s = timed(build)
        ops[name] = (op, build_s)
        logger.info("built %s in %.3f s", name, build_s)
    return ops, electrode_source


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--geometry",
        default=None,
        help="CellGeometry .npz file, or 'synthetic' (default: the l5_ttpc1 cell)",
    )
    parser.add_argument(
        "--out", default="benchmarks/results/forward.json", help="JSON file to write"
    )
    parser.add_argument(
        "--probe", default="Neuropixels-384", help="probe for the LFP operator"
    )
    parser.add_argument(
        "--n-times", type=int, default=1000, help="time steps applied (1 s at 1 ms)"
    )
    parser.add_argument("--batch", type=int, default=16, help="torch batch size")
    parser.add_argument("--repeat", type=int, default=5, help="best of N runs")
    parser.add_argument("--force", action="store_true", help="overwrite --out")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="BLAS and torch threads (default: library defaults); set before "
        "numpy is imported, so run this script as a fresh process",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if args.threads:
        for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = str(args.threads)

    import numpy as np
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    from lfp_surrogate._io import atomic_path

    out = Path(args.out)
    if out.exists() and not args.force:
        parser.error(f"{out} exists; pass --force to overwrite it")
    geometry, source = load_geometry(args.geometry)
    ops, electrode_source = build_operators(geometry, args.probe)

    rng = np.random.default_rng(1)
    imem = rng.normal(size=(geometry.n_seg, args.n_times))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    result = {
        "geometry": source,
        "n_seg": geometry.n_seg,
        "n_times": args.n_times,
        "batch": args.batch,
        "repeat": args.repeat,
        "eeg_electrodes": electrode_source,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "blas_threads_env": os.environ.get("OPENBLAS_NUM_THREADS"),
        "devices": devices,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "operators": {},
    }
    for name, (op, build_s) in ops.items():
        entry = {
            "out_shape": list(op.out_shape),
            "unit": op.unit,
            "build_s": build_s,
            "apply_s": {},
        }
        entry["apply_s"]["numpy_float64_batch1"] = best_of(
            lambda op=op: op(imem), args.repeat
        )
        for device in devices:
            for batch in (1, args.batch):
                x = torch.as_tensor(imem, dtype=torch.float32).expand(batch, -1, -1)
                x = x.contiguous().to(device)
                op.to(device, torch.float32)(x)  # warm-up: matrix on the device

                def run(op=op, x=x, device=device):
                    op(x)
                    if device == "cuda":
                        torch.cuda.synchronize()

                key = f"torch_float32_{device}_batch{batch}"
                entry["apply_s"][key] = best_of(run, args.repeat)
        result["operators"][name] = entry
        logger.info(
            "%s: build %.3f s, apply %s",
            name,
            build_s,
            {k: f"{v * 1e3:.2f} ms" for k, v in entry["apply_s"].items()},
        )
    with atomic_path(out, suffix=".json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    logger.info("wrote %s", out)
    return result


if __name__ == "__main__":
    main()
