"""Accuracy of a surrogate against NEURON on held-out simulations.

Every function takes arrays of one or more simulations with time last and
returns numbers per channel; :func:`bootstrap_ci` turns per-simulation values
into a confidence interval.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_array, check_positive


def _pair(pred, true, name="pred"):
    pred = np.asarray(pred, dtype=np.float64)
    true = np.asarray(true, dtype=np.float64)
    if pred.shape != true.shape:
        raise ValueError(
            f"{name} and true must have the same shape, got {pred.shape} and "
            f"{true.shape}"
        )
    return pred, true


def _flatten_time(x):
    # (n_sims, n_ch, n_times) -> (n_ch, n_sims * n_times); (n_ch, n_times) kept
    if x.ndim == 3:
        return np.moveaxis(x, 0, 1).reshape(x.shape[1], -1)
    return x


def per_channel(pred, true) -> dict:
    """RMSE, MAE, explained variance and correlation of every channel.

    Parameters
    ----------
    pred, true : ndarray, shape ([n_sims,] n_ch, n_times)
        Prediction and ground truth in the same unit; simulations are pooled.

    Returns
    -------
    metrics : dict of str to ndarray, shape (n_ch,)
        ``rmse`` and ``mae`` in the input unit; ``explained_variance`` and
        ``correlation`` dimensionless; ``relative_rmse`` = RMSE / std(true)
        (1 for predicting the mean, 0 for a perfect prediction).
    """
    pred, true = _pair(pred, true)
    p, t = _flatten_time(pred), _flatten_time(true)
    err = p - t
    var_t = t.var(axis=1)
    pc, tc = p - p.mean(axis=1, keepdims=True), t - t.mean(axis=1, keepdims=True)
    denom = np.sqrt((pc**2).sum(axis=1) * (tc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = np.where(denom > 0, (pc * tc).sum(axis=1) / denom, np.nan)
        ev = np.where(var_t > 0, 1.0 - err.var(axis=1) / var_t, np.nan)
        rel = np.where(var_t > 0, np.sqrt((err**2).mean(axis=1) / var_t), np.nan)
    return dict(
        rmse=np.sqrt((err**2).mean(axis=1)),
        mae=np.abs(err).mean(axis=1),
        explained_variance=ev,
        correlation=corr,
        relative_rmse=rel,
    )


def by_region(values, region, names) -> dict:
    """Median of per-segment ``values`` in each region present.

    Parameters
    ----------
    values : ndarray, shape (n_seg,)
    region : ndarray of int, shape (n_seg,)
        Region code of each segment.
    names : sequence of str
        Name of each region code.

    Returns
    -------
    dict of str to float
    """
    values = np.asarray(values)
    return {
        names[c]: float(np.nanmedian(values[region == c])) for c in np.unique(region)
    }


def neighbour_differences(vmem, operator) -> np.ndarray:
    """Voltage differences across every axial edge of the compartment graph.

    Parameters
    ----------
    vmem : ndarray, shape ([n_sims,] n_seg, n_times)
        mV.
    operator : ImemOperator
        Gives the edges (the off-diagonal non-zeros).

    Returns
    -------
    dv : ndarray, shape ([n_sims,] n_edges, n_times)
        V_i - V_j (mV) for every edge i < j, which drive the axial currents.
    """
    m = operator.matrix.tocoo()
    keep = m.row < m.col
    rows, cols = m.row[keep], m.col[keep]
    vmem = np.asarray(vmem)
    return vmem[..., rows, :] - vmem[..., cols, :]


def lowpass(x, cutoff: float, interval: float = 1.0, order: int = 4):
    """Zero-phase Butterworth low-pass along the last axis.

    Parameters
    ----------
    x : ndarray, shape (..., n_times)
    cutoff : float
        Cut-off frequency (Hz).
    interval : float
        Sampling interval (ms).
    order : int
        Filter order (applied forwards and backwards).
    """
    from scipy.signal import butter, sosfiltfilt

    check_positive(cutoff, "cutoff")
    fs = 1000.0 / interval
    if cutoff >= fs / 2:
        raise ValueError(
            f"cutoff must be below the Nyquist frequency {fs / 2:g} Hz, got {cutoff}"
        )
    sos = butter(order, cutoff, fs=fs, output="sos")
    return sosfiltfilt(sos, np.asarray(x, dtype=np.float64), axis=-1)


def spike_auc(prob, target) -> float:
    """Area under the ROC curve of somatic spike prediction per bin.

    Parameters
    ----------
    prob : ndarray, shape (n_bins,)
        Predicted spike probability (or logit) per bin, any monotone score.
    target : ndarray, shape (n_bins,)
        1 where a spike occurred.
    """
    prob, target = np.ravel(prob), np.ravel(target).astype(bool)
    n_pos, n_neg = target.sum(), (~target).sum()
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    from scipy.stats import rankdata

    ranks = rankdata(prob)
    return float((ranks[target].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def tpr_at_fpr(prob, target, fpr: float) -> float:
    """True-positive rate at the threshold giving false-positive rate ``fpr``."""
    prob, target = np.ravel(prob), np.ravel(target).astype(bool)
    neg = np.sort(prob[~target])[::-1]
    if neg.size == 0 or target.sum() == 0:
        return float("nan")
    k = int(np.floor(fpr * neg.size))
    threshold = neg[k] if k < neg.size else -np.inf
    return float((prob[target] > threshold).mean())


def spike_time_match(pred_times, true_times, tolerance: float = 2.0) -> dict:
    """Precision and recall of predicted spike times within ``tolerance`` ms.

    Each true spike is matched to at most one predicted spike (greedy, in
    time order).
    """
    pred_times = np.sort(np.asarray(pred_times, float))
    true_times = np.sort(np.asarray(true_times, float))
    used = np.zeros(pred_times.size, bool)
    hits = 0
    for t in true_times:
        close = np.flatnonzero(~used & (np.abs(pred_times - t) <= tolerance))
        if close.size:
            used[close[np.argmin(np.abs(pred_times[close] - t))]] = True
            hits += 1
    precision = hits / pred_times.size if pred_times.size else float("nan")
    recall = hits / true_times.size if true_times.size else float("nan")
    return dict(
        precision=precision,
        recall=recall,
        n_pred=int(pred_times.size),
        n_true=int(true_times.size),
    )


def clipped_rmse(pred, true, clip: float = -55.0) -> float:
    """RMSE (mV) after clipping both voltages at ``clip`` mV from above.

    The soma voltage is commonly judged this way so that action potentials do
    not dominate (e.g. Beniaguev et al. 2021, doi:10.1016/j.neuron.2021.07.002).
    """
    pred, true = _pair(pred, true)
    return float(
        np.sqrt(np.mean((np.minimum(pred, clip) - np.minimum(true, clip)) ** 2))
    )


def bootstrap_ci(
    per_sim, *, stat=np.median, n_boot: int = 2000, level=0.95, seed: int = 0
) -> tuple[float, float, float]:
    """Statistic of per-simulation values with a bootstrap interval.

    Parameters
    ----------
    per_sim : ndarray, shape (n_sims,)
        One value per held-out simulation.
    stat : callable
        Statistic (default: median).

    Returns
    -------
    value, low, high : float
    """
    x = check_array(np.asarray(per_sim, float), "per_sim", ndim=1, finite=False)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    boots = np.array([stat(rng.choice(x, x.size)) for _ in range(n_boot)])
    alpha = (1 - level) / 2
    return (
        float(stat(x)),
        float(np.quantile(boots, alpha)),
        float(np.quantile(boots, 1 - alpha)),
    )
