"""Figures of a surrogate against NEURON on the same input.

Every figure compares one simulation of a ground-truth file (a dataset shard
simulated with ``--probe``/``--head``/``--meg``) with a prediction file of the
same layout: NEURON is drawn in black, the surrogate in orange. Figures are
built as :class:`matplotlib.figure.Figure` objects without pyplot, so they
render with the Agg backend and leave no global state.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path, open_hdf5
from .._logging import logger, use_log_level
from .._validation import check_positive, check_type

__all__ = ["FIGURE_NAMES", "per_segment_rmse", "validation_figures"]

#: Names of the figures, in the order they are made (file stem of each).
FIGURE_NAMES = (
    "voltage_traces",
    "error_morphology",
    "lfp_heatmaps",
    "csd_heatmaps",
    "dipole_eeg_meg",
    "spectra",
    "raster",
)

_NEURON = "black"
_SURROGATE = "#e66100"  # orange; distinct from black in print and for CVD
_EXC = "#b2182b"
_INH = "#2166ac"

# 1 mV = 1e3 µV
_MV_TO_UV = 1e3
# 1 nA/µm³ = 1e-3 µA / 1e-9 mm³ = 1e6 µA/mm³
_NA_PER_UM3_TO_UA_PER_MM3 = 1e6
# display units of EEG (files in mV) and MEG (files in fT): factor from the
# file unit, first one that puts the peak at >= 1 wins
_EEG_UNITS = (("mV", 1.0), ("µV", 1e3), ("nV", 1e6), ("pV", 1e9), ("fV", 1e12))
_MEG_UNITS = (("pT", 1e-3), ("fT", 1.0), ("aT", 1e3), ("zT", 1e6))

#: Default width of the window shown in trace plots (ms).
DEFAULT_WINDOW = 1000.0
_TRACE_REGIONS = ("basal", "apical_trunk", "oblique", "tuft", "dend")
_SPIKE_THRESHOLD = 0.5
_RC = {
    "font.size": 10,
    "axes.titlesize": 10,
    "axes.labelsize": 10,
    "legend.fontsize": 9,
    "figure.titlesize": 12,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
}


def per_segment_rmse(vmem_true, vmem_pred) -> np.ndarray:
    """Root-mean-square voltage error of every segment over time.

    Parameters
    ----------
    vmem_true : ndarray, shape (..., n_seg, n_times)
        NEURON's membrane potential (mV).
    vmem_pred : ndarray, shape (..., n_seg, n_times)
        The surrogate's membrane potential (mV), same shape.

    Returns
    -------
    rmse : ndarray of float64, shape (..., n_seg)
        ``sqrt(mean_t (vmem_pred - vmem_true)**2)`` (mV), computed in float64
        whatever the input dtype.

    Raises
    ------
    ValueError
        If the shapes differ or have no time axis.
    """
    vmem_true = np.asarray(vmem_true)
    vmem_pred = np.asarray(vmem_pred)
    if vmem_true.shape != vmem_pred.shape or vmem_true.ndim < 2:
        raise ValueError(
            f"vmem_true and vmem_pred must have the same shape (..., n_seg, "
            f"n_times), got {vmem_true.shape} and {vmem_pred.shape}"
        )
    err = vmem_pred.astype(np.float64) - vmem_true.astype(np.float64)
    return np.sqrt(np.mean(err**2, axis=-1))


# -- loading and checks ----------------------------------------------------


@dataclass
class _Pair:
    """One simulation of the ground truth and of the prediction, in memory."""

    truth: Path
    prediction: Path
    ft: object  # h5py.File of the truth
    fp: object  # h5py.File of the prediction
    sim: int
    geometry: object
    operator: object
    t: np.ndarray  # (n_times,) ms
    vmem_true: np.ndarray  # (n_seg, n_times) mV, float64
    vmem_pred: np.ndarray
    rmse: np.ndarray  # (n_seg,) mV
    spikes_true: np.ndarray | None  # ms
    prob: np.ndarray | None  # (n_times,)
    window: tuple = (0.0, 0.0)
    in_window: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))
    probe: str | None = None
    csd_probe: str | None = None
    head: str | None = None
    soma_pos: np.ndarray = field(default_factory=lambda: np.zeros(3))
    dist: np.ndarray = field(default_factory=lambda: np.zeros(0))

    @property
    def dt(self) -> float:
        return float(self.t[1] - self.t[0]) if self.t.size > 1 else 1.0

    def both(self, name: str):
        """(truth, prediction) arrays of ``name`` for this sim, or None."""
        if name in self.ft and name in self.fp:
            return (
                np.asarray(self.ft[name][self.sim], dtype=np.float64),
                np.asarray(self.fp[name][self.sim], dtype=np.float64),
            )
        return None

    def window_text(self) -> str:
        return f"{self.window[0]:g}–{self.window[1]:g} ms"


def _labels(f, group: str) -> list[str]:
    return sorted(f[group]) if group in f and hasattr(f[group], "keys") else []


def _check_pair(ft, fp, truth: Path, prediction: Path) -> None:
    """Same cell, same simulations, same times, same signal shapes."""
    for f, path in ((ft, truth), (fp, prediction)):
        if "cell_hash" not in f.attrs:
            raise ValueError(
                f"{path}: attribute 'cell_hash' is missing; give a dataset shard "
                f"or a file written by lfp_surrogate"
            )
        for key in ("vmem", "t"):
            if key not in f:
                raise ValueError(
                    f"{path}: dataset {key!r} is missing; both files need vmem "
                    f"(n_sims, n_seg, n_times) and t (n_times,)"
                )
        if f["vmem"].ndim != 3:
            raise ValueError(
                f"{path}: vmem must have shape (n_sims, n_seg, n_times), got "
                f"{f['vmem'].shape}"
            )
    hash_t, hash_p = str(ft.attrs["cell_hash"]), str(fp.attrs["cell_hash"])
    if hash_t != hash_p:
        raise ValueError(
            f"truth and prediction are of different cells: cell_hash {hash_t!r} "
            f"in {truth} vs {hash_p!r} in {prediction}; compare a prediction "
            f"made for the cell that simulated the ground truth"
        )
    shape_t, shape_p = ft["vmem"].shape, fp["vmem"].shape
    if shape_t != shape_p:
        raise ValueError(
            f"vmem shapes differ: {shape_t} in {truth} vs {shape_p} in "
            f"{prediction} (n_sims, n_seg, n_times); predict from the inputs "
            f"of the same simulations over the same duration"
        )
    t_t, t_p = ft["t"][:], fp["t"][:]
    if t_t.shape != t_p.shape or not np.allclose(t_t, t_p, rtol=0, atol=1e-9):
        raise ValueError(
            f"the times 't' differ between {truth} and {prediction}; predict "
            f"with the same interval and duration as the ground truth"
        )
    names = ["dipole", "imem"]
    for group in ("lfp", "csd", "eeg", "meg"):
        names += [f"{group}/{label}" for label in _labels(ft, group)]
    for name in names:
        if name in ft and name in fp and ft[name].shape != fp[name].shape:
            raise ValueError(
                f"{name} shapes differ: {ft[name].shape} in {truth} vs "
                f"{fp[name].shape} in {prediction}; compute the prediction's "
                f"signals with the forward settings of the ground truth"
            )
    if "soma_spike_prob" in fp:
        want = (shape_p[0], shape_p[2])
        if fp["soma_spike_prob"].shape != want:
            raise ValueError(
                f"{prediction}: soma_spike_prob must have shape (n_sims, "
                f"n_times) = {want}, got {fp['soma_spike_prob'].shape}"
            )


def _pick_label(f, group: str, value, name: str, path: Path) -> str | None:
    labels = _labels(f, group)
    if value is None:
        return labels[0] if labels else None
    check_type(value, str, name)
    if value not in labels:
        raise ValueError(
            f"{name} must be one of the labels under '{group}/' in {path} "
            f"({', '.join(labels) or 'none'}), got {value!r}"
        )
    return value


def _choose_window(t: np.ndarray, spikes, t_window) -> tuple[float, float]:
    """The window (ms) shown in trace plots."""
    dt = float(t[1] - t[0]) if t.size > 1 else 1.0
    lo, hi = float(t[0]) - dt / 2, float(t[-1]) + dt / 2
    if t_window is not None:
        try:
            t0, t1 = (float(v) for v in t_window)
        except (TypeError, ValueError):
            raise TypeError(
                f"t_window must be two numbers (t0, t1) in ms, got {t_window!r}"
            ) from None
        if not (np.isfinite(t0) and np.isfinite(t1) and t0 < t1):
            raise ValueError(
                f"t_window must be finite with t0 < t1 (ms), got {t_window!r}"
            )
        t0, t1 = max(t0, lo), min(t1, hi)
        if np.count_nonzero((t >= t0) & (t <= t1)) < 2:
            raise ValueError(
                f"t_window must hold at least two bins of the data ({lo:g}–{hi:g} "
                f"ms), got {t_window!r}"
            )
        return t0, t1
    if hi - lo <= DEFAULT_WINDOW:
        return lo, hi
    spikes = np.asarray([] if spikes is None else spikes, dtype=float)
    spikes = spikes[(spikes >= lo) & (spikes <= hi)]
    if spikes.size == 0:
        return lo, lo + DEFAULT_WINDOW
    # start a little before each spike; keep the start with the most spikes
    starts = np.clip(spikes - 0.1 * DEFAULT_WINDOW, lo, hi - DEFAULT_WINDOW)
    counts = [
        np.count_nonzero((spikes >= s) & (spikes < s + DEFAULT_WINDOW)) for s in starts
    ]
    start = float(starts[int(np.argmax(counts))])
    return start, start + DEFAULT_WINDOW


def _load(truth: Path, prediction: Path, ft, fp, sim, probe, head, t_window) -> _Pair:
    from ..data import read_cell

    _check_pair(ft, fp, truth, prediction)
    n_sims, n_seg, _ = ft["vmem"].shape
    if sim >= n_sims:
        raise ValueError(f"sim must be < {n_sims} (simulations in {truth}), got {sim}")
    geometry, operator = read_cell(ft, source=str(truth))
    if geometry.n_seg != n_seg:
        raise ValueError(
            f"{truth}: vmem has {n_seg} segments but the stored cell "
            f"{geometry.name} has {geometry.n_seg}"
        )
    csd_probe = probe
    if probe is None:
        # by default the CSD figure shows the first probe that has one
        csd_probe = _pick_label(ft, "csd", None, "probe", truth)
    probe = _pick_label(ft, "lfp", probe, "probe", truth)
    head = _pick_label(ft, "eeg", head, "head", truth)
    t = np.asarray(ft["t"][:], dtype=np.float64)

    spikes_true = None
    if "soma_spikes/t" in ft and "soma_spikes/ptr" in ft:
        ptr = ft["soma_spikes/ptr"]
        spikes_true = np.asarray(ft["soma_spikes/t"][ptr[sim] : ptr[sim + 1]])
    window = _choose_window(t, spikes_true, t_window)

    vmem_true = np.asarray(ft["vmem"][sim], dtype=np.float64)
    vmem_pred = np.asarray(fp["vmem"][sim], dtype=np.float64)
    prob = None
    if "soma_spike_prob" in fp:
        prob = np.asarray(fp["soma_spike_prob"][sim], dtype=np.float64)
        if not np.all((prob >= 0) & (prob <= 1)):
            raise ValueError(
                f"{prediction}: soma_spike_prob of sim {sim} must lie in [0, 1], "
                f"got values in [{np.nanmin(prob):g}, {np.nanmax(prob):g}]"
            )
    mid = geometry.mid
    soma = np.flatnonzero(geometry.region == 0)
    soma_pos = mid[soma].mean(0) if soma.size else mid[0]
    return _Pair(
        truth=truth,
        prediction=prediction,
        ft=ft,
        fp=fp,
        sim=sim,
        geometry=geometry,
        operator=operator,
        t=t,
        vmem_true=vmem_true,
        vmem_pred=vmem_pred,
        rmse=per_segment_rmse(vmem_true, vmem_pred),
        spikes_true=spikes_true,
        prob=prob,
        window=window,
        in_window=(t >= window[0]) & (t <= window[1]),
        probe=probe,
        csd_probe=csd_probe,
        head=head,
        soma_pos=soma_pos,
        dist=np.linalg.norm(mid - soma_pos, axis=1),
    )


# -- small drawing helpers ---------------------------------------------------


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _region_name(code: int) -> str:
    from ..cells import REGIONS

    return REGIONS[int(code)].replace("_", " ")


def _seg_label(geometry, idx: int) -> str:
    """``'dend[41](0.944)'``: the section name without its template prefix."""
    sec = geometry.sec_names[geometry.sec_index[idx]].rsplit(".", 1)[-1]
    return f"{sec}({geometry.seg_x[idx]:.3g})"


def _display_unit(peak: float, options) -> tuple[str, float]:
    """The first display unit that puts ``peak`` (file unit) at >= 1."""
    for unit, factor in options:
        if peak * factor >= 1:
            return unit, factor
    return options[-1]


def _pair_traces(ax, t, true, pred, *, lw=1.0):
    # NEURON drawn wider underneath, so that it shows where the two coincide
    ax.plot(t, true, color=_NEURON, lw=1.5 * lw, label="NEURON")
    ax.plot(t, pred, color=_SURROGATE, lw=0.9 * lw, label="surrogate")


def _figure_legend(fig, ax):
    """One legend (NEURON, surrogate) right of the panels, at the top."""
    handles, labels = ax.get_legend_handles_labels()
    fig.legend(handles[:2], labels[:2], loc="outside right upper", frameon=False)


def _contact_frame(attrs, n_contacts: int):
    """Contacts in the cell's frame: position along the apical axis and lateral.

    Returns
    -------
    s : ndarray, shape (n_contacts,)
        Position along the cell's apical axis, from the soma (µm).
    lateral : ndarray, shape (n_contacts, 3)
        Offset perpendicular to that axis (µm).
    local : ndarray, shape (n_contacts, 3) | None
        Contacts in the cell's own (unrotated) frame, soma at the origin
        (µm); None when the dataset has no ``contacts`` attribute (``s`` is
        then the contact index).
    """
    from ..forward import rotation_matrix

    contacts = np.asarray(attrs.get("contacts", np.zeros((0, 3))), dtype=float)
    if contacts.shape != (n_contacts, 3):
        # no positions: contact index stands for the position
        s = np.arange(n_contacts, dtype=float)
        return s, np.zeros((n_contacts, 3)), None
    position = np.asarray(attrs.get("cell_position", np.zeros(3)), dtype=float)
    rot = rotation_matrix(attrs.get("cell_rotation", np.zeros(3)))
    # the cell is rotated about its soma (the origin), then moved to position
    local = (contacts - position) @ rot  # rot.T @ c for each row
    s = local[:, 1]
    lateral = local.copy()
    lateral[:, 1] = 0.0
    return s, lateral, local


def _pick_column(s, lateral):
    """Contacts of one column of a multi-column probe.

    Returns
    -------
    idx : ndarray of int
        Contacts of the chosen column, sorted along the apical axis.
    note : str
        Which column, for the title ("" for a single column).
    """
    key = np.round(lateral, 0)
    columns, inverse = np.unique(key, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    if len(columns) == 1:
        idx = np.arange(len(s))
    else:
        counts = np.bincount(inverse, minlength=len(columns))
        offaxis = np.linalg.norm(columns, axis=1)
        # most contacts first, then nearest the apical axis
        best = min(range(len(columns)), key=lambda c: (-counts[c], offaxis[c]))
        idx = np.flatnonzero(inverse == best)
    idx = idx[np.argsort(s[idx], kind="stable")]
    note = ""
    if len(columns) > 1:
        note = (
            f"; one column of {len(columns)}: {len(idx)} contacts "
            f"{np.linalg.norm(lateral[idx[0]]):.0f} µm from the apical axis"
        )
    return idx, note


def _edges(centres: np.ndarray) -> np.ndarray:
    if centres.size == 1:
        return np.array([centres[0] - 0.5, centres[0] + 0.5])
    mids = (centres[1:] + centres[:-1]) / 2
    return np.r_[2 * centres[0] - mids[0], mids, 2 * centres[-1] - mids[-1]]


# -- figures -----------------------------------------------------------------


def _trace_sites(p: _Pair) -> list[tuple[int, str]]:
    """Soma and the farthest segment of each dendritic region present."""
    from ..cells import REGIONS

    geometry = p.geometry
    sites = []
    soma = np.flatnonzero(geometry.region == 0)
    if soma.size:
        sites.append((int(soma[np.argmin(p.dist[soma])]), "soma"))
    else:
        sites.append((0, f"segment 0 ({_seg_label(geometry, 0)})"))
    for region in _TRACE_REGIONS:
        segs = np.flatnonzero(geometry.region == REGIONS.index(region))
        if segs.size:
            seg = int(segs[np.argmax(p.dist[segs])])
            sites.append((seg, f"{_region_name(REGIONS.index(region))}"))
    return sites


def _fig_voltage_traces(p: _Pair):
    sites = _trace_sites(p)
    w = p.in_window
    tw = p.t[w]
    n = len(sites)
    with_prob = p.prob is not None
    ratios = [3.0] * n + ([1.3] if with_prob else [])
    fig = _figure((11, 1.75 * n + (1.4 if with_prob else 0) + 0.8))
    axes = fig.subplots(len(ratios), 1, sharex=True, height_ratios=ratios)
    axes = np.atleast_1d(axes)
    for k, (seg, name) in enumerate(sites):
        ax = axes[k]
        _pair_traces(ax, tw, p.vmem_true[seg, w], p.vmem_pred[seg, w])
        ax.set_ylabel("V (mV)")
        where = "" if name == "soma" else f", {p.dist[seg]:.0f} µm from soma"
        ax.set_title(
            f"{name}{where} [{_seg_label(p.geometry, seg)}]: "
            f"RMSE {p.rmse[seg]:.2f} mV (whole sim)",
            loc="left",
        )
    if with_prob:
        ax = axes[-1]
        ax.plot(tw, p.prob[w], color=_SURROGATE, lw=1.0, label="surrogate P(spike)")
        ax.axhline(_SPIKE_THRESHOLD, color="0.6", lw=0.8, ls=":")
        spikes = p.spikes_true if p.spikes_true is not None else np.zeros(0)
        spikes = spikes[(spikes >= p.window[0]) & (spikes <= p.window[1])]
        ax.vlines(spikes, 1.08, 1.38, color=_NEURON, lw=1.2, label="NEURON spikes")
        ax.set_ylim(-0.05, 1.45)
        ax.set_yticks([0, 0.5, 1])
        ax.set_ylabel("P(spike)")
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    else:
        logger.info(
            "voltage_traces: no soma_spike_prob in the prediction; panel left out"
        )
    axes[-1].set_xlabel("time (ms)")
    axes[-1].set_xlim(p.window)
    _figure_legend(fig, axes[0])
    fig.suptitle(
        f"Membrane potential, NEURON vs surrogate: {p.geometry.name}, sim {p.sim}, "
        f"{p.window_text()}"
    )
    return fig


def _morphology(ax, geometry, values, norm, cmap, label):
    from matplotlib.collections import LineCollection

    lines = np.stack([geometry.x, geometry.y], axis=-1)  # (n_seg, 2, 2)
    widths = np.clip(geometry.d, 0.6, 4.0)
    coll = LineCollection(
        lines, linewidths=widths, cmap=cmap, norm=norm, capstyle="round"
    )
    coll.set_array(values)
    ax.add_collection(coll)
    soma = np.flatnonzero(geometry.region == 0)
    if soma.size:
        mid = geometry.mid[soma].mean(0)
        ax.scatter(
            [mid[0]],
            [mid[1]],
            c=[values[soma].mean()],
            cmap=cmap,
            norm=norm,
            s=60,
            edgecolors="black",
            linewidths=0.8,
            zorder=3,
        )
    ax.autoscale_view()
    ax.set_aspect("equal", adjustable="datalim")
    # grey ground: the light end of the colour map stays visible
    ax.set_facecolor("0.88")
    ax.set_xlabel("x (µm)")
    ax.set_ylabel("y (µm)")
    extend = "max" if np.nanmax(values) > norm.vmax else "neither"
    cbar = ax.figure.colorbar(coll, ax=ax, label=label, extend=extend, shrink=0.9)
    return cbar


def _region_boxes(ax, geometry, values, ylabel):
    codes = [
        c
        for c in np.unique(geometry.region)
        if np.isfinite(values[geometry.region == c]).any()
    ]
    data = [values[geometry.region == c] for c in codes]
    data = [d[np.isfinite(d)] for d in data]
    names = [f"{_region_name(c)}\n(n={len(d)})" for c, d in zip(codes, data)]
    pos = np.arange(1, len(codes) + 1)
    ax.boxplot(
        data,
        positions=pos,
        widths=0.6,
        showfliers=False,
        medianprops={"color": _SURROGATE, "lw": 2},
    )
    for x, d in zip(pos, data):
        # spread the points evenly across the box (no random jitter)
        off = np.linspace(-0.18, 0.18, len(d)) if len(d) > 1 else np.zeros(1)
        dense = len(d) > 50
        ax.scatter(
            x + off,
            d,
            s=4 if dense else 8,
            color="0.3",
            alpha=0.3 if dense else 0.6,
            lw=0,
            zorder=3,
        )
    ax.set_xticks(pos, names)
    ax.set_ylabel(ylabel)
    ax.grid(axis="y", color="0.9")


def _imem_pair(p: _Pair):
    """NEURON's imem (stored, else derived) and the surrogate's (nA)."""
    if "imem" in p.ft:
        true = np.asarray(p.ft["imem"][p.sim], dtype=np.float64)
    elif p.operator is not None:
        true = p.operator.apply(p.vmem_true)
    else:
        return None
    if "imem" in p.fp:
        pred = np.asarray(p.fp["imem"][p.sim], dtype=np.float64)
    elif p.operator is not None:
        pred = p.operator.apply(p.vmem_pred)
    else:
        return None
    return true, pred


def _fig_error_morphology(p: _Pair):
    from matplotlib.colors import LogNorm, Normalize

    currents = _imem_pair(p)
    if currents is None:
        logger.info(
            "error_morphology: no imem and no imem_operator in %s; current row "
            "left out",
            p.truth,
        )
    n_rows = 1 if currents is None else 2
    fig = _figure((11, 5.2 * n_rows))
    axes = np.atleast_2d(fig.subplots(n_rows, 2, width_ratios=[1.25, 1], squeeze=False))
    geometry = p.geometry

    vmax = float(np.percentile(p.rmse, 99)) or float(p.rmse.max()) or 1.0
    _morphology(
        axes[0, 0],
        geometry,
        p.rmse,
        Normalize(0.0, vmax),
        "viridis",
        "RMSE of V (mV)",
    )
    axes[0, 0].set_title("Membrane potential: RMSE per segment (whole simulation)")
    _region_boxes(axes[0, 1], geometry, p.rmse, "RMSE of V per segment (mV)")
    axes[0, 1].set_title("Membrane potential: RMSE by region")

    if currents is not None:
        true, pred = currents
        sd = true.std(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            rel = np.where(sd > 0, per_segment_rmse(true, pred) / sd, np.nan)
        finite = rel[np.isfinite(rel) & (rel > 0)]
        lo = float(finite.min()) if finite.size else 1e-3
        hi = float(np.percentile(finite, 99)) if finite.size else 1.0
        norm = LogNorm(max(lo, hi * 1e-4), max(hi, lo * 10))
        shown = np.where(np.isfinite(rel), np.maximum(rel, norm.vmin), norm.vmin)
        _morphology(
            axes[1, 0],
            geometry,
            shown,
            norm,
            "plasma",
            "RMSE / SD of NEURON imem",
        )
        axes[1, 0].set_title(
            "Transmembrane current (from V by Kirchhoff): relative RMSE"
        )
        _region_boxes(axes[1, 1], geometry, rel, "relative RMSE of imem per segment")
        axes[1, 1].set_yscale("log")
        axes[1, 1].axhline(1.0, color="0.5", ls=":", lw=1)
        axes[1, 1].set_ylim(top=max(axes[1, 1].get_ylim()[1], 2.0))
        axes[1, 1].annotate(
            "error = SD of NEURON",
            (1.0, 1.0),
            xycoords=("axes fraction", "data"),
            xytext=(-4, 3),
            textcoords="offset points",
            ha="right",
            fontsize=8,
            color="0.4",
        )
        axes[1, 1].set_title("Transmembrane current: relative RMSE by region")
    fig.suptitle(
        f"Where the surrogate errs: {geometry.name}, sim {p.sim} "
        f"(median RMSE of V {np.median(p.rmse):.2f} mV, max {p.rmse.max():.2f} mV)"
    )
    return fig


def _fig_heatmaps(p: _Pair, kind: str):
    from ..metrics import per_channel

    label = p.probe if kind == "lfp" else p.csd_probe
    if label is None:
        return None, f"no {kind}/* in the ground truth"
    name = f"{kind}/{label}"
    pair = p.both(name)
    if pair is None:
        return None, f"no {name} in both files"
    true, pred = pair
    if kind == "lfp":
        factor, unit, what = _MV_TO_UV, "µV", "LFP"
    else:
        factor, unit, what = _NA_PER_UM3_TO_UA_PER_MM3, "µA/mm³", "CSD"
    s, lateral, local = _contact_frame(dict(p.ft[name].attrs), true.shape[0])
    idx, note = _pick_column(s, lateral)
    depth = s[idx]
    w = p.in_window
    tw = p.t[w]
    t_true = true[idx][:, w] * factor
    t_pred = pred[idx][:, w] * factor
    diff = t_pred - t_true
    vmax = (
        float(np.percentile(np.abs(t_true), 99)) or float(np.abs(t_true).max()) or 1.0
    )
    metrics = per_channel(pred[idx], true[idx])

    fig = _figure((14, 5.2))
    left, right = fig.subfigures(1, 2, width_ratios=[4.6, 1])
    axes = left.subplots(1, 3, sharex=True, sharey=True)
    edges_t = np.r_[tw - p.dt / 2, tw[-1] + p.dt / 2]
    edges_y = _edges(depth)
    titles = ("NEURON", "surrogate", "surrogate − NEURON")
    for ax, data, title in zip(axes, (t_true, t_pred, diff), titles):
        mesh = ax.pcolormesh(
            edges_t,
            edges_y,
            data,
            cmap="RdBu_r",
            vmin=-vmax,
            vmax=vmax,
            shading="flat",
            rasterized=True,
        )
        ax.set_title(title)
        ax.set_xlabel("time (ms)")
    axes[0].set_ylabel(
        "contact position along apical axis (µm, soma at 0)"
        if local is not None
        else "contact index"
    )
    left.colorbar(
        mesh,
        ax=axes,
        label=f"{what} ({unit}); 99th-percentile scale, same for all three",
        extend="both",
        shrink=0.95,
    )
    ax_r, ax_c = right.subplots(1, 2, sharey=True)
    ax_r.plot(metrics["relative_rmse"], depth, "o-", color=_SURROGATE, ms=3)
    ax_r.axvline(1.0, color="0.6", ls=":", lw=1)
    ax_r.set_xlabel("RMSE / SD")
    ax_r.set_ylabel("position along apical axis (µm)")
    rel = metrics["relative_rmse"]
    ax_r.set_xlim(0, 1.15 * max(1.0, np.nanmax(rel, initial=0.0)))
    corr = metrics["correlation"]
    ax_c.plot(corr, depth, "o-", color=_SURROGATE, ms=3)
    ax_c.set_xlabel("correlation r")
    ax_c.set_xlim(min(0.0, np.nanmin(corr, initial=0.0)) - 0.1, 1.1)
    ax_c.set_xticks([0, 0.5, 1])
    for ax in (ax_r, ax_c):
        ax.set_ylim(edges_y[0], edges_y[-1])
        ax.grid(color="0.9")
    right.suptitle("per contact, whole sim", fontsize=10)
    fig.suptitle(
        f"{what} on {label}: NEURON vs surrogate, sim {p.sim}, {p.window_text()}{note}"
    )
    return fig, ""


def _top_channels(true: np.ndarray, k: int) -> np.ndarray:
    return np.argsort(-true.std(axis=-1), kind="stable")[:k]


def _fig_dipole_eeg_meg(p: _Pair):
    columns = []
    dipole = p.both("dipole")
    if dipole is not None:
        columns.append("dipole")
    else:
        logger.info("dipole_eeg_meg: no dipole in both files; column left out")
    eeg_name = f"eeg/{p.head}" if p.head else None
    eeg = p.both(eeg_name) if eeg_name else None
    if eeg is not None:
        columns.append("eeg")
    else:
        logger.info("dipole_eeg_meg: no EEG in both files; column left out")
    meg_labels = [m for m in _labels(p.ft, "meg") if f"meg/{m}" in p.fp]
    meg = p.both(f"meg/{meg_labels[0]}") if meg_labels else None
    if meg is not None:
        columns.append("meg")
    else:
        logger.info("dipole_eeg_meg: no MEG in both files; column left out")
    if not columns:
        return None, "no dipole, EEG or MEG in both files"

    w = p.in_window
    tw = p.t[w]
    fig = _figure((5.0 * len(columns) + 1, 7.0))
    axes = np.atleast_2d(fig.subplots(3, len(columns), sharex=True, squeeze=False))
    for c, kind in enumerate(columns):
        col = axes[:, c]
        if kind == "dipole":
            true, pred = dipole
            for k, comp in enumerate("xyz"):
                _pair_traces(col[k], tw, true[k, w], pred[k, w])
                col[k].set_ylabel(f"$p_{comp}$ (nA·µm)")
            col[0].set_title("Current dipole moment (cell frame, apical +y)")
        elif kind == "eeg":
            true, pred = eeg
            attrs = p.ft[eeg_name].attrs
            names = (
                json.loads(attrs["electrode_names"])
                if "electrode_names" in attrs
                else None
            )
            unit, factor = _display_unit(float(np.abs(true).max()), _EEG_UNITS)
            top = _top_channels(true, 3)
            for k, e in enumerate(top):
                label = names[e] if names else f"electrode {e}"
                _pair_traces(col[k], tw, true[e, w] * factor, pred[e, w] * factor)
                col[k].set_ylabel(f"EEG {label} ({unit})")
            ref = str(attrs.get("reference", ""))
            col[0].set_title(
                f"EEG, {p.head}" + (f" ({ref} ref.)" if ref else "") + ": largest 3"
            )
        else:
            true, pred = meg  # (n_sensors, 3, n_times)
            attrs = p.ft[f"meg/{meg_labels[0]}"].attrs
            normals = attrs.get("sensor_normals")
            if normals is not None and np.shape(normals) == (true.shape[0], 3):
                true = np.einsum("sct,sc->st", true, normals)
                pred = np.einsum("sct,sc->st", pred, normals)
                comp = "B·n"
            else:
                true = np.linalg.norm(true, axis=1)
                pred = np.linalg.norm(pred, axis=1)
                comp = "|B|"
            unit, factor = _display_unit(float(np.abs(true).max()), _MEG_UNITS)
            for k, s in enumerate(_top_channels(true, 3)):
                _pair_traces(col[k], tw, true[s, w] * factor, pred[s, w] * factor)
                col[k].set_ylabel(f"sensor {s}: {comp} ({unit})")
            note = "" if unit == "fT" else f"; 1 {unit} = {1 / factor:g} fT"
            col[0].set_title(f"MEG, {meg_labels[0]} model: largest 3 ({comp}{note})")
        col[-1].set_xlabel("time (ms)")
    _figure_legend(fig, axes[0, 0])
    axes[0, 0].set_xlim(p.window)
    fig.suptitle(
        f"Dipole, EEG and MEG: NEURON vs surrogate, sim {p.sim}, {p.window_text()}"
    )
    return fig, ""


def _fig_spectra(p: _Pair):
    from scipy.signal import coherence, welch

    n_times = p.t.size
    if n_times < 32:
        return None, f"too few bins ({n_times}) for spectra"
    fs = 1e3 / p.dt  # Hz, from the bin width in ms
    nperseg = min(512, n_times // 2)
    signals = []  # (title, true, pred, psd unit)
    lfp_name = f"lfp/{p.probe}" if p.probe else None
    lfp = p.both(lfp_name) if lfp_name else None
    if lfp is not None:
        true, pred = lfp
        s, _, local = _contact_frame(dict(p.ft[lfp_name].attrs), true.shape[0])
        if local is not None:
            near = int(np.argmin(np.linalg.norm(local - p.soma_pos, axis=1)))
            target = _apical_target(p)
            others = [i for i in range(len(s)) if i != near]
            picks = [(near, "near soma")]
            if others and target is not None:
                far = min(others, key=lambda i: np.linalg.norm(local[i] - target))
                picks.append((far, "apical"))
        else:
            picks = [(0, "contact 0")]
        for i, where in picks:
            signals.append(
                (
                    f"LFP {where}: contact {i}, {s[i]:.0f} µm on axis",
                    true[i] * _MV_TO_UV,
                    pred[i] * _MV_TO_UV,
                    "µV²/Hz",
                )
            )
    dipole = p.both("dipole")
    if dipole is not None:
        signals.append(
            ("dipole $p_y$ (apical axis)", dipole[0][1], dipole[1][1], "(nA·µm)²/Hz")
        )
    eeg_name = f"eeg/{p.head}" if p.head else None
    eeg = p.both(eeg_name) if eeg_name else None
    if eeg is not None:
        true, pred = eeg
        e = int(_top_channels(true, 1)[0])
        attrs = p.ft[eeg_name].attrs
        names = (
            json.loads(attrs["electrode_names"]) if "electrode_names" in attrs else None
        )
        unit, factor = _display_unit(float(np.abs(true[e]).max()), _EEG_UNITS)
        signals.append(
            (
                f"EEG {names[e] if names else e} (largest)",
                true[e] * factor,
                pred[e] * factor,
                f"{unit}²/Hz",
            )
        )
    if not signals:
        return None, "no LFP, dipole or EEG in both files"

    fig = _figure((3.6 * len(signals) + 0.5, 6.0))
    axes = np.atleast_2d(
        fig.subplots(2, len(signals), sharex=True, height_ratios=[2, 1], squeeze=False)
    )
    for c, (title, true, pred, unit) in enumerate(signals):
        f, p_true = welch(true, fs=fs, nperseg=nperseg)
        _, p_pred = welch(pred, fs=fs, nperseg=nperseg)
        _, coh = coherence(true, pred, fs=fs, nperseg=nperseg)
        keep = f > 0
        ax = axes[0, c]
        ax.loglog(f[keep], p_true[keep], color=_NEURON, lw=2.0, label="NEURON")
        ax.loglog(f[keep], p_pred[keep], color=_SURROGATE, lw=1.0, label="surrogate")
        ax.set_title(title)
        ax.set_ylabel(f"PSD ({unit})")
        ax.grid(which="major", color="0.9")
        ax = axes[1, c]
        ax.semilogx(f[keep], coh[keep], color=_SURROGATE, lw=1.2)
        ax.set_ylim(0, 1.05)
        ax.set_xlabel("frequency (Hz)")
        ax.set_ylabel("coherence")
        ax.grid(color="0.9")
    axes[0, 0].legend(loc="lower left")
    fig.suptitle(
        f"Power spectra and NEURON–surrogate coherence, sim {p.sim}, whole "
        f"simulation (Welch, {nperseg * p.dt:g}-ms segments, fs {fs:g} Hz)"
    )
    return fig, ""


def _apical_target(p: _Pair):
    """Centroid of the tuft (else trunk, else dendrites above the soma), µm."""
    from ..cells import REGIONS

    geometry, mid = p.geometry, p.geometry.mid
    for region in ("tuft", "apical_trunk", "oblique"):
        mask = geometry.region == REGIONS.index(region)
        if mask.any():
            return mid[mask].mean(0)
    above = mid[:, 1] > p.soma_pos[1]
    return mid[above].mean(0) if above.any() else None


def _input_spikes(p: _Pair, kind: str):
    grp = f"inputs/{kind}"
    if f"{grp}/ptr" not in p.ft:
        return None
    ptr = p.ft[f"{grp}/ptr"]
    a, b = int(ptr[p.sim]), int(ptr[p.sim + 1])
    return np.asarray(p.ft[f"{grp}/seg"][a:b]), np.asarray(p.ft[f"{grp}/t"][a:b])


def _fig_raster(p: _Pair):
    exc, inh = _input_spikes(p, "exc"), _input_spikes(p, "inh")
    if exc is None and inh is None and p.spikes_true is None:
        return None, "no input spikes and no somatic spikes in the ground truth"
    t0, t1 = p.window
    y_mid = p.geometry.mid[:, 1]
    fig = _figure((11, 7.5))
    ax_exc, ax_inh, ax_sp = fig.subplots(3, 1, sharex=True, height_ratios=[3, 3, 1.3])
    inputs = ((exc, _EXC, "excitatory", ax_exc), (inh, _INH, "inhibitory", ax_inh))
    for spikes, color, name, ax in inputs:
        if spikes is None:
            ax.set_axis_off()
            logger.info("raster: no %s input spikes in %s", name, p.truth)
            continue
        seg, t = spikes
        keep = (t >= t0) & (t <= t1)
        ax.scatter(
            t[keep],
            y_mid[seg[keep]],
            s=4,
            marker="|",
            color=color,
            alpha=0.7,
            linewidths=0.8,
            rasterized=True,
        )
        ax.set_ylabel("synapse y (µm)")
        ax.set_title(
            f"{name} input: {np.count_nonzero(keep)} spikes "
            f"({np.count_nonzero(keep) / (t1 - t0):.2g} kHz over all synapses); "
            f"y = position along the apical axis, soma at 0",
            loc="left",
            color=color,
        )
        ax.grid(axis="y", color="0.92")

    rows, colors, labels = [], [], []
    if p.spikes_true is not None:
        spk = p.spikes_true[(p.spikes_true >= t0) & (p.spikes_true <= t1)]
        rows.append(spk)
        colors.append(_NEURON)
        labels.append(f"NEURON\n({spk.size} spikes)")
    if p.prob is not None:
        above = p.prob >= _SPIKE_THRESHOLD
        onsets = np.count_nonzero(above & ~np.r_[False, above[:-1]] & p.in_window)
        rows.append(p.t[above & p.in_window])
        colors.append(_SURROGATE)
        labels.append(f"surrogate\n(P ≥ {_SPIKE_THRESHOLD:g}: {onsets} events)")
    else:
        logger.info("raster: no soma_spike_prob in the prediction; row left out")
    offsets = np.arange(len(rows))[::-1]
    if rows:
        ax_sp.eventplot(
            rows, lineoffsets=offsets, linelengths=0.8, colors=colors, lw=1.5
        )
    ax_sp.set_yticks(offsets, labels)
    ax_sp.set_ylim(-0.6, len(rows) - 0.4)
    ax_sp.set_xlabel("time (ms)")
    ax_sp.set_title("Somatic spikes")
    ax_sp.set_xlim(p.window)
    fig.suptitle(
        f"Input and output spikes: {p.geometry.name}, sim {p.sim}, {p.window_text()}"
    )
    return fig, ""


# -- public entry point ------------------------------------------------------


def _check_formats(formats) -> tuple[str, ...]:
    from matplotlib.figure import Figure

    if isinstance(formats, str):
        formats = (formats,)
    try:
        formats = tuple(formats)
    except TypeError:
        raise TypeError(
            f"formats must be a sequence of file extensions such as ('png', "
            f"'pdf'), got {formats!r}"
        ) from None
    supported = Figure().canvas.get_supported_filetypes()
    if not formats:
        raise ValueError("formats must name at least one format, e.g. ('png',)")
    for fmt in formats:
        if not isinstance(fmt, str) or fmt not in supported:
            raise ValueError(
                f"formats must hold formats matplotlib writes "
                f"({', '.join(sorted(supported))}), got {fmt!r}"
            )
    return formats


def validation_figures(
    truth,
    prediction,
    out,
    *,
    sim: int = 0,
    probe: str | None = None,
    head: str | None = None,
    t_window=None,
    formats=("png",),
    verbose=None,
) -> dict[str, Path]:
    """Figures comparing a surrogate's prediction with NEURON on one simulation.

    Parameters
    ----------
    truth : path-like
        Ground-truth HDF5 file: a dataset shard, ideally simulated with
        ``--probe``, ``--head`` and ``--meg``. Needs ``vmem`` (n_sims, n_seg,
        n_times) in mV, ``t`` (n_times,) in ms, the ``geometry`` group and a
        ``cell_hash`` attribute; uses, when present, ``imem`` (nA; else derived
        with the stored ``imem_operator``), ``lfp/<label>`` and
        ``csd/<label>`` (n_sims, n_contacts, n_times) in mV and nA/µm³,
        ``dipole`` (n_sims, 3, n_times) in nA·µm, ``eeg/<head>`` (n_sims,
        n_electrodes, n_times) in mV, ``meg/<model>`` (n_sims, n_sensors, 3,
        n_times) in fT, ``soma_spikes`` and ``inputs``.
    prediction : path-like
        The surrogate's file with the same datasets and shapes (signals it
        lacks are skipped), plus ``soma_spike_prob`` (n_sims, n_times) in
        [0, 1].
    out : path-like
        Folder for the figures (created). Figures of the same names in it are
        replaced.
    sim : int
        Which simulation (first axis) to show.
    probe : str | None
        Label of the LFP/CSD probe (``lfp/<label>``); default: the first.
    head : str | None
        EEG head (``eeg/<head>``); default: the first.
    t_window : tuple of 2 float | None
        Times (t0, t1) in ms shown in the trace plots; default: a
        1000-ms window (all of a shorter simulation) holding as many NEURON
        soma spikes as possible. Error maps and spectra use the whole
        simulation.
    formats : sequence of str
        File formats, each saved at 150 dpi (e.g. ``("png", "pdf")``).
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    paths : dict of str to Path
        Figure name -> file of the first format, for every figure made; names
        are among :data:`FIGURE_NAMES`:

        - ``voltage_traces``: soma and the farthest segment of each dendritic
          region (mV), with the predicted spike probability and NEURON's spikes.
        - ``error_morphology``: the cell coloured by per-segment RMSE of V
          (mV), and by the relative RMSE of the derived currents, with both
          by region.
        - ``lfp_heatmaps``, ``csd_heatmaps``: contact position vs time for
          NEURON, surrogate and their difference on one colour scale, with the
          relative RMSE and correlation of each contact.
        - ``dipole_eeg_meg``: dipole components, the three largest EEG
          electrodes and MEG sensors.
        - ``spectra``: Welch power spectra of the LFP near the soma and in the
          apical tree, the dipole's apical component and the largest EEG
          channel, with the magnitude-squared coherence.
        - ``raster``: input spikes by synapse position, NEURON's somatic spikes
          and the bins where the surrogate's spike probability is >= 0.5.

        A figure whose data are missing from either file is skipped and the
        reason logged at INFO.

    Raises
    ------
    ValueError
        If the files are of different cells (``cell_hash``), have different
        shapes or times, ``sim`` is out of range, ``probe``/``head`` is not in
        the ground truth, ``t_window`` holds no data or a format is unknown.

    Notes
    -----
    Distances from the soma are straight-line distances of segment midpoints
    from the soma's centre. Heat maps use the contact position along the
    cell's apical axis (the ``y`` of the contacts for an unrotated cell); for
    probes with several columns (e.g. Neuropixels) they show the column with
    the most contacts, nearest the apical axis, and say so in the title. The
    stored signals are 1-ms bin means, so spectra near the Nyquist frequency
    are shaped by the boxcar.
    """
    with use_log_level(verbose):
        start = time.perf_counter()
        check_type(truth, (str, os.PathLike), "truth", "a path (str or os.PathLike)")
        check_type(
            prediction, (str, os.PathLike), "prediction", "a path (str or os.PathLike)"
        )
        check_type(out, (str, os.PathLike), "out", "a path (str or os.PathLike)")
        check_positive(sim, "sim", integer=True, strict=False)
        formats = _check_formats(formats)
        truth, prediction, out = Path(truth), Path(prediction), Path(out)
        if out.exists() and not out.is_dir():
            raise NotADirectoryError(
                f"out must be a folder for the figures, got the file {out}; give "
                f"a folder (new or existing)"
            )
        ft = open_hdf5(truth, "truth", what="a ground-truth dataset shard")
        with ft:
            fp = open_hdf5(prediction, "prediction", what="a prediction file")
            with fp:
                pair = _load(truth, prediction, ft, fp, sim, probe, head, t_window)
                logger.info(
                    "Validation figures of sim %d (%s vs %s): %d segments x %d "
                    "bins, traces %s",
                    sim,
                    truth.name,
                    prediction.name,
                    pair.geometry.n_seg,
                    pair.t.size,
                    pair.window_text(),
                )
                out.mkdir(parents=True, exist_ok=True)
                paths = _make_all(pair, out, formats)
        logger.info(
            "Wrote %d validation figure(s) to %s in %.1f s",
            len(paths),
            out,
            time.perf_counter() - start,
        )
        return paths


def _make_all(p: _Pair, out: Path, formats) -> dict[str, Path]:
    import matplotlib

    makers = {
        "voltage_traces": lambda: (_fig_voltage_traces(p), ""),
        "error_morphology": lambda: (_fig_error_morphology(p), ""),
        "lfp_heatmaps": lambda: _fig_heatmaps(p, "lfp"),
        "csd_heatmaps": lambda: _fig_heatmaps(p, "csd"),
        "dipole_eeg_meg": lambda: _fig_dipole_eeg_meg(p),
        "spectra": lambda: _fig_spectra(p),
        "raster": lambda: _fig_raster(p),
    }
    paths = {}
    with matplotlib.rc_context(_RC):
        for name in FIGURE_NAMES:
            fig, why = makers[name]()
            if fig is None:
                logger.info("Skipped %s: %s", name, why)
                continue
            for fmt in formats:
                target = out / f"{name}.{fmt}"
                with atomic_path(target, suffix=f".{fmt}") as tmp:
                    fig.savefig(tmp, dpi=150, format=fmt)
                paths.setdefault(name, target)
            logger.debug("Saved %s", paths[name])
    return paths
