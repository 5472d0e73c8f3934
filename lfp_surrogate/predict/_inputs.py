"""Synaptic inputs for prediction: from files, from synapse locations, checked.

A surrogate reads excitatory and inhibitory spike counts per segment. Users
hold their input in other forms: a dataset shard, spike times per synapse
location (a section and a position along it, or a point in µm). This module
turns each into :class:`~lfp_surrogate.inputs.SpikeTrains` of the model's
cell, and checks that the input resembles what the model was trained on.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from .._logging import logger
from .._validation import check_positive, check_type
from ..cells import REGIONS
from ..inputs import SYNAPTIC_REGIONS, InputStatistics, SpikeTrains, generate_inputs

__all__ = [
    "InputOutOfDistributionWarning",
    "input_features",
    "input_reference",
    "check_input_distribution",
    "read_inputs",
    "reference_from_inputs",
    "spikes_from_locations",
]

#: Length (ms) of the windows over which input features are compared.
FEATURE_WINDOW = 1000.0
#: Factor by which a feature may exceed the training range before a warning.
FEATURE_MARGIN = 2.0
#: Largest distance (µm) from a point to the segment it is mapped to.
MAX_POINT_DISTANCE = 50.0
#: Seed and size of the reference drawn from a card's input statistics.
_REFERENCE_SEED = 20261204
_REFERENCE_SIMS = 2
_REFERENCE_DURATION = 3000.0


class InputOutOfDistributionWarning(UserWarning):
    """The input differs from the inputs the surrogate was trained on."""


# -- inputs from files -------------------------------------------------------


def read_inputs(path, geometry, *, name: str = "inputs") -> list[SpikeTrains]:
    """Read every simulation's input from an HDF5 file of the dataset layout.

    Parameters
    ----------
    path : path-like
        A dataset shard, a prediction file or any HDF5 file with the groups
        ``inputs/exc`` and ``inputs/inh`` (each ``seg`` int32, ``t`` float64
        in ms, ``ptr`` offsets of shape (n_sims + 1,)) and the attribute
        ``duration`` (ms). A ``cell_hash`` attribute, when present, must be
        the cell's.
    geometry : CellGeometry
        The cell the inputs must belong to.
    name : str
        Parameter name for messages.

    Returns
    -------
    inputs : list of SpikeTrains
        One per simulation, in file order.
    """
    from .._io import open_hdf5

    path = Path(path)
    with open_hdf5(path, name, what="an HDF5 file with an 'inputs' group") as f:
        missing = [
            f"inputs/{k}/{d}"
            for k in ("exc", "inh")
            for d in ("seg", "t", "ptr")
            if f"inputs/{k}/{d}" not in f
        ]
        if missing:
            raise ValueError(
                f"{name}: {path} has no input in the dataset layout ({missing[0]} "
                f"is missing); give a dataset shard or a file written by "
                f"lfp-surrogate predict"
            )
        if "duration" not in f.attrs:
            raise ValueError(f"{name}: {path} lacks the attribute 'duration' (ms)")
        file_hash = f.attrs.get("cell_hash")
        if file_hash is not None and str(file_hash) != geometry.cell_hash:
            raise ValueError(
                f"{name}: {path} holds inputs for cell {f.attrs.get('cell')!r} "
                f"(hash {file_hash}), not for {geometry.name!r} (hash "
                f"{geometry.cell_hash}); use inputs made for the model's cell"
            )
        duration = float(f.attrs["duration"])
        ptr = {k: f[f"inputs/{k}/ptr"][:] for k in ("exc", "inh")}
        n_sims = len(ptr["exc"]) - 1
        if n_sims < 1 or len(ptr["inh"]) != n_sims + 1:
            raise ValueError(
                f"{name}: {path} has inconsistent input offsets (inputs/exc/ptr "
                f"and inputs/inh/ptr must both have n_sims + 1 entries)"
            )
        data = {
            k: (f[f"inputs/{k}/seg"][:], f[f"inputs/{k}/t"][:]) for k in ("exc", "inh")
        }
    inputs = []
    for j in range(n_sims):
        parts = {}
        for kind in ("exc", "inh"):
            a, b = ptr[kind][j], ptr[kind][j + 1]
            parts[f"{kind}_seg"] = data[kind][0][a:b]
            parts[f"{kind}_t"] = data[kind][1][a:b]
        try:
            inputs.append(SpikeTrains(n_seg=geometry.n_seg, duration=duration, **parts))
        except ValueError as err:
            raise ValueError(f"{name}: {path}, simulation {j}: {err}") from None
    return inputs


# -- inputs from synapse locations -------------------------------------------


def _segment_of(geometry, location, name: str) -> int:
    """Segment index of a location ``(section, x)`` or ``(x, y, z)`` in µm."""
    if isinstance(location, str):
        raise TypeError(
            f"{name}: a location must be (section name, position in [0, 1]) or a "
            f"point (x, y, z) in µm, got the string {location!r}"
        )
    loc = tuple(location) if isinstance(location, Sequence) else (location,)
    if len(loc) == 2 and isinstance(loc[0], str):
        sec, x = loc
        if sec not in geometry.sec_names:
            # template cells name sections "Template[0].dend[3]": accept "dend[3]"
            short = [s for s in geometry.sec_names if s.rsplit(".", 1)[-1] == sec]
            if len(short) != 1:
                stem = sec.rsplit(".", 1)[-1].split("[")[0]
                close = [
                    s.rsplit(".", 1)[-1]
                    for s in geometry.sec_names
                    if s.rsplit(".", 1)[-1].startswith(stem)
                ][:3]
                raise ValueError(
                    f"{name}: no section {sec!r} in cell {geometry.name!r}"
                    + (f" (e.g. {', '.join(close)})" if close else "")
                    + "; section names are in geometry.sec_names"
                )
            sec = short[0]
        x = float(x)
        if not 0.0 <= x <= 1.0:
            raise ValueError(
                f"{name}: position along {sec!r} must be in [0, 1], got {x:g}"
            )
        segs = np.flatnonzero(geometry.sec_index == geometry.sec_names.index(sec))
        segs = segs[np.argsort(geometry.seg_x[segs])]
        # NEURON's rule: sec(x) is segment floor(x * nseg), the last one at x = 1
        seg = int(segs[min(int(x * len(segs)), len(segs) - 1)])
    elif len(loc) == 3 and all(np.isscalar(v) for v in loc):
        point = np.asarray(loc, dtype=float)
        if not np.all(np.isfinite(point)):
            raise ValueError(f"{name}: point {loc!r} must be finite (µm)")
        centres = np.stack(
            [geometry.x.mean(1), geometry.y.mean(1), geometry.z.mean(1)], axis=1
        )
        allowed = np.isin(geometry.region, [REGIONS.index(r) for r in SYNAPTIC_REGIONS])
        dist = np.linalg.norm(centres - point, axis=1)
        dist[~allowed] = np.inf
        seg = int(np.argmin(dist))
        if dist[seg] > MAX_POINT_DISTANCE:
            raise ValueError(
                f"{name}: point {loc!r} is {dist[seg]:.0f} µm from the nearest "
                f"segment with synapses (more than {MAX_POINT_DISTANCE:g} µm); "
                f"points are in µm in the cell's frame (soma at the origin, "
                f"apical axis +y)"
            )
    else:
        raise ValueError(
            f"{name}: a location must be (section name, position in [0, 1]) or a "
            f"point (x, y, z) in µm, got {location!r}"
        )
    if REGIONS[geometry.region[seg]] not in SYNAPTIC_REGIONS:
        raise ValueError(
            f"{name}: location {location!r} is in the {REGIONS[geometry.region[seg]]}, "
            f"which carries no synapse; choose a dendritic or somatic location"
        )
    return seg


def spikes_from_locations(
    geometry,
    duration: float,
    exc: Mapping | None = None,
    inh: Mapping | None = None,
) -> SpikeTrains:
    """Input spike trains from spike times given per synapse location.

    Each location is mapped to the segment that holds it, whose excitatory
    (AMPA + NMDA) or inhibitory (GABA_A) channel then receives the spikes,
    as in the simulations the surrogate was trained on.

    Parameters
    ----------
    geometry : CellGeometry | SavedModel | str
        The cell (a loaded model, or a model's name or folder, gives its own).
    duration : float
        Duration of the input (ms).
    exc, inh : mapping | None
        Location -> spike times (ms, in ``(0, duration]``). A location is
        ``(section_name, x)`` with ``x`` in [0, 1] along the section
        (NEURON's convention: the segment ``floor(x * nseg)``; the name as
        in ``geometry.sec_names`` or without its template prefix, e.g.
        ``"dend[3]"``), or a point
        ``(x, y, z)`` in µm in the cell's frame (soma at the origin, apical
        axis +y), mapped to the nearest segment centre that carries
        synapses. Several locations may map to one segment; their spikes add.

    Returns
    -------
    spikes : SpikeTrains

    Examples
    --------
    >>> spikes = spikes_from_locations(model, 500.0, exc={
    ...     ("dend[3]", 0.5): [100.0, 102.0], (0.0, 600.0, 0.0): [250.0]})
    """
    if isinstance(geometry, (str, Path)):
        from ..train import load_model

        geometry = load_model(geometry)
    geometry = getattr(geometry, "geometry", geometry)
    check_positive(duration, "duration")
    parts = {}
    for kind, mapping in (("exc", exc), ("inh", inh)):
        segs, times = [], []
        if mapping is not None:
            check_type(mapping, Mapping, kind, "a mapping of location -> spike times")
            for location, t in mapping.items():
                where = f"{kind}[{location!r}]"
                seg = _segment_of(geometry, location, where)
                t = np.atleast_1d(np.asarray(t, dtype=float))
                if t.ndim != 1:
                    raise ValueError(f"{where}: spike times must be a 1-D sequence")
                if not np.all(np.isfinite(t)):
                    raise ValueError(
                        f"{where}: spike times must be finite, got NaN or infinity"
                    )
                if t.size and (t.min() <= 0 or t.max() > duration):
                    raise ValueError(
                        f"{where}: spike times from {t.min():g} to {t.max():g} ms lie "
                        f"outside (0, {duration:g}] ms; drop them or lengthen "
                        f"duration"
                    )
                segs.append(np.full(t.size, seg, np.int32))
                times.append(t)
        parts[f"{kind}_seg"] = np.concatenate(segs) if segs else np.zeros(0, np.int32)
        parts[f"{kind}_t"] = np.concatenate(times) if times else np.zeros(0)
    return SpikeTrains(n_seg=geometry.n_seg, duration=float(duration), **parts)


# -- does the input resemble the training inputs? ------------------------------


def _apical(geometry) -> np.ndarray:
    apical = [REGIONS.index(r) for r in ("apical_trunk", "oblique", "tuft")]
    return np.isin(geometry.region, apical)


def input_features(spikes: SpikeTrains, geometry, window: float = FEATURE_WINDOW):
    """Summary statistics of an input, per window of ``window`` ms.

    Parameters
    ----------
    spikes : SpikeTrains
    geometry : CellGeometry
    window : float
        Window length (ms); an input shorter than one window is one window.

    Returns
    -------
    features : dict of str to ndarray, each shape (n_windows,)
        ``exc_rate_basal``, ``exc_rate_apical``, ``inh_rate_basal``,
        ``inh_rate_apical``: spikes per second per µm of dendrite of the
        basal tree (with the soma) and the apical tree (Hz/µm);
        ``apical_fraction``: fraction of the excitatory spikes on the apical
        tree; ``synchrony``: the largest excess of excitatory spikes in one
        1-ms bin over the local mean (±25 ms), in Poisson standard
        deviations (large for synchronous volleys).
    """
    apical = _apical(geometry)
    has_apical = bool(apical.any())
    length = {
        "basal": float(geometry.length[~apical].sum()),
        "apical": float(geometry.length[apical].sum()),
    }
    n_win = max(1, int(round(spikes.duration / window)))
    edges = np.linspace(0.0, spikes.duration, n_win + 1)
    width_s = np.diff(edges) * 1e-3
    out = {}
    for kind in ("exc", "inh"):
        t = getattr(spikes, f"{kind}_t")
        seg = getattr(spikes, f"{kind}_seg")
        win = np.clip(np.searchsorted(edges, t, side="left") - 1, 0, n_win - 1)
        on_apical = apical[seg]
        for tree, sel in (("basal", ~on_apical), ("apical", on_apical)):
            if tree == "apical" and not has_apical:
                continue
            counts = np.bincount(win[sel], minlength=n_win)
            out[f"{kind}_rate_{tree}"] = counts / width_s / max(length[tree], 1e-12)
        if kind == "exc":
            total = np.bincount(win, minlength=n_win)
            if has_apical:
                ap = np.bincount(win[on_apical], minlength=n_win)
                out["apical_fraction"] = ap / np.maximum(total, 1)
            # excess of spikes in one 1-ms bin over the local (±25 ms) mean,
            # in Poisson standard deviations: volleys stand out, slow rate
            # modulation does not
            from scipy.ndimage import uniform_filter1d

            n_ms = max(1, int(np.ceil(spikes.duration)))
            ms = np.clip(np.ceil(t).astype(np.int64) - 1, 0, n_ms - 1)
            per_ms = np.bincount(ms, minlength=n_ms).astype(float)
            local = uniform_filter1d(per_ms, size=51, mode="nearest")
            z = (per_ms - local) / np.sqrt(local + 1.0)
            sync = np.zeros(n_win)
            for w in range(n_win):
                a = int(edges[w])
                sync[w] = z[a : max(int(edges[w + 1]), a + 1)].max()
            out["synchrony"] = sync
    return out


#: Reference feature ranges drawn from input statistics, by (cell, statistics).
_REFERENCES: dict = {}


def _reference_from_statistics(stats: dict, geometry) -> dict:
    """Feature ranges of inputs drawn with the given statistics (cached)."""
    key = (geometry.cell_hash, json.dumps(stats, sort_keys=True))
    if key not in _REFERENCES:
        parsed = InputStatistics.from_dict(stats)
        seeds = np.random.SeedSequence(_REFERENCE_SEED).spawn(_REFERENCE_SIMS)
        drawn = [
            generate_inputs(geometry, _REFERENCE_DURATION, s, parsed) for s in seeds
        ]
        _REFERENCES[key] = reference_from_inputs(drawn, geometry, parsed.regions)
    return _REFERENCES[key]


def input_reference(saved) -> dict:
    """The ranges of the input features over the model's training inputs.

    Parameters
    ----------
    saved : SavedModel

    Returns
    -------
    reference : dict
        ``ranges`` (feature -> [min, max], see :func:`input_features`) and
        ``regions`` (the regions that received input). Taken from the model
        card's ``input_reference`` when it has one (measured on the training
        inputs), otherwise estimated from inputs drawn with the card's
        training input statistics.
    """
    card = saved.card
    if "input_reference" in card:
        return card["input_reference"]
    stats = card.get("training", {}).get("input_statistics")
    if stats is None:
        return {}
    return _reference_from_statistics(stats, saved.geometry)


def reference_from_inputs(inputs, geometry, regions=SYNAPTIC_REGIONS) -> dict:
    """Feature ranges (see :func:`input_reference`) measured on inputs.

    Parameters
    ----------
    inputs : iterable of SpikeTrains
        E.g. the training inputs of a model.
    geometry : CellGeometry
    regions : sequence of str
        Regions that received input.

    Returns
    -------
    reference : dict
    """
    feats = [input_features(s, geometry) for s in inputs]
    if not feats:
        raise ValueError("inputs must hold at least one SpikeTrains")
    return {
        "ranges": {
            key: [
                float(np.min(np.concatenate([f[key] for f in feats]))),
                float(np.max(np.concatenate([f[key] for f in feats]))),
            ]
            for key in feats[0]
        },
        "regions": list(regions),
    }


_FEATURE_WORDS = {
    "exc_rate_basal": "excitatory rate on the basal tree (Hz/µm)",
    "exc_rate_apical": "excitatory rate on the apical tree (Hz/µm)",
    "inh_rate_basal": "inhibitory rate on the basal tree (Hz/µm)",
    "inh_rate_apical": "inhibitory rate on the apical tree (Hz/µm)",
    "apical_fraction": "fraction of excitation on the apical tree",
    "synchrony": "synchrony (peak excess of excitatory spikes per ms, in SD)",
}


def check_input_distribution(
    spikes: SpikeTrains, saved, *, index: int = 0, warn: bool = True
) -> list[str]:
    """Compare an input with the model's training inputs; warn where it differs.

    A window of the input is out of distribution for a feature (see
    :func:`input_features`) when the feature exceeds the training range's
    maximum times :data:`FEATURE_MARGIN`, or (the apical fraction only)
    falls below its minimum over :data:`FEATURE_MARGIN`; spikes on segments
    of regions that received no input in training are out of distribution
    too.

    Parameters
    ----------
    spikes : SpikeTrains
    saved : SavedModel
    index : int
        Which input this is (for the messages).
    warn : bool
        Issue an :class:`InputOutOfDistributionWarning` per finding.

    Returns
    -------
    findings : list of str
        One sentence per feature out of range (empty: in distribution).
    """
    reference = input_reference(saved)
    if not reference:
        return []
    geometry = saved.geometry
    findings = []
    trained = [REGIONS.index(r) for r in reference.get("regions", SYNAPTIC_REGIONS)]
    for kind in ("exc", "inh"):
        seg = getattr(spikes, f"{kind}_seg")
        off = ~np.isin(geometry.region[seg], trained)
        if off.any():
            regions = sorted({REGIONS[r] for r in geometry.region[seg[off]]})
            findings.append(
                f"{off.sum()} {kind} spikes on {', '.join(regions)}, where the "
                f"training inputs had none"
            )
    features = input_features(spikes, geometry)
    for key, values in features.items():
        if key not in reference["ranges"]:
            continue
        lo, hi = reference["ranges"][key]
        upper = hi * FEATURE_MARGIN
        # weaker drive than in training is common in short windows and harmless
        # next to stronger drive; only the apical fraction is checked both ways
        lower = lo / FEATURE_MARGIN if key == "apical_fraction" else -np.inf
        if key == "apical_fraction":
            # a fraction: the basal share (1 - f) is checked like f itself
            upper = 1.0 - (1.0 - hi) / FEATURE_MARGIN
        bad = (values > upper) | (values < lower)
        if bad.any():
            worst = values[bad][np.argmax(np.abs(np.log(values[bad] + 1e-12)))]
            findings.append(
                f"{_FEATURE_WORDS.get(key, key)} is {worst:.3g} in {bad.sum()} of "
                f"{values.size} window(s) of {FEATURE_WINDOW:g} ms; training "
                f"inputs ranged {lo:.3g} to {hi:.3g}"
            )
    if findings and warn:
        for finding in findings:
            warnings.warn(
                f"input {index} is outside the training distribution of the "
                f"surrogate: {finding}; its predictions are not to be trusted "
                f"there (validate them against NEURON with lfp-surrogate "
                f"validate)",
                InputOutOfDistributionWarning,
                stacklevel=3,
            )
    elif not findings:
        logger.debug("Input %d lies within the training distribution", index)
    return findings
