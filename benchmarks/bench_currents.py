"""Time to build and to apply the exact vmem -> imem operator of ``l5_ttpc1``.

Builds the operator from the NEURON cell (in this process), then applies it
to 1 s of 1-ms bins (913 x 1000) with numpy (float64) and torch (float32,
batch 1 and 64, CPU; CUDA when available). Writes JSON.

Usage::

    python benchmarks/bench_currents.py --out benchmarks/results/currents.json
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np


def best_of(fn, repeat=5):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/currents.json")
    parser.add_argument("--cell", default="l5_ttpc1")
    args = parser.parse_args(argv)

    import torch

    from lfp_surrogate.cells import build_cell
    from lfp_surrogate.currents import ImemOperator

    cell = build_cell(args.cell)
    t0 = time.perf_counter()
    op = ImemOperator.from_sections(cell._nrn_sections, cell.cell_hash)
    build_s = time.perf_counter() - t0
    n_seg, n_times = cell.n_seg, 1000
    rng = np.random.default_rng(0)
    vmem = rng.normal(-65.0, 5.0, size=(n_seg, n_times))
    result = dict(
        cell=args.cell,
        n_seg=n_seg,
        nnz=int(op.matrix.nnz),
        build_s=build_s,
        torch_threads=torch.get_num_threads(),
        apply_s={},
    )
    result["apply_s"]["numpy_float64_1s"] = best_of(lambda: op.apply(vmem))
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        for batch in (1, 64):
            x = torch.as_tensor(vmem, dtype=torch.float32).expand(batch, -1, -1)
            x = x.contiguous().to(device)
            op.apply(x)  # build the cached sparse tensor

            def run(x=x, device=device):
                op.apply(x)
                if device == "cuda":
                    torch.cuda.synchronize()

            result["apply_s"][f"torch_float32_{device}_batch{batch}_1s"] = best_of(run)
    print(json.dumps(result, indent=2))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
