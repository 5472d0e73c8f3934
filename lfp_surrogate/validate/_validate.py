"""Validation: the surrogate against full NEURON/LFPy runs of the same inputs.

One call draws held-out inputs, runs them through NEURON (ground-truth
voltages and the extracellular signals from NEURON's own ``i_membrane_``)
and through the surrogate, scores every metric of
:func:`lfp_surrogate.metrics.evaluate` with bootstrap intervals, adds power
spectra and coherence per frequency band, times both paths, draws the
figures, and repeats the comparison on inputs unlike the training set.
"""

from __future__ import annotations

import json
import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._logging import logger, use_log_level
from .._validation import check_device, check_positive

__all__ = ["BANDS", "OOD_SCENARIOS", "validate", "format_summary"]

#: Frequency bands (Hz) of the spectral comparison.
BANDS = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 100.0),
    "high": (100.0, 500.0),
}

#: Input statistics unlike the training set: name -> (changes, description).
OOD_SCENARIOS = {
    "stronger_drive": (
        dict(exc_rate=0.9, inh_rate=0.6),
        "excitation three times and inhibition twice the training rates",
    ),
    "synchronous_volleys": (
        dict(sync_rate=4.0, sync_fraction=0.3),
        "volleys at 4 Hz in which 30 % of the excitatory synapses fire together",
    ),
    "apical_only": (
        dict(regions=("apical_trunk", "oblique", "tuft"), exc_rate=0.6, inh_rate=0.6),
        "all input on the apical tree (twice the rate there), none on soma "
        "and basal dendrites",
    ),
    "basal_only": (
        dict(regions=("soma", "basal"), exc_rate=0.6, inh_rate=0.6),
        "all input on the soma and basal dendrites (twice the rate there)",
    ),
}

#: Metrics compared between the held-out set and each scenario.
_HEADLINE = (
    "vmem_rmse",
    "soma_clipped_rmse",
    "spike_auc",
    "imem_relative_rmse",
    "dipole_y_correlation_lowpass",
    "lfp_correlation_lowpass",
)
#: When a scenario counts as a breakdown: (metric, kind, threshold).
_BREAKDOWN = (
    ("vmem_rmse", "ratio", 1.5),
    ("soma_clipped_rmse", "ratio", 1.5),
    ("imem_relative_rmse", "ratio", 1.5),
    ("spike_auc", "drop", 0.05),
    ("dipole_y_correlation_lowpass", "drop", 0.15),
    ("lfp_correlation_lowpass", "drop", 0.15),
)


def _forward_config(probe, extra_probes, heads, meg) -> dict:
    from ..cli._common import parse_probe
    from ..forward import ForwardConfig

    probes = [parse_probe(probe) if isinstance(probe, str) else probe]
    probes += [parse_probe(p) if isinstance(p, str) else p for p in extra_probes]
    return ForwardConfig(probes=probes, heads=tuple(heads), meg=tuple(meg)).to_dict()


def _check_held_out(saved, stats, seed: int, duration: float) -> None:
    """Refuse before any simulation when the first input was trained on.

    The full check of every input follows in the evaluation.
    """
    from ..inputs import generate_inputs, simulation_seeds

    trained = saved.training_input_hashes
    if not trained:
        return
    first = generate_inputs(
        saved.geometry, duration, simulation_seeds(seed, 1)[0], stats
    )
    if first.input_hash() in trained:
        raise ValueError(
            f"seed {seed} draws inputs the model was trained on (input hash "
            f"{first.input_hash()}); validate on held-out inputs: choose another "
            f"seed"
        )


