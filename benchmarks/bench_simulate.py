"""Speed of the ground-truth simulation and the statistics of its default input.

Writes JSON with

- ``speed``: wall-clock seconds per simulated second, on one core, for the
  default cell under the default input, for three ways of recording: voltages
  only, voltages and ``i_membrane_`` (our chunked loop, the dataset default),
  and LFPy's in-memory ``Cell.simulate(rec_vmem=True, rec_imem=True)``;
- ``input_statistics``: the somatic firing rate (spikes/s) per simulation and
  the NMDA plateau rate per region (plateaus/s: a segment's bin-mean voltage
  above -40 mV for at least 20 consecutive 1-ms bins; one event per segment
  and crossing).

Usage::

    python benchmarks/bench_simulate.py --out benchmarks/results/simulate.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np


def plateaus_per_region(vmem, geometry, threshold=-40.0, min_bins=20):
    """Count plateau events (segment-level) per region."""
    from lfp_surrogate.cells import REGIONS

    out = {}
    for code, region in enumerate(REGIONS):
        sel = geometry.region == code
        if region in ("soma", "axon") or not sel.any():
            continue
        above = np.pad(vmem[sel] > threshold, ((0, 0), (1, 1)))
        d = np.diff(above.astype(np.int8), axis=1)
        count = 0
        for row in d:
            start, stop = np.flatnonzero(row == 1), np.flatnonzero(row == -1)
            count += int(((stop - start) >= min_bins).sum())
        out[region] = count
    return out


def lfpy_in_memory(duration, spikes, stats):
    """Time LFPy's own in-memory path on the same cell and input."""
    import LFPy

    from lfp_surrogate.simulate import SimulationConfig, Simulator

    sim = Simulator(SimulationConfig(duration=duration))
    cell = sim.cell
    # LFPy wraps the already built sections
    lcell = LFPy.Cell(
        morphology=cell._nrn_template.all,
        dt=1 / 32,
        tstart=0.0,
        tstop=duration,
        v_init=-75.0,
        celsius=34.0,
        delete_sections=False,
        pt3d=False,
    )
    sim.set_weights(stats)
    t0 = time.perf_counter()
    from neuron import h

    def queue():
        for kinds, segs, ts in (
            (("ampa", "nmda"), spikes.exc_seg, spikes.exc_t),
            (("gaba",), spikes.inh_seg, spikes.inh_t),
        ):
            for seg, t in zip(segs.tolist(), ts.tolist()):
                for kind in kinds:
                    sim._nrn_nc[kind][seg].event(t)

    fih = h.FInitializeHandler(1, queue)
    lcell.simulate(rec_vmem=True, rec_imem=True)
    wall = time.perf_counter() - t0
    del fih
    return wall


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="benchmarks/results/simulate.json")
    parser.add_argument("--duration", type=float, default=1000.0, help="ms")
    parser.add_argument("--n-stats", type=int, default=8, help="simulations")
    parser.add_argument("--stats-duration", type=float, default=3000.0, help="ms")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--skip-lfpy", action="store_true")
    args = parser.parse_args(argv)

    from lfp_surrogate.inputs import InputStatistics, generate_inputs, simulation_seeds
    from lfp_surrogate.simulate import SimulationConfig, Simulator

    stats = InputStatistics()
    seeds = simulation_seeds(args.seed, args.n_stats + 1)
    result = dict(
        cell="l5_ttpc1",
        machine=dict(
            processor=platform.processor() or platform.machine(),
            cores=os.cpu_count(),
            python=platform.python_version(),
        ),
        input_statistics_settings=stats.to_dict(),
        speed={},
    )

    # speed, one core, same input for every path
    speed = {}
    for name, record_imem in (("vmem_only", False), ("vmem_and_imem", True)):
        cfg = SimulationConfig(duration=args.duration, record_imem=record_imem)
        sim = Simulator(cfg)
        spikes = generate_inputs(sim.geometry, args.duration, seeds[0], stats)
        res = sim.run(spikes, stats)
        speed[name] = dict(
            wall_s=res.wall_time,
            wall_s_per_simulated_s=res.wall_time / (args.duration * 1e-3),
            simulated_s_per_wall_s=(args.duration * 1e-3) / res.wall_time,
            note="includes the 1000-ms warm-up at dt=0.5 ms (2000 steps)",
        )
        print(name, speed[name], flush=True)
    result["speed"] = speed
    result["n_seg"] = sim.geometry.n_seg
    spikes_speed = spikes

    # input statistics
    cfg = SimulationConfig(duration=args.stats_duration)
    sim = Simulator(cfg)
    rates, plateaus = [], []
    for i in range(args.n_stats):
        spikes = generate_inputs(sim.geometry, cfg.duration, seeds[i + 1], stats)
        res = sim.run(spikes, stats)
        rates.append(res.soma_spikes.size / (cfg.duration * 1e-3))
        pl = plateaus_per_region(res.vmem, sim.geometry)
        plateaus.append({k: v / (cfg.duration * 1e-3) for k, v in pl.items()})
        print(f"sim {i}: {rates[-1]:.2f} Hz, plateaus/s {plateaus[-1]}", flush=True)
    regions = plateaus[0].keys()
    result["measured"] = dict(
        n_sims=args.n_stats,
        duration_ms=cfg.duration,
        soma_rate_hz=rates,
        soma_rate_median_hz=float(np.median(rates)),
        soma_silent_fraction=float(np.mean(np.array(rates) == 0)),
        plateaus_per_s=plateaus,
        plateaus_per_s_median={
            r: float(np.median([p[r] for p in plateaus])) for r in regions
        },
    )
    # LFPy last: its simulate() changes NEURON's recording state
    if not args.skip_lfpy:
        try:
            wall = lfpy_in_memory(args.duration, spikes_speed, stats)
            speed["lfpy_in_memory"] = dict(
                wall_s=wall,
                wall_s_per_simulated_s=wall / (args.duration * 1e-3),
                simulated_s_per_wall_s=(args.duration * 1e-3) / wall,
                note="LFPy.Cell.simulate(rec_vmem=True, rec_imem=True), no warm-up",
            )
            print("lfpy", speed["lfpy_in_memory"], flush=True)
        except Exception as err:  # noqa: BLE001 - report, do not fail
            speed["lfpy_in_memory"] = dict(error=repr(err))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
