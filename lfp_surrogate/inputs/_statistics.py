"""Input statistics and seeded generation of synaptic bombardment."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._validation import check_option, check_positive, check_type
from ..cells import REGIONS, CellGeometry
from ._spikes import SpikeTrains

#: Regions that carry synapses (every segment except the axon).
SYNAPTIC_REGIONS = tuple(r for r in REGIONS if r != "axon")

# input rates are built on a 1-ms grid
_RATE_DT = 1.0
# generate spikes in blocks of this many ms (bounds memory for long inputs)
_BLOCK = 10_000


@dataclass(frozen=True)
class InputStatistics:
    """Statistics of the synaptic input; every field in its unit.

    Each segment except the axon has one excitatory (AMPA + NMDA) and one
    inhibitory (GABA_A) channel receiving inhomogeneous Poisson spike trains.
    The rate of segment i in dendritic group g (basal tree with the soma, or
    apical tree; one group for cells without an apical tree) is

        r_i(t) = rate * L_i * n_i * m_g(t),

    with L_i the segment length (µm), n_i a log-normal per-segment factor of
    mean 1 drawn once per simulation, and m_g(t) a slowly varying modulation:
    piecewise-constant levels drawn uniformly in ``[mod_min, mod_max]``, each
    held for a duration drawn uniformly in ``[hold_min, hold_max]``, then
    smoothed by a Gaussian of width ``smooth``. The basal and apical trees
    draw their modulations independently. Inhibition follows excitation:
    m_inh = coupling * m_exc + (1 - coupling) * m', with m' an independent
    draw. The design follows Beniaguev, Segev & London (2021),
    doi:10.1016/j.neuron.2021.07.002.

    Parameters
    ----------
    exc_rate : float
        Mean excitatory rate per µm of dendrite (Hz/µm).
    inh_rate : float
        Mean inhibitory rate per µm of dendrite (Hz/µm).
    mod_min, mod_max : float
        Range of the rate modulation levels (dimensionless, mean 1 when
        symmetric about 1).
    hold_min, hold_max : float
        Range of the durations each level is held (ms).
    smooth : float
        Standard deviation of the Gaussian smoothing of the modulation (ms).
    inh_coupling : float
        Fraction (0 to 1) of the inhibitory modulation that follows the
        excitatory one.
    seg_noise : float
        Standard deviation of the log of the per-segment rate factor.
    sync_rate : float
        Rate of synchronous excitatory volleys (Hz); 0 disables them.
    sync_fraction : float
        Probability that an excitatory channel takes part in a volley.
    regions : tuple of str
        Regions that receive input (default: all but the axon).
    ampa_weight, nmda_weight, gaba_weight : float
        Peak conductances (µS) of one AMPA, NMDA and GABA_A event.
    """

    exc_rate: float = 0.3
    inh_rate: float = 0.3
    mod_min: float = 0.0
    mod_max: float = 2.0
    hold_min: float = 25.0
    hold_max: float = 450.0
    smooth: float = 20.0
    inh_coupling: float = 0.8
    seg_noise: float = 0.5
    sync_rate: float = 0.0
    sync_fraction: float = 0.0
    regions: tuple = SYNAPTIC_REGIONS
    ampa_weight: float = 0.0004
    nmda_weight: float = 0.0004
    gaba_weight: float = 0.001

    def __post_init__(self):
        for name in ("exc_rate", "inh_rate", "mod_min", "sync_rate", "sync_fraction"):
            check_positive(getattr(self, name), name, strict=False)
        for name in ("hold_min", "hold_max", "smooth", "mod_max"):
            check_positive(getattr(self, name), name)
        for name in ("ampa_weight", "nmda_weight", "gaba_weight"):
            check_positive(getattr(self, name), name, strict=False)
        if self.mod_max < self.mod_min or self.hold_max < self.hold_min:
            raise ValueError(
                f"mod_max/hold_max must not be below mod_min/hold_min, got "
                f"mod [{self.mod_min}, {self.mod_max}], hold [{self.hold_min}, "
                f"{self.hold_max}] ms"
            )
        for name in ("inh_coupling", "sync_fraction"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        regions = self.regions
        if isinstance(regions, str):
            regions = (regions,)
        check_type(regions, (tuple, list), "regions", "a tuple of region names")
        for r in regions:
            check_option(r, SYNAPTIC_REGIONS, "regions")
        object.__setattr__(self, "regions", tuple(regions))

    def to_dict(self) -> dict:
        """Plain dict of the fields (for YAML/JSON)."""
        d = dataclasses.asdict(self)
        d["regions"] = list(self.regions)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> InputStatistics:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown input statistics field(s) {sorted(unknown)}; known: "
                f"{sorted(names)}"
            )
        d = dict(d)
        if "regions" in d:
            d["regions"] = tuple(d["regions"])
        return cls(**d)

    def replace(self, **changes) -> InputStatistics:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)


def simulation_seeds(seed: int, n_sims: int) -> list[np.random.SeedSequence]:
    """One independent seed sequence per simulation.

    Children of ``SeedSequence(seed)``: simulation i gets the same stream
    whatever ``n_sims`` is, and datasets with different seeds share none.
    """
    check_positive(seed, "seed", integer=True, strict=False)
    check_positive(n_sims, "n_sims", integer=True)
    return np.random.SeedSequence(seed).spawn(n_sims)


def _groups(geometry: CellGeometry) -> np.ndarray:
    """Dendritic group of each segment: 0 basal tree and soma, 1 apical."""
    apical = [REGIONS.index(r) for r in ("apical_trunk", "oblique", "tuft")]
    return np.isin(geometry.region, apical).astype(np.int64)


def _modulation(rng, n_ms: int, stats: InputStatistics) -> np.ndarray:
    """Smoothed piecewise-constant modulation on the 1-ms grid, shape (n_ms,)."""
    from scipy.ndimage import gaussian_filter1d

    levels = []
    total = 0
    while total < n_ms:
        hold = int(round(rng.uniform(stats.hold_min, stats.hold_max) / _RATE_DT))
        level = rng.uniform(stats.mod_min, stats.mod_max)
        levels.append(np.full(max(hold, 1), level))
        total += max(hold, 1)
    m = np.concatenate(levels)[:n_ms]
    return gaussian_filter1d(m, stats.smooth / _RATE_DT, mode="nearest")


def generate_inputs(
    geometry: CellGeometry,
    duration: float,
    seed,
    stats: InputStatistics | None = None,
) -> SpikeTrains:
    """Draw the input spike trains of one simulation.

    Parameters
    ----------
    geometry : CellGeometry
        The cell (segment lengths and regions).
    duration : float
        Duration (ms), a whole number of ms.
    seed : int | numpy.random.SeedSequence
        Seed of this simulation (see :func:`simulation_seeds`).
    stats : InputStatistics | None
        Input statistics (default: the calibrated defaults).

    Returns
    -------
    spikes : SpikeTrains
        Excitatory and inhibitory spike times (ms) per segment.
    """
    stats = InputStatistics() if stats is None else stats
    check_positive(duration, "duration")
    n_ms = int(round(duration / _RATE_DT))
    if abs(n_ms * _RATE_DT - duration) > 1e-9:
        raise ValueError(f"duration must be a whole number of ms, got {duration}")
    rng = np.random.default_rng(seed)
    n_seg = geometry.n_seg

    # which segments get input, and their static rate factors
    allowed = np.isin(geometry.region, [REGIONS.index(r) for r in stats.regions])
    noise = np.exp(
        rng.normal(-0.5 * stats.seg_noise**2, stats.seg_noise, size=(2, n_seg))
    )
    base = geometry.length[None, :] * noise * allowed[None, :]
    base = base * np.array([[stats.exc_rate], [stats.inh_rate]])

    # slow modulations per group: (2 kinds, 2 groups, n_ms)
    group = _groups(geometry)
    mod = np.empty((2, 2, n_ms))
    for g in range(2):
        exc = _modulation(rng, n_ms, stats)
        own = _modulation(rng, n_ms, stats)
        mod[0, g] = exc
        mod[1, g] = stats.inh_coupling * exc + (1 - stats.inh_coupling) * own

    # Poisson counts per segment and ms, in blocks; times uniform in the bin
    segs = [[], []]
    times = [[], []]
    for start in range(0, n_ms, _BLOCK):
        stop = min(n_ms, start + _BLOCK)
        for kind in range(2):
            lam = base[kind][:, None] * mod[kind, group, start:stop] * 1e-3
            counts = rng.poisson(lam)
            seg, k = np.nonzero(counts)
            reps = counts[seg, k]
            seg = np.repeat(seg, reps)
            k = np.repeat(k, reps) + start
            t = (k + 1.0 - rng.random(k.size)) * _RATE_DT  # in (k, k + 1]
            segs[kind].append(seg)
            times[kind].append(t)

    # synchronous volleys
    if stats.sync_rate > 0 and stats.sync_fraction > 0:
        n_vol = rng.poisson(stats.sync_rate * duration * 1e-3)
        t_vol = duration - rng.random(n_vol) * duration  # in (0, duration]
        cand = np.flatnonzero(allowed)
        for tv in t_vol:
            take = cand[rng.random(cand.size) < stats.sync_fraction]
            segs[0].append(take)
            times[0].append(np.full(take.size, tv))

    return SpikeTrains(
        exc_seg=np.concatenate(segs[0]).astype(np.int32),
        exc_t=np.concatenate(times[0]),
        inh_seg=np.concatenate(segs[1]).astype(np.int32),
        inh_t=np.concatenate(times[1]),
        n_seg=n_seg,
        duration=float(duration),
    )
