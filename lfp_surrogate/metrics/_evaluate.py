"""Held-out evaluation of a surrogate (and a baseline) against NEURON.

Every metric is pooled over all held-out simulations: per channel, the sums
of the errors and cross-products of each simulation are kept (sufficient
statistics), so pooling and the bootstrap over simulations hold the signals
of one batch of simulations at a time, never the whole set.
"""

from __future__ import annotations

import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._logging import logger, progress, use_log_level
from .._validation import check_positive, check_type
from ._metrics import lowpass, spike_time_match

#: Value of the ``kind`` field of a report.
REPORT_KIND = "lfp_surrogate.evaluation"
REPORT_VERSION = 1

#: The fixed evaluation probe, which no training loss uses: a Neuropixels
#: 1.0 shank (MEAutility's ``Neuropixels-384``: 384 contacts in 192 rows 20
#: µm apart, 2 per row in 4 staggered columns) turned from MEAutility's z
#: axis onto the apical axis (+y) by ``rotation=90,0,0``; its plane is 50 µm
#: from the axis (contacts at x = 50 µm, z within ±24 µm, facing the cell).
#: Its centre at y = 510 µm puts rows on every 20 µm from y = -1400 to 2420
#: µm; the 142 contacts in :data:`DEFAULT_EVAL_SPAN` (the 71 rows from -200
#: to 1200 µm) are scored.
DEFAULT_EVAL_PROBE = (
    "Neuropixels-384 position=50,510,0 rotation=90,0,0 label=eval_neuropixels"
)
#: Span (µm) along the apical axis (y, soma at 0) of the contacts scored.
DEFAULT_EVAL_SPAN = (-200.0, 1200.0)
#: False-positive rates at which the spike true-positive rate is reported.
SPIKE_FPRS = (0.0025, 0.01)
#: Tolerance (ms) of spike-time matching.
SPIKE_TOLERANCE = 2.0
#: Upper clip (mV) of the clipped soma RMSE.
SOMA_CLIP = -55.0
#: Width (µm) of the distance bins of the LFP correlation.
DISTANCE_BIN = 100.0
#: Level of the bootstrap intervals.
CI_LEVEL = 0.95

# sufficient statistics per channel: count, sum e, sum e^2, sum |e|, sum p,
# sum t, sum p^2, sum t^2, sum p t (p, t shifted by a per-channel reference)
_N, _E, _E2, _AE, _P, _T, _P2, _T2, _PT = range(9)
# signals also scored after the low-pass ("<name>_lowpass")
_FILTERED = ("imem", "dipole", "lfp")
_BOOT_CHUNK = 100


# -- statistics ---------------------------------------------------------------