def _predict_shards(saved, neuron_dir: Path, out_dir: Path, forward: dict, device):
    """Predict each NEURON shard's inputs into a mirrored prediction file."""
    from ..forward import ForwardConfig, ForwardModel
    from ..predict import predict, read_inputs

    # the forward matrices are built once for every shard (and timed)
    t_build = time.perf_counter()
    fwd = ForwardModel(
        saved.geometry, ForwardConfig.from_dict(forward), verbose="WARNING"
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    wall = time.perf_counter() - t_build
    timing = dict(network=0.0, currents=0.0, forward=0.0)
    findings = []
    for shard in sorted(neuron_dir.glob("shard-*.h5")):
        inputs = read_inputs(shard, saved.geometry)
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predict(
                saved,
                inputs,
                forward=fwd,
                out=out_dir / shard.name,
                force=True,
                device=device,
                verbose="WARNING",
            )
        wall += time.perf_counter() - t0
        for w in caught:
            if w.category.__name__ == "InputOutOfDistributionWarning":
                findings.append(f"{shard.name}: {w.message}")
            else:
                warnings.warn_explicit(
                    w.message, w.category, w.filename, w.lineno, source=w.source
                )
        import h5py

        with h5py.File(out_dir / shard.name) as f:
            for key, value in json.loads(f.attrs["wall_time"]).items():
                timing[key] += value
    return wall, timing, findings


def _spectra(neuron_dir: Path, pred_dir: Path, names, burn: int) -> dict:
    """Welch spectra and coherence per band, NEURON vs surrogate, pooled."""
    import h5py
    from scipy.signal import coherence, welch

    out = {}
    for name in names:
        psd_true = psd_pred = coh = None
        n = 0
        for shard in sorted(neuron_dir.glob("shard-*.h5")):
            with h5py.File(shard) as ft, h5py.File(pred_dir / shard.name) as fp:
                if name not in ft or name not in fp:
                    continue
                interval = float(ft.attrs["interval"])
                fs = 1000.0 / interval
                a = ft[name][..., burn:].astype(np.float64)
                b = fp[name][..., burn:].astype(np.float64)
            # (n_sims, channels..., n_times) -> (n_channels, n_times)
            a = a.reshape(-1, a.shape[-1])
            b = b.reshape(-1, b.shape[-1])
            nper = int(min(1024, a.shape[-1]))
            f, pa = welch(a, fs=fs, nperseg=nper)
            _, pb = welch(b, fs=fs, nperseg=nper)
            with warnings.catch_warnings():
                # channels without power (the EEG reference) give 0/0
                warnings.simplefilter("ignore", RuntimeWarning)
                _, c = coherence(a, b, fs=fs, nperseg=nper)
            psd_true = pa if psd_true is None else psd_true + pa
            psd_pred = pb if psd_pred is None else psd_pred + pb
            coh = c if coh is None else coh + c
            n += 1
        if n == 0:
            continue
        psd_true, psd_pred, coh = psd_true / n, psd_pred / n, coh / n
        # channels with no power (e.g. the EEG reference) carry no information
        live = psd_true.sum(-1) > 0
        bands = {}
        for band, (lo, hi) in BANDS.items():
            sel = (f >= lo) & (f < hi)
            if not sel.any() or not live.any():
                continue
            p_true = psd_true[live][:, sel].sum(-1)
            p_pred = psd_pred[live][:, sel].sum(-1)
            bands[band] = dict(
                range_hz=[lo, hi],
                power_ratio=float(np.median(p_pred / np.maximum(p_true, 1e-300))),
                coherence=float(np.nanmedian(coh[live][:, sel].mean(-1))),
            )
        out[name] = dict(
            bands=bands,
            frequency_hz=f.tolist(),
            psd_neuron=np.median(psd_true[live], 0).tolist() if live.any() else [],
            psd_surrogate=np.median(psd_pred[live], 0).tolist() if live.any() else [],
            coherence=np.nanmedian(coh[live], 0).tolist() if live.any() else [],
            n_channels=int(live.sum()),
        )
    return out


def _compare(
    saved,
    folder: Path,
    *,
    stats,
    n_sims,
    duration,
    seed,
    forward,
    n_jobs,
    n_boot,
    device,
    spectra: bool,
    probe,
):
    """NEURON and the surrogate on the same inputs; metrics and wall times."""
    from ..data import DatasetConfig, generate_dataset
    from ..metrics import evaluate
    from ..simulate import SimulationConfig

    config = DatasetConfig(
        SimulationConfig(
            cell=saved.geometry.name,
            duration=float(duration),
            interval=float(saved.model.config.interval),
            record_imem=False,
        ),
        inputs=stats,
        n_sims=n_sims,
        seed=seed,
        forward=forward,
    )
    neuron_dir, pred_dir = folder / "neuron", folder / "surrogate"
    resume = (neuron_dir / "dataset.yaml").exists()
    t0 = time.perf_counter()
    generate_dataset(
        neuron_dir, config, n_jobs=n_jobs, resume=resume, verbose="WARNING"
    )
    wall_neuron = time.perf_counter() - t0
    wall_pred, timing, findings = _predict_shards(
        saved, neuron_dir, pred_dir, forward, device
    )
    report = evaluate(
        saved,
        neuron_dir,
        probe=probe,
        n_boot=n_boot,
        seed=seed,
        verbose="WARNING",
    )
    report["data"]["folder"] = str(neuron_dir)
    report["wall_time"] = dict(
        neuron_s=wall_neuron,
        surrogate_s=wall_pred,
        surrogate_parts_s=timing,
        speed_ratio=wall_neuron / max(wall_pred, 1e-12),
        resumed_neuron=resume,
        note="NEURON: the full simulations of this run with the forward models "
        "(warm-up included), on the worker processes; surrogate: network, "
        "currents and forward models on one process",
    )
    report["input_check"] = findings
    if spectra:
        names = [k for k in _signal_names(neuron_dir)]
        report["spectra"] = _spectra(
            neuron_dir, pred_dir, names, burn=saved.model.receptive_field
        )
    return report


def _signal_names(folder: Path) -> list:
    import h5py

    shard = sorted(folder.glob("shard-*.h5"))[0]
    names = []
    with h5py.File(shard) as f:
        for group in ("lfp", "eeg"):
            if group in f:
                names += [f"{group}/{k}" for k in f[group]]
        if "dipole" in f:
            names.append("dipole")
    return names


def _value(report, key):
    entry = report["metrics"]["model"].get(key)
    return None if entry is None else entry.get("value")


def _breakdowns(reference: dict, scenario: dict) -> list:
    """Sentences naming the metrics on which a scenario is clearly worse."""
    out = []
    for key, kind, threshold in _BREAKDOWN:
        ref, got = _value(reference, key), _value(scenario, key)
        if ref is None or got is None:
            continue
        if kind == "ratio" and got > threshold * ref:
            out.append(f"{key} {got:.3g} vs {ref:.3g} held out ({got / ref:.1f}x)")
        elif kind == "drop" and got < ref - threshold:
            out.append(f"{key} {got:.3g} vs {ref:.3g} held out")
    return out


def validate(
    model="l5_ttpc1",
    out=None,
    *,
    n_sims: int = 20,
    duration: float = 5000.0,
    seed: int = 2000,
    stats=None,
    probe: str | None = None,
    extra_probes=("Laminar-16-100 position=30,400,0 label=laminar",),
    heads=("four_sphere_lfpy_default",),
    meg=("spherical",),
    ood: bool = True,
    ood_n_sims: int = 2,
    ood_duration: float | None = None,
    n_boot: int = 1000,
    n_jobs: int | None = None,
    device: str = "cpu",
    figures: bool = True,
    force: bool = False,
    verbose: bool | str | int | None = None,
) -> dict:
    """Validate a surrogate against full NEURON/LFPy runs of held-out inputs.

    Parameters
    ----------
    model : str | path-like | SavedModel
        Shipped model name, model folder or loaded model.
    out : path-like
        Output folder: ``report.json``, ``report.txt``, ``figures/``,
        ``neuron/`` (the ground-truth shards) and ``surrogate/`` (the
        predictions, one file per shard). Built in ``<out>.partial`` (which a
        rerun with the same settings resumes) and renamed when complete; an
        existing non-empty ``out`` is refused unless ``force``, which
        replaces what a validation writes there and leaves other files alone.
    n_sims : int
        Held-out simulations.
    duration : float
        Duration of each (ms).
    seed : int
        Root seed of the held-out inputs; inputs the model was trained on
        are refused.
    stats : InputStatistics | dict | None
        Held-out input statistics (default: the model's training statistics).
    probe : str | None
        Placement of the scored LFP probe, as ``--probe`` takes it (default
        :data:`lfp_surrogate.metrics.DEFAULT_EVAL_PROBE`, a Neuropixels
        shank parallel to the apical axis that no training loss sees).
    extra_probes : sequence of str
        More placements (the default laminar probe gives the CSD).
    heads : sequence of str
        EEG head models.
    meg : sequence of str
        MEG models.
    ood : bool
        Also run :data:`OOD_SCENARIOS` (``ood_n_sims`` of ``ood_duration``
        each, default ``min(duration, 2000)`` ms).
    ood_n_sims : int
    ood_duration : float | None
    n_boot : int
        Bootstrap resamples of the intervals.
    n_jobs : int | None
        NEURON worker processes (default: one per core).
    device : str
        Device of the surrogate.
    figures : bool
        Draw the figures of the first held-out simulation.
    force : bool
        Replace an existing ``out``.
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    report : dict
        As written to ``report.json``: ``metrics`` (every metric of
        :func:`~lfp_surrogate.metrics.evaluate` with its interval),
        ``spectra`` (per signal: power ratio and coherence per band of
        :data:`BANDS`, and the spectra), ``wall_time`` (NEURON and surrogate,
        and their ratio), ``ood`` (per scenario: the headline metrics and
        ``breaks_down``, sentences naming where it fails), ``figures``.
    """
    from ..inputs import InputStatistics
    from ..metrics import DEFAULT_EVAL_PROBE
    from ..train import SavedModel, load_model

    if out is None:
        raise ValueError("out is required: the folder for the report and figures")
    for value, name in ((n_sims, "n_sims"), (ood_n_sims, "ood_n_sims")):
        check_positive(value, name, integer=True)
    check_positive(duration, "duration")
    check_positive(n_boot, "n_boot", integer=True)
    if n_jobs is not None:
        check_positive(n_jobs, "n_jobs", integer=True)
    check_device(device)
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the file {out}")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise FileExistsError(
            f"out ({out}) is not empty; choose a new folder or pass --force to "
            f"replace it"
        )
    with use_log_level(verbose):
        t_start = time.perf_counter()
        saved = model if isinstance(model, SavedModel) else load_model(model)
        training = saved.card.get("training", {})
        if stats is None:
            stats = InputStatistics.from_dict(
                training.get("input_statistics") or InputStatistics().to_dict()
            )
        elif isinstance(stats, dict):
            stats = InputStatistics.from_dict(stats)
        probe = DEFAULT_EVAL_PROBE if probe is None else probe
        forward = _forward_config(probe, extra_probes, heads, meg)
        _check_held_out(saved, stats, seed, duration)
        partial = out.with_name(out.name + ".partial")
        partial.mkdir(parents=True, exist_ok=True)
        logger.info(
            "Validating %s on %d held-out input(s) of %g ms (seed %d) against "
            "NEURON%s; working in %s",
            saved.geometry.name,
            n_sims,
            duration,
            seed,
            f", plus {len(OOD_SCENARIOS)} out-of-distribution scenarios" if ood else "",
            partial,
        )
        report = _compare(
            saved,
            partial,
            stats=stats,
            n_sims=n_sims,
            duration=duration,
            seed=seed,
            forward=forward,
            n_jobs=n_jobs,
            n_boot=n_boot,
            device=device,
            spectra=True,
            probe=probe,
        )
        logger.info(
            "Held out: NEURON %.1f s, surrogate %.1f s (%.0fx)",
            report["wall_time"]["neuron_s"],
            report["wall_time"]["surrogate_s"],
            report["wall_time"]["speed_ratio"],
        )
        report["ood"] = {}
        if ood:
            ood_duration = (
                min(duration, 2000.0) if ood_duration is None else ood_duration
            )
            for k, (name, (changes, words)) in enumerate(OOD_SCENARIOS.items()):
                scenario_stats = stats.replace(**changes)
                sub = _compare(
                    saved,
                    partial / "ood" / name,
                    stats=scenario_stats,
                    n_sims=ood_n_sims,
                    duration=ood_duration,
                    seed=seed + 1000 * (k + 1),
                    forward=forward,
                    n_jobs=n_jobs,
                    n_boot=max(50, n_boot // 10),
                    device=device,
                    spectra=False,
                    probe=probe,
                )
                report["ood"][name] = dict(
                    description=words,
                    input_statistics=scenario_stats.to_dict(),
                    n_sims=ood_n_sims,
                    duration_ms=ood_duration,
                    metrics={key: _value(sub, key) for key in _HEADLINE},
                    input_check=sub["input_check"],
                    breaks_down=_breakdowns(report, sub),
                    wall_time=sub["wall_time"],
                )
                logger.info(
                    "Out of distribution, %s: %s",
                    name,
                    "; ".join(report["ood"][name]["breaks_down"]) or "holds up",
                )
        report["figures"] = {}
        if figures:
            from ._figures import validation_figures

            shard = sorted((partial / "neuron").glob("shard-*.h5"))[0]
            paths = validation_figures(
                shard, partial / "surrogate" / shard.name, partial / "figures"
            )
            report["figures"] = {
                k: str(Path("figures") / p.name) for k, p in paths.items()
            }
        report["data"]["folder"] = str(out / "neuron")
        report["validation"] = dict(
            n_sims=n_sims,
            duration_ms=float(duration),
            seed=int(seed),
            input_statistics=stats.to_dict(),
            forward=forward,
            elapsed_s=time.perf_counter() - t_start,
        )
        with atomic_path(partial / "report.json", suffix=".json") as tmp:
            tmp.write_text(json.dumps(_jsonable(report), indent=1, allow_nan=False))
        with atomic_path(partial / "report.txt", suffix=".txt") as tmp:
            tmp.write_text(format_summary(report) + "\n")
        _move_into(partial, out)
        logger.info(
            "Validation written to %s in %.1f s", out, time.perf_counter() - t_start
        )
    return report


def _move_into(partial: Path, out: Path) -> None:
    """Rename the finished work onto ``out``.

    A new ``out`` is one rename. Into an existing one (``force``), the entries
    a validation writes (:data:`_OWN_ENTRIES`) are replaced, those of an
    earlier run that this one did not write are removed, and other files are
    left alone.
    """
    if not out.exists():
        partial.rename(out)
        return
    for name in _OWN_ENTRIES:
        target = out / name
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif target.exists() or target.is_symlink():
            target.unlink()
    for entry in sorted(partial.iterdir()):
        entry.rename(out / entry.name)
    partial.rmdir()


#: What a validation writes into its folder.
_OWN_ENTRIES = ("report.json", "report.txt", "figures", "neuron", "surrogate", "ood")


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return float(x) if np.isfinite(x) else None
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


#: Rows of the summary table: (metric, label, unit).
_ROWS = (
    ("vmem_rmse", "median per-segment V RMSE", "mV"),
    ("soma_clipped_rmse", "soma RMSE, clipped at -55 mV", "mV"),
    ("spike_auc", "soma spike AUC", ""),
    ("spike_recall", "spike recall (±2 ms)", ""),
    ("spike_precision", "spike precision (±2 ms)", ""),
    ("imem_relative_rmse", "derived imem relative RMSE (median)", ""),
    ("dipole_x_correlation_lowpass", "dipole x correlation (<100 Hz)", ""),
    ("dipole_y_correlation_lowpass", "dipole y correlation (<100 Hz)", ""),
    ("dipole_z_correlation_lowpass", "dipole z correlation (<100 Hz)", ""),
    ("lfp_correlation_lowpass", "LFP correlation, median contact (<100 Hz)", ""),
)


def format_summary(report: dict) -> str:
    """A short text table of a validation report (errors and speed ratio)."""
    lines = [f"{'metric':44s} {'value':>9s}  95% interval"]
    for key, label, unit in _ROWS:
        entry = report["metrics"]["model"].get(key)
        if entry is None or entry.get("value") is None:
            continue
        ci = entry.get("ci") or [None, None]
        # one simulation has no interval to speak of
        interval = (
            f"[{ci[0]:.3g}, {ci[1]:.3g}]"
            if len(ci) == 2 and None not in ci and ci[0] != ci[1]
            else ""
        )
        name = f"{label}{f' ({unit})' if unit else ''}"
        lines.append(f"{name:44s} {entry['value']:9.3g}  {interval}")
    wall = report["wall_time"]
    lines.append(
        f"{'wall time NEURON / surrogate (s)':44s} {wall['neuron_s']:9.1f}  "
        f"{wall['surrogate_s']:.2f} s: surrogate {wall['speed_ratio']:.0f}x faster"
    )
    for name, entry in report.get("ood", {}).items():
        verdict = "; ".join(entry["breaks_down"]) or "holds up"
        lines.append(f"out of distribution, {name}: {verdict}")
    return "\n".join(lines)