def _sums(pred: np.ndarray, true: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """Sufficient statistics of one simulation, shape (n_ch, 9)."""
    p = pred - ref[:, None]
    t = true - ref[:, None]
    e = pred - true
    n = np.full(pred.shape[0], float(pred.shape[1]))
    return np.stack(
        [
            n,
            e.sum(1),
            (e * e).sum(1),
            np.abs(e).sum(1),
            p.sum(1),
            t.sum(1),
            (p * p).sum(1),
            (t * t).sum(1),
            (p * t).sum(1),
        ],
        axis=-1,
    )


def _channel_metrics(s: np.ndarray) -> dict:
    """Per-channel metrics from summed statistics ``s`` (..., n_ch, 9).

    The definitions of :func:`per_channel` (population variances).
    """
    n = s[..., _N]
    with np.errstate(invalid="ignore", divide="ignore"):
        mse = s[..., _E2] / n
        mean_e = s[..., _E] / n
        mp, mt = s[..., _P] / n, s[..., _T] / n
        var_p = s[..., _P2] / n - mp * mp
        var_t = s[..., _T2] / n - mt * mt
        cov = s[..., _PT] / n - mp * mt
        ok = var_t > 0
        corr = np.where(ok & (var_p > 0), cov / np.sqrt(var_p * var_t), np.nan)
        return dict(
            rmse=np.sqrt(mse),
            mae=s[..., _AE] / n,
            explained_variance=np.where(
                ok, 1.0 - np.maximum(mse - mean_e**2, 0.0) / var_t, np.nan
            ),
            correlation=np.clip(corr, -1.0, 1.0),
            relative_rmse=np.where(ok, np.sqrt(mse / var_t), np.nan),
        )


def _nanmedian(x: np.ndarray, axis=-1) -> np.ndarray:
    """Median ignoring NaN; NaN (without a warning) where all are NaN."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return np.nanmedian(x, axis=axis)


def _spike_times(logit, threshold: float, interval: float, burn: int):
    """Predicted spike times (ms) from the spike logits of one simulation.

    Each run of consecutive scored bins whose probability is >= ``threshold``
    is one spike, at the centre of its bin of highest probability.
    """
    cut = math.log(threshold / (1.0 - threshold))
    above = np.r_[False, logit[burn:] >= cut, False]
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    starts, stops = edges[::2], edges[1::2]  # runs [start, stop) of scored bins
    scored = logit[burn:]
    peaks = [a + int(np.argmax(scored[a:b])) for a, b in zip(starts, stops)]
    return (burn + np.asarray(peaks, dtype=float) + 0.5) * interval


@dataclass
class _Context:
    """Everything that turns one simulation's voltages into scored signals."""

    operator: object
    edges: tuple
    dipole: np.ndarray
    lfp: np.ndarray
    soma: np.ndarray
    burn: int
    interval: float
    lowpass_hz: float
    spike_threshold: float
    regions: dict
    contacts: np.ndarray
    placement: object
    refs: dict = field(default_factory=dict)

    def signals(self, vmem: np.ndarray) -> dict:
        """Scored signals of one simulation's voltages (after the burn-in).

        Parameters
        ----------
        vmem : ndarray, shape (n_seg, n_times)
            mV.

        Returns
        -------
        signals : dict of str to ndarray, each shape (n_ch, n_times - burn)
            ``vmem`` and ``soma_clipped`` (mV), ``dv`` (mV across every
            axial edge), ``imem`` (nA), ``dipole`` (nA·µm), ``lfp`` (mV),
            and ``imem_lowpass``, ``dipole_lowpass``, ``lfp_lowpass``.
        """
        vmem = np.asarray(vmem, dtype=np.float64)[:, self.burn :]
        rows, cols = self.edges
        imem = self.operator.apply(vmem)
        out = dict(
            vmem=vmem,
            dv=vmem[rows] - vmem[cols],
            soma_clipped=np.minimum(vmem[self.soma], SOMA_CLIP),
            imem=imem,
            dipole=self.dipole @ imem,
            lfp=self.lfp @ imem,
        )
        # zero phase, the same filter on prediction and truth
        for key in _FILTERED:
            out[f"{key}_lowpass"] = lowpass(out[key], self.lowpass_hz, self.interval)
        return out


class _Scorer:
    """Per-simulation statistics of one model, simulation by simulation."""

    def __init__(self, ctx: _Context):
        self.ctx = ctx
        self.sums: dict[str, list] = {}
        self.pos: list[np.ndarray] = []
        self.neg: list[np.ndarray] = []
        self.timing: list[tuple[int, int, int]] = []  # hits, n_pred, n_true

    def add(self, pred: dict, true: dict, logit, target, true_times) -> None:
        ctx = self.ctx
        for key, value in true.items():
            ref = ctx.refs.setdefault(key, value.mean(axis=1))
            self.sums.setdefault(key, []).append(_sums(pred[key], value, ref))
        scored = np.asarray(logit, dtype=np.float64)[ctx.burn :]
        self.pos.append(np.sort(scored[target]))
        self.neg.append(np.sort(scored[~target]))
        times = _spike_times(logit, ctx.spike_threshold, ctx.interval, ctx.burn)
        match = spike_time_match(times, true_times, SPIKE_TOLERANCE)
        hits = round(match["recall"] * match["n_true"]) if match["n_true"] else 0
        self.timing.append((hits, match["n_pred"], match["n_true"]))

    @property
    def n_sims(self) -> int:
        return len(self.pos)

    def finish(self) -> None:
        """Stack the statistics and precompute the spike-score tables."""
        self.stacked = {k: np.stack(v) for k, v in self.sums.items()}
        n = self.n_sims
        self.n_pos = np.array([p.size for p in self.pos], float)
        self.n_neg = np.array([q.size for q in self.neg], float)
        # auc_pairs[s, r]: pairs (positive bin of s, negative bin of r) ranked
        # correctly, ties counting 1/2 (Mann-Whitney)
        self.auc_pairs = np.zeros((n, n))
        for s in range(n):
            for r in range(n):
                lo = np.searchsorted(self.neg[r], self.pos[s], side="left")
                hi = np.searchsorted(self.neg[r], self.pos[s], side="right")
                self.auc_pairs[s, r] = lo.sum() + 0.5 * (hi - lo).sum()
        neg = np.concatenate(self.neg) if n else np.zeros(0)
        sim = np.concatenate([np.full(q.size, s) for s, q in enumerate(self.neg)])
        order = np.argsort(-neg, kind="stable")
        self.neg_desc, self.neg_sim = neg[order], sim[order].astype(np.int64)
        self.timing_arr = np.array(self.timing, float).reshape(n, 3)

    def summaries(self, W: np.ndarray) -> dict:
        """Every scalar metric for each row of simulation weights.

        Parameters
        ----------
        W : ndarray, shape (n_w, n_sims)
            Weight of each simulation (ones: the pooled value; bootstrap
            counts; one-hot rows: per simulation).

        Returns
        -------
        values : dict of str to ndarray, shape (n_w,)
        """
        ctx = self.ctx
        sums = {k: np.einsum("ws,sck->wck", W, v) for k, v in self.stacked.items()}
        m = {k: _channel_metrics(v) for k, v in sums.items()}
        out = {}
        for stat in ("rmse", "mae", "explained_variance", "correlation"):
            out[f"vmem_{stat}"] = _nanmedian(m["vmem"][stat])
            for name, mask in ctx.regions.items():
                out[f"vmem_{stat}[{name}]"] = _nanmedian(m["vmem"][stat][:, mask])
        for key, name in (("vmem", "soma_rmse"), ("soma_clipped", "soma_clipped_rmse")):
            s = sums[key][:, ctx.soma] if key == "vmem" else sums[key]
            out[name] = np.sqrt(s[..., _E2].sum(-1) / s[..., _N].sum(-1))
        out["dv_rmse"] = _nanmedian(m["dv"]["rmse"])
        out["dv_relative_rmse"] = _nanmedian(m["dv"]["relative_rmse"])
        for suffix in ("", "_lowpass"):
            for key in ("imem", "lfp"):
                for stat in ("relative_rmse", "correlation"):
                    out[f"{key}_{stat}{suffix}"] = _nanmedian(m[key + suffix][stat])
            dipole = m["dipole" + suffix]
            for i, axis in enumerate("xyz"):
                for stat in ("relative_rmse", "correlation"):
                    out[f"dipole_{axis}_{stat}{suffix}"] = dipole[stat][:, i]
            for label, mask in _distance_bins(ctx.contacts).items():
                out[f"lfp_correlation{suffix}[{label}]"] = _nanmedian(
                    m["lfp" + suffix]["correlation"][:, mask]
                )
        out.update(self._spike_summaries(W))
        return out

    def _spike_summaries(self, W: np.ndarray) -> dict:
        n_pos, n_neg = W @ self.n_pos, W @ self.n_neg
        with np.errstate(invalid="ignore", divide="ignore"):
            auc = np.einsum("ws,sr,wr->w", W, self.auc_pairs, W) / (n_pos * n_neg)
            hits, n_pred, n_true = (W @ self.timing_arr).T
            out = {
                "spike_auc": auc,
                "spike_precision": np.where(n_pred > 0, hits / n_pred, np.nan),
                "spike_recall": np.where(n_true > 0, hits / n_true, np.nan),
            }
        tpr = {fpr: np.full(len(W), np.nan) for fpr in SPIKE_FPRS}
        for i, w in enumerate(W):
            if n_pos[i] == 0 or n_neg[i] == 0:
                continue
            cum = np.cumsum(w[self.neg_sim])
            for fpr in SPIKE_FPRS:
                # the threshold of tpr_at_fpr on the weighted negatives
                k = np.searchsorted(cum, math.floor(fpr * cum[-1]), side="right")
                thr = self.neg_desc[k] if k < cum.size else -np.inf
                above = [p.size - np.searchsorted(p, thr, "right") for p in self.pos]
                tpr[fpr][i] = np.dot(w, above) / n_pos[i]
        for fpr in SPIKE_FPRS:
            out[f"spike_tpr_at_fpr_{100 * fpr:g}%"] = tpr[fpr]
        return out

    def channels(self) -> dict:
        """Pooled per-channel metrics (all simulations, weight 1)."""
        return {k: _channel_metrics(v.sum(axis=0)) for k, v in self.stacked.items()}


def _distance_bins(contacts: np.ndarray) -> dict:
    """Contacts by distance from the soma, in bins of :data:`DISTANCE_BIN` µm."""
    dist = np.linalg.norm(contacts, axis=1)
    index = np.floor(dist / DISTANCE_BIN).astype(int)
    return {
        f"{k * DISTANCE_BIN:g}-{(k + 1) * DISTANCE_BIN:g} um": index == k
        for k in np.unique(index)
    }


# -- scoring ------------------------------------------------------------------


def _placement(probe):
    """A :class:`ProbePlacement` from a spec string, a dict or itself."""
    from ..cli._common import parse_probe
    from ..forward import ProbePlacement

    if isinstance(probe, ProbePlacement):
        return probe
    if isinstance(probe, dict):
        return ProbePlacement.from_dict(probe)
    check_type(probe, str, "probe", "a probe spec string, a dict or a ProbePlacement")
    return ProbePlacement(**parse_probe(probe))


def _check_span(span) -> tuple[float, float]:
    """``span`` as (low, high) µm, low < high (ValueError naming it)."""
    try:
        lo, hi = (float(v) for v in span)
    except (TypeError, ValueError):
        lo = hi = float("nan")
    if not lo < hi:
        raise ValueError(
            f"probe_span must be two numbers (low, high) in µm with low < high, or "
            f"None for every contact, got {span!r}"
        )
    return lo, hi


def _make_context(
    geometry,
    operator,
    *,
    probe,
    probe_span,
    burn: int,
    interval: float,
    lowpass_hz: float,
    spike_threshold: float,
) -> _Context:
    from ..cells import REGIONS
    from ..forward import DipoleOperator, LFPOperator

    check_positive(lowpass_hz, "lowpass_hz")
    check_positive(spike_threshold, "spike_threshold")
    if spike_threshold >= 1:
        raise ValueError(
            f"spike_threshold must be a probability in (0, 1), got {spike_threshold!r}"
        )
    placement = _placement(probe)
    op = LFPOperator(geometry, placement)
    contacts = np.asarray(op.contacts, float)
    keep = np.ones(len(contacts), bool)
    if probe_span is not None:
        lo, hi = _check_span(probe_span)
        y = contacts[:, 1]
        keep = (y >= lo - 1e-6) & (y <= hi + 1e-6)
        if not keep.any():
            raise ValueError(
                f"probe_span must hold some contacts of probe {placement.label!r} "
                f"(y from {y.min():g} to {y.max():g} µm), got [{lo:g}, {hi:g}] "
                f"µm; move the probe or widen the span"
            )
    m = operator.matrix.tocoo()
    upper = m.row < m.col  # every axial edge once, as neighbour_differences
    soma = np.flatnonzero(geometry.region_mask("soma"))
    return _Context(
        operator=operator,
        edges=(m.row[upper], m.col[upper]),
        dipole=DipoleOperator(geometry).matrix,
        lfp=op.matrix[keep],
        soma=soma if soma.size else np.array([0]),
        burn=int(burn),
        interval=float(interval),
        lowpass_hz=float(lowpass_hz),
        spike_threshold=float(spike_threshold),
        regions={REGIONS[c]: geometry.region == c for c in np.unique(geometry.region)},
        contacts=contacts[keep],
        placement=placement,
    )


def _score(ctx: _Context, simulations, names) -> dict:
    """Feed every simulation to one :class:`_Scorer` per model name."""
    from ..data import soma_spike_bins

    scorers = {name: _Scorer(ctx) for name in names}
    for true_vmem, soma_times, preds in simulations:
        n_times = true_vmem.shape[-1]
        # the zero-phase low-pass pads 15 bins at each end
        if n_times - ctx.burn < 16:
            raise ValueError(
                f"simulations must be longer than the dropped receptive field "
                f"({ctx.burn} bins) by at least 16 bins, got {n_times} bins; "
                f"evaluate on longer simulations"
            )
        true = ctx.signals(true_vmem)
        spikes = soma_spike_bins(soma_times, n_times, ctx.interval)
        target = spikes[ctx.burn :] > 0
        times = np.asarray(soma_times, float)
        times = times[
            (times > ctx.burn * ctx.interval) & (times <= n_times * ctx.interval)
        ]
        for name in names:
            vmem, logit = preds[name]
            scorers[name].add(ctx.signals(vmem), true, logit, target, times)
    for scorer in scorers.values():
        if scorer.n_sims == 0:
            raise ValueError("simulations must hold at least one simulation, got none")
        scorer.finish()
    return scorers


def _interval(boot: np.ndarray) -> list:
    """Percentile interval at :data:`CI_LEVEL` of bootstrap values (NaN skipped)."""
    boot = boot[np.isfinite(boot)]
    if boot.size == 0:
        return [None, None]
    alpha = (1.0 - CI_LEVEL) / 2.0
    return [float(np.quantile(boot, alpha)), float(np.quantile(boot, 1.0 - alpha))]


def _higher_is_better(key: str) -> bool:
    return not any(w in key for w in ("rmse", "mae"))


def _unit(key: str) -> str:
    if "relative" in key:
        return "1"
    if key.startswith(("vmem_rmse", "vmem_mae", "soma_", "dv_rmse")):
        return "mV"
    return "1"


def _boot(scorer: _Scorer, W: np.ndarray) -> dict:
    """:meth:`_Scorer.summaries` of many weight rows, in chunks."""
    parts = [
        scorer.summaries(W[i : i + _BOOT_CHUNK]) for i in range(0, len(W), _BOOT_CHUNK)
    ]
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def _metrics_report(scorers: dict, n_boot: int, seed: int) -> dict:
    """Values, bootstrap intervals, per-simulation values and paired differences."""
    check_positive(n_boot, "n_boot", integer=True)
    names = list(scorers)
    first = scorers[names[0]]
    n_sims = first.n_sims
    rng = np.random.default_rng(seed)
    # one resampling of the simulations for every model: paired intervals
    uniform = np.full(n_sims, 1.0 / n_sims)
    W = rng.multinomial(n_sims, uniform, size=n_boot).astype(float)
    ones, eye = np.ones((1, n_sims)), np.eye(n_sims)
    values, boots, per_sim = {}, {}, {}
    for name, scorer in scorers.items():
        values[name] = {k: float(v[0]) for k, v in scorer.summaries(ones).items()}
        boots[name] = _boot(scorer, W)
        per_sim[name] = scorer.summaries(eye)
    metrics = {
        name: {
            key: dict(
                value=value,
                ci=_interval(boots[name][key]),
                per_sim=per_sim[name][key].tolist(),
            )
            for key, value in values[name].items()
        }
        for name in names
    }
    paired = {}
    if len(names) == 2:
        a, b = names
        for key in values[a]:
            diff = per_sim[a][key] - per_sim[b][key]
            better = diff > 0 if _higher_is_better(key) else diff < 0
            ok = np.isfinite(diff)
            paired[key] = dict(
                difference=values[a][key] - values[b][key],
                ci=_interval(boots[a][key] - boots[b][key]),
                per_sim=diff.tolist(),
                model_better_fraction=float(better[ok].mean()) if ok.any() else None,
            )
    return dict(metrics=metrics, paired=paired)


def _detail(ctx: _Context, scorer: _Scorer, geometry) -> dict:
    """Pooled per-segment and per-contact values (no intervals)."""
    from ..cells import REGIONS

    ch = scorer.channels()
    vmem = {
        k: ch["vmem"][k].tolist()
        for k in ("rmse", "mae", "explained_variance", "correlation")
    }
    vmem["region"] = [REGIONS[c] for c in geometry.region]
    lfp = dict(
        y=ctx.contacts[:, 1].tolist(),
        distance=np.linalg.norm(ctx.contacts, axis=1).tolist(),
    )
    for suffix in ("", "_lowpass"):
        for stat in ("correlation", "relative_rmse"):
            lfp[stat + suffix] = ch["lfp" + suffix][stat].tolist()
    imem = {
        stat + suffix: ch["imem" + suffix][stat].tolist()
        for suffix in ("", "_lowpass")
        for stat in ("relative_rmse", "correlation")
    }
    return dict(vmem_per_segment=vmem, imem_per_segment=imem, lfp_per_contact=lfp)


def _evaluate_arrays(
    geometry,
    operator,
    simulations,
    *,
    names=("model",),
    probe=DEFAULT_EVAL_PROBE,
    probe_span=DEFAULT_EVAL_SPAN,
    burn: int = 0,
    interval: float = 1.0,
    lowpass_hz: float = 100.0,
    spike_threshold: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
) -> dict:
    """Score predictions given as arrays (the core of :func:`evaluate`).

    Parameters
    ----------
    geometry : CellGeometry
    operator : ImemOperator
    simulations : iterable of tuple
        ``(true_vmem, soma_spike_times, {name: (vmem, spike_logit)})`` per
        simulation: voltages shape (n_seg, n_times) in mV, spike times (ms),
        logits shape (n_times,).
    names : sequence of str
        The predictions in each dict, first the model, then the baseline.
    burn : int
        Leading bins of each simulation left out.
    interval : float
        Bin width (ms).

    Returns
    -------
    report : dict
        ``settings``, ``metrics`` (by name), ``paired`` (first minus second
        name, when two) and ``detail`` (by name), as in :func:`evaluate`.
    """
    ctx = _make_context(
        geometry,
        operator,
        probe=probe,
        probe_span=probe_span,
        burn=burn,
        interval=interval,
        lowpass_hz=lowpass_hz,
        spike_threshold=spike_threshold,
    )
    scorers = _score(ctx, simulations, list(names))
    out = _metrics_report(scorers, n_boot, seed)
    out["detail"] = {name: _detail(ctx, s, geometry) for name, s in scorers.items()}
    out["settings"] = dict(
        probe=ctx.placement.to_dict(),
        probe_span=None if probe_span is None else [float(v) for v in probe_span],
        n_contacts=int(len(ctx.contacts)),
        contact_y_range=[
            float(ctx.contacts[:, 1].min()),
            float(ctx.contacts[:, 1].max()),
        ],
        lowpass_hz=ctx.lowpass_hz,
        lowpass_filter="4th-order Butterworth, zero phase (forward and backward)",
        spike_threshold=ctx.spike_threshold,
        spike_rule=(
            "one predicted spike per run of consecutive bins with probability >= "
            "spike_threshold, at the centre of the run's most probable bin"
        ),
        spike_tolerance_ms=SPIKE_TOLERANCE,
        spike_fprs=list(SPIKE_FPRS),
        soma_clip_mV=SOMA_CLIP,
        distance_bin_um=DISTANCE_BIN,
        burn_bins=ctx.burn,
        interval_ms=ctx.interval,
        n_sims=scorers[names[0]].n_sims,
        n_boot=int(n_boot),
        seed=int(seed),
        ci_level=CI_LEVEL,
        n_true_spikes=int(scorers[names[0]].timing_arr[:, 2].sum()),
    )
    out["units"] = {k: _unit(k) for k in out["metrics"][names[0]]}
    out["higher_is_better"] = {
        k: _higher_is_better(k) for k in out["metrics"][names[0]]
    }
    return out


# -- evaluation of saved models -----------------------------------------------


def _load(model, name: str):
    from ..train import SavedModel, load_model

    if isinstance(model, SavedModel):
        return model
    check_type(
        model, (str, os.PathLike), name, "a SavedModel, a model folder or a name"
    )
    return load_model(model)


def _describe(saved, source) -> dict:
    model = saved.model
    return dict(
        source=str(source) if not hasattr(source, "model") else None,
        arch=model.config.arch,
        cell=saved.geometry.name,
        cell_hash=saved.cell_hash,
        n_parameters=int(model.n_parameters),
        receptive_field_ms=float(model.receptive_field_ms),
        n_training_inputs=len(saved.training_input_hashes),
    )


def _scan(data: Path, models: dict) -> tuple[list, float]:
    """Held-out simulations of ``data``, after the cell and input checks.

    Returns
    -------
    sims : list of (Path, int, str, int)
        Shard, index in the shard, input hash, bins.
    interval : float
        Bin width (ms).
    """
    from ..data import open_shard

    shards = sorted(Path(data).glob("shard-*.h5"))
    if not shards:
        raise FileNotFoundError(f"data: no shards (shard-*.h5) in {data}")
    ref = next(iter(models.values()))
    sims, intervals = [], set()
    for path in shards:
        with open_shard(path) as f:
            cell_hash = str(f.attrs["cell_hash"])
            if cell_hash != ref.cell_hash:
                raise ValueError(
                    f"data: {path} holds simulations of cell {str(f.attrs['cell'])!r} "
                    f"(hash {cell_hash}), but the model was trained for cell "
                    f"{ref.geometry.name!r} (hash {ref.cell_hash}); evaluate it "
                    f"on a dataset of its own cell"
                )
            intervals.add(float(f.attrs["interval"]))
            n_times = int(f["vmem"].shape[2])
            sims.extend(
                (path, j, h.decode(), n_times) for j, h in enumerate(f["input_hash"][:])
            )
    if len(intervals) > 1:
        raise ValueError(
            f"data: shards of {data} mix bin widths {sorted(intervals)} ms"
        )
    interval = intervals.pop()
    hashes = [h for _, _, h, _ in sims]
    for name, saved in models.items():
        if saved.cell_hash != ref.cell_hash:
            raise ValueError(
                f"{name} was trained for cell {saved.geometry.name!r} (hash "
                f"{saved.cell_hash}), the model for {ref.geometry.name!r} (hash "
                f"{ref.cell_hash}); compare models of the same cell"
            )
        if not math.isclose(saved.model.config.interval, interval):
            raise ValueError(
                f"data: bins of {interval:g} ms, but the {name} predicts bins of "
                f"{saved.model.config.interval:g} ms; evaluate on data of its bin width"
            )
        seen = saved.training_input_hashes
        if not seen:
            logger.warning(
                "The %s's card lists no training inputs: held-out status unchecked",
                name,
            )
        overlap = sorted({h for h in hashes if h in seen})
        if overlap:
            n = sum(h in seen for h in hashes)
            raise ValueError(
                f"data: {n} of {len(hashes)} simulations in {data} have input "
                f"hashes the {name} was trained or validated on ({len(overlap)} "
                f"distinct, e.g. {overlap[:3]}); evaluate on held-out simulations "
                f"only, e.g. a dataset generated with another --seed"
            )
    return sims, interval


def _predicted(sims, models: dict, *, interval: float, batch: int, chunk: int):
    """Yield ``(true_vmem, soma_times, {name: (vmem, logit)})`` per simulation.

    Simulations of one shard are predicted ``batch`` at a time, each streamed
    in chunks of ``chunk`` bins.
    """
    from ..data import open_shard, read_soma_spikes, read_spikes
    from ..models import predict_stream

    groups: list[list] = []
    for path, j, _, _ in sims:
        if groups and groups[-1][0][0] == path and len(groups[-1]) < batch:
            groups[-1].append((path, j))
        else:
            groups.append([(path, j)])
    bar = progress(total=len(sims), desc="evaluate", unit="sim")
    try:
        for group in groups:
            path = group[0][0]
            with open_shard(path) as f:
                # the input encoding of WindowDataset: SpikeTrains.binned
                counts = np.stack(
                    [read_spikes(f, j).binned(interval) for _, j in group]
                )
                truth = [
                    (f["vmem"][j].astype(np.float64), read_soma_spikes(f, j))
                    for _, j in group
                ]
            if counts.shape[-1] != truth[0][0].shape[-1]:
                raise ValueError(
                    f"data: {path} holds {truth[0][0].shape[-1]} bins of vmem but "
                    f"inputs of {counts.shape[-1]} bins; the shard is inconsistent"
                )
            preds = {}
            for name, saved in models.items():
                out = predict_stream(saved.model, counts, chunk, verbose=False)
                preds[name] = (
                    out.vmem.double().numpy(),
                    out.spike_logit.double().numpy(),
                )
            for i, (vmem, soma_times) in enumerate(truth):
                yield (
                    vmem,
                    soma_times,
                    {name: (v[i], s[i]) for name, (v, s) in preds.items()},
                )
                bar.update(1)
    finally:
        bar.close()


def evaluate(
    model,
    data,
    *,
    probe=DEFAULT_EVAL_PROBE,
    probe_span=DEFAULT_EVAL_SPAN,
    baseline=None,
    n_boot: int = 1000,
    seed: int = 0,
    lowpass_hz: float = 100.0,
    spike_threshold: float = 0.5,
    batch: int = 4,
    chunk: int = 1000,
    verbose: bool | str | int | None = None,
) -> dict:
    """Score a surrogate (and a baseline) against NEURON on held-out simulations.

    Each simulation is predicted from its stored input (binned as in
    training), streamed chunk by chunk; its first receptive field (of the
    model or the baseline, the larger) is dropped; every metric is pooled
    over all simulations, with a percentile bootstrap interval (resampling
    whole simulations; the same resamples for model and baseline, so their
    differences are paired).

    Parameters
    ----------
    model : SavedModel | str | path-like
        The surrogate, or what :func:`~lfp_surrogate.train.load_model`
        accepts.
    data : path-like
        Dataset folder of held-out shards of the model's cell. A simulation
        whose input hash is among the model's (or baseline's) training
        inputs is refused.
    probe : str | dict | ProbePlacement
        Placement of the LFP probe, as ``lfp-surrogate --probe`` takes it.
        The default :data:`DEFAULT_EVAL_PROBE` is a Neuropixels shank
        parallel to the apical axis, 50 µm from it, that no training loss
        sees.
    probe_span : tuple of 2 float | None
        Contacts scored: those with y (along the apical axis, µm from the
        soma) in this range; ``None``: all. Default -200 to 1200 µm.
    baseline : SavedModel | str | path-like | None
        A second model (e.g. the linear baseline, ``arch="linear"``) scored
        on the same simulations and bins.
    n_boot : int
        Bootstrap resamples.
    seed : int
        Seed of the resampling.
    lowpass_hz : float
        Cut-off (Hz) of the low-pass applied, to prediction and truth alike,
        for the ``*_lowpass`` metrics.
    spike_threshold : float
        Probability at and above which a bin is part of a predicted spike
        (see Notes).
    batch : int
        Simulations predicted side by side.
    chunk : int
        Bins per streaming step (memory does not grow with duration).
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    report : dict
        JSON-serialisable (NaN as ``None``; write it with
        :func:`save_report`). ``metrics["model"]`` (and ``["baseline"]``)
        maps each metric name to ``value`` (pooled), ``ci`` ([low, high]
        at 95 %) and ``per_sim`` (each simulation alone); ``paired`` maps
        it to the ``difference`` model minus baseline with its ``ci``,
        ``per_sim`` differences and ``model_better_fraction``; ``units``
        and ``higher_is_better`` describe the names; ``detail`` holds
        pooled per-segment and per-contact values; ``settings``, ``data``,
        ``model`` and ``baseline`` say what was evaluated how.

    Notes
    -----
    Metric names (medians are over segments, edges or contacts of the
    pooled per-channel values):

    - ``vmem_rmse``, ``vmem_mae`` (mV), ``vmem_explained_variance``,
      ``vmem_correlation``: medians over segments; ``vmem_<stat>[<region>]``
      per region.
    - ``soma_rmse``, ``soma_clipped_rmse`` (mV): the soma, voltages clipped
      at -55 mV from above for the latter (Beniaguev et al. 2021,
      doi:10.1016/j.neuron.2021.07.002).
    - ``dv_rmse`` (mV), ``dv_relative_rmse``: voltage differences across
      the axial edges of the compartment graph (they drive the axial
      currents).
    - ``spike_auc`` (ROC over all scored bins), ``spike_tpr_at_fpr_0.25%``,
      ``spike_tpr_at_fpr_1%``, ``spike_precision``, ``spike_recall``:
      predicted spikes are the runs of consecutive bins with probability >=
      ``spike_threshold``, one spike per run at the centre of its most
      probable bin, matched one-to-one to NEURON's somatic spike times
      within ±2 ms.
    - ``imem_*``, ``dipole_{x,y,z}_*``, ``lfp_*``: ``relative_rmse`` (RMSE
      over the standard deviation of the truth) and ``correlation`` of the
      currents the model's exact operator derives from predicted and true
      voltages, of the current dipole moment, and of the LFP of the scored
      contacts; ``*_lowpass`` after the low-pass.
      ``lfp_correlation[_lowpass][<a>-<b> um]``: median over the contacts
      at that distance from the soma.

    The low-pass is applied to each simulation after the burn-in is
    dropped, so the filter's start-up transient is in both signals alike.
    """
    for value, name in ((batch, "batch"), (chunk, "chunk"), (n_boot, "n_boot")):
        check_positive(value, name, integer=True)
    with use_log_level(verbose):
        t0 = time.perf_counter()
        saved = _load(model, "model")
        models = {"model": saved}
        if baseline is not None:
            models["baseline"] = _load(baseline, "baseline")
        sims, interval = _scan(Path(data), models)
        burn = max(m.model.receptive_field for m in models.values())
        n_times = sims[0][3]
        logger.info(
            "Evaluating %s%s on %d held-out simulations of %g ms (%d segments), "
            "first %d bins dropped, %d bootstrap resamples",
            saved.model.config.arch,
            ""
            if baseline is None
            else f" against baseline {models['baseline'].model.config.arch}",
            len(sims),
            n_times * interval,
            saved.geometry.n_seg,
            burn,
            n_boot,
        )
        _warn_if_trained_on(saved, probe)
        report = _evaluate_arrays(
            saved.geometry,
            saved.imem_operator,
            _predicted(sims, models, interval=interval, batch=batch, chunk=chunk),
            names=list(models),
            probe=probe,
            probe_span=probe_span,
            burn=burn,
            interval=interval,
            lowpass_hz=lowpass_hz,
            spike_threshold=spike_threshold,
            n_boot=n_boot,
            seed=seed,
        )
        elapsed = time.perf_counter() - t0
        report = dict(
            kind=REPORT_KIND,
            format_version=REPORT_VERSION,
            model=_describe(saved, model),
            baseline=None
            if baseline is None
            else _describe(models["baseline"], baseline),
            data=dict(
                folder=str(data),
                n_sims=len(sims),
                simulated_seconds=len(sims) * n_times * interval * 1e-3,
                scored_seconds=len(sims) * (n_times - burn) * interval * 1e-3,
                input_hashes=[h for _, _, h, _ in sims],
            ),
            elapsed_s=elapsed,
            **report,
        )
        head = report["metrics"]["model"]
        logger.info(
            "Evaluated in %.1f s: median vmem RMSE %.3g mV, spike AUC %.3g, imem "
            "relative RMSE %.3g, LFP correlation (< %g Hz) %.3g",
            elapsed,
            head["vmem_rmse"]["value"],
            head["spike_auc"]["value"],
            head["imem_relative_rmse"]["value"],
            lowpass_hz,
            head["lfp_correlation_lowpass"]["value"],
        )
    return _json(report)


def _warn_if_trained_on(saved, probe) -> None:
    """Warn when the model's LFP loss used the evaluation placement."""
    spec = saved.card.get("training", {}).get("train_config", {}).get("lfp_probe")
    if not spec:
        return
    train, test = _placement(spec).to_dict(), _placement(probe).to_dict()
    train.pop("label"), test.pop("label")
    if train == test:
        logger.warning(
            "The evaluation probe is the placement the model's LFP loss used "
            "(%s): its LFP metrics are not held out",
            spec,
        )


def _json(x):
    """``x`` with numpy values as Python ones and non-finite floats as None."""
    if isinstance(x, dict):
        return {str(k): _json(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_json(v) for v in x]
    if isinstance(x, np.ndarray):
        return _json(x.tolist())
    if isinstance(x, np.bool_ | bool):
        return bool(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, float | np.floating):
        return float(x) if math.isfinite(x) else None
    return x


# -- reports ------------------------------------------------------------------

#: Rows of :func:`format_report`: metric name and label.
TABLE = (
    ("vmem_rmse", "V RMSE, median over segments (mV)"),
    ("vmem_correlation", "V correlation, median"),
    ("soma_clipped_rmse", "soma RMSE, clipped at -55 mV (mV)"),
    ("dv_rmse", "neighbour dV RMSE, median (mV)"),
    ("spike_auc", "soma spike AUC (1-ms bins)"),
    ("spike_tpr_at_fpr_1%", "spike TPR at 1% FPR"),
    ("spike_precision", "spike precision (±2 ms)"),
    ("spike_recall", "spike recall (±2 ms)"),
    ("imem_relative_rmse", "imem relative RMSE, median"),
    ("imem_relative_rmse_lowpass", "imem relative RMSE < low-pass, median"),
    ("dipole_x_correlation_lowpass", "dipole x correlation < low-pass"),
    ("dipole_y_correlation_lowpass", "dipole y correlation < low-pass"),
    ("dipole_z_correlation_lowpass", "dipole z correlation < low-pass"),
    ("lfp_correlation", "LFP correlation, median"),
    ("lfp_correlation_lowpass", "LFP correlation < low-pass, median"),
)


def format_report(report: dict) -> str:
    """A plain-text table of the headline metrics of a report.

    Parameters
    ----------
    report : dict
        From :func:`evaluate`.

    Returns
    -------
    table : str
        One row per metric: the model's value with its interval and, with a
        baseline, the baseline's and the paired difference.
    """

    def cell(entry, key="value"):
        value, (lo, hi) = entry.get(key), entry.get("ci", [None, None])
        if value is None:
            return "n/a"
        if lo is None:
            return f"{value:.3g}"
        return f"{value:.3g} [{lo:.3g}, {hi:.3g}]"

    metrics = report["metrics"]
    has_base = "baseline" in metrics
    header = ["metric", "model"] + (
        ["baseline", "model - baseline"] if has_base else []
    )
    rows = [header]
    for key, label in TABLE:
        if key not in metrics["model"]:
            continue
        row = [label, cell(metrics["model"][key])]
        if has_base:
            row += [
                cell(metrics["baseline"][key]),
                cell(report["paired"][key], "difference"),
            ]
        rows.append(row)
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def save_report(report: dict, path, *, overwrite: bool = False) -> Path:
    """Write a report as JSON, atomically.

    Parameters
    ----------
    report : dict
        From :func:`evaluate`.
    path : path-like
        Output file (``.json``).
    overwrite : bool
        Replace an existing file.

    Returns
    -------
    path : Path
    """
    check_type(path, (str, os.PathLike), "path", "a file path")
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(
            f"out: {path} exists; pass --force (overwrite=True) to replace it"
        )
    text = json.dumps(_json(report), indent=1, allow_nan=False)
    with atomic_path(path, suffix=".json") as tmp:
        tmp.write_text(text)
    return path
