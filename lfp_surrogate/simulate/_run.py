"""Full NEURON runs under synaptic bombardment, reduced to bins as they go."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._logging import logger
from .._neuron import import_neuron
from ..inputs import InputStatistics, SpikeTrains
from ..inputs._statistics import SYNAPTIC_REGIONS
from ._config import SimulationConfig

#: Kinetics of the synapses: (rise, decay) time constants (ms), reversal (mV).
AMPA = dict(tau1=0.3, tau2=3.0, e=0.0)
NMDA = dict(tau1=2.0, tau2=70.0, e=0.0, mg=1.0)
GABA_A = dict(tau1=0.2, tau2=8.0, e=-80.0)


@dataclass
class SimulationResult:
    """Outputs of one simulation held in memory.

    Attributes
    ----------
    vmem : ndarray, shape (n_seg, n_times)
        Membrane potential (mV), bin means or samples, float64.
    imem : ndarray, shape (n_seg, n_times) or None
        Transmembrane current (nA), NEURON's ``i_membrane_``, float64.
    t : ndarray, shape (n_times,)
        Bin centres (ms); for point samples, the sample times.
    soma_spikes : ndarray, shape (n_spikes,)
        Somatic spike times (ms) at full resolution.
    wall_time : float
        Wall-clock time of the run (s), warm-up included.
    """

    vmem: np.ndarray
    imem: np.ndarray | None
    t: np.ndarray
    soma_spikes: np.ndarray
    wall_time: float


def _set_checked(obj, params: dict, what: str):
    """Set point-process parameters and read them back (catches misspellings)."""
    for key, value in params.items():
        setattr(obj, key, value)
        got = getattr(obj, key)
        if not np.isclose(got, value):
            raise RuntimeError(f"{what}.{key} is {got} after setting it to {value}")


def _recorder(h, ref):
    vec = h.Vector()
    vec.record(ref)
    return vec


def _attach_synapses(h, cell, synaptic):
    """AMPA, NMDA and GABA_A synapses with source-less NetCons per segment."""
    syn_all = {}
    nc_all = {"ampa": {}, "nmda": {}, "gaba": {}}
    for i, seg in enumerate(cell._nrn_segments):
        if not synaptic[i]:
            continue
        syns = (
            ("ampa", h.Exp2Syn(seg), AMPA),
            ("nmda", h.LfpsNMDA(seg), NMDA),
            ("gaba", h.Exp2Syn(seg), GABA_A),
        )
        for kind, syn, params in syns:
            _set_checked(syn, params, kind)
            syn_all[kind, i] = syn
            nc_all[kind][i] = h.NetCon(None, syn)
    return syn_all, nc_all


class Simulator:
    """A built cell with one excitatory and one inhibitory channel per segment.

    Every segment outside the axon gets an AMPA (``Exp2Syn``) and an NMDA
    (``LfpsNMDA``) synapse driven by the excitatory spike train of that
    segment, and a GABA_A synapse (``Exp2Syn``) driven by the inhibitory one.

    Parameters
    ----------
    config : SimulationConfig
        Cell and run settings.
    verbose : bool | str | int | None
        Logging level for the build.
    """

    def __init__(self, config: SimulationConfig, *, verbose=None):
        from ..cells import REGIONS, build_cell

        h = import_neuron()

        self.config = config
        self.cell = build_cell(config.cell, verbose=verbose)
        self.geometry = self.cell.geometry
        h.cvode.use_fast_imem(1)
        h.cvode.active(0)
        h.secondorder = 0

        # synapses on every segment outside the axon, shared by all
        # simulators of this cell in this process
        allowed = [REGIONS.index(r) for r in SYNAPTIC_REGIONS]
        self.synaptic = np.isin(self.geometry.region, allowed)
        if not hasattr(self.cell, "_nrn_inputs"):
            self.cell._nrn_inputs = _attach_synapses(h, self.cell, self.synaptic)
        self._nrn_syn, self._nrn_nc = self.cell._nrn_inputs

        # recorders of every step of every segment, also shared per cell
        rec = getattr(self.cell, "_nrn_recorders", None)
        if rec is None:
            rec = self.cell._nrn_recorders = {"v": [], "i": []}
            rec["v"] = [_recorder(h, seg._ref_v) for seg in self.cell._nrn_segments]
            soma_seg = self.cell._nrn_segments[self._soma]
            rec["spike_nc"] = h.NetCon(soma_seg._ref_v, None, sec=soma_seg.sec)
            rec["spike_t"] = h.Vector()
            rec["spike_nc"].record(rec["spike_t"])
        if config.record_imem and not rec["i"]:
            rec["i"] = [
                _recorder(h, seg._ref_i_membrane_) for seg in self.cell._nrn_segments
            ]
        self._nrn_rec = rec

    @property
    def _soma(self) -> int:
        from ..cells import REGIONS

        return int(np.flatnonzero(self.geometry.region == REGIONS.index("soma"))[0])

    def set_weights(self, stats: InputStatistics):
        """Peak conductances (µS) of the three synapse types."""
        for kind, w in (
            ("ampa", stats.ampa_weight),
            ("nmda", stats.nmda_weight),
            ("gaba", stats.gaba_weight),
        ):
            for nc in self._nrn_nc[kind].values():
                nc.weight[0] = w

    def _queue(self, spikes: SpikeTrains, t0: float, t1: float, offset: float):
        """Queue the input events with times in (t0, t1] (recorded time)."""
        for kinds, seg_all, t_all in (
            (("ampa", "nmda"), spikes.exc_seg, spikes.exc_t),
            (("gaba",), spikes.inh_seg, spikes.inh_t),
        ):
            lo, hi = np.searchsorted(t_all, [t0, t1], side="right")
            for seg, t in zip(seg_all[lo:hi].tolist(), t_all[lo:hi].tolist()):
                if not self.synaptic[seg]:
                    raise ValueError(
                        f"input spike on segment {seg} "
                        f"({self.geometry.seg_name(seg)}), which carries no "
                        f"synapse (axon); drop axonal inputs"
                    )
                for kind in kinds:
                    self._nrn_nc[kind][seg].event(t + offset)

    def run(
        self,
        spikes: SpikeTrains,
        stats: InputStatistics | None = None,
        sink=None,
    ) -> SimulationResult:
        """Simulate one input and reduce the recordings chunk by chunk.

        Parameters
        ----------
        spikes : SpikeTrains
            Input spikes; their duration must equal ``config.duration``.
        stats : InputStatistics | None
            Gives the synaptic weights (default statistics if None).
        sink : callable | None
            Called as ``sink(k0, vmem, imem)`` for each chunk, with bin offset
            ``k0`` and arrays of shape (n_seg, n_bins) (float64; ``imem`` None
            when not recorded). When given, the arrays are not kept and the
            result holds empty ``vmem``/``imem``; memory then does not grow
            with the duration.

        Returns
        -------
        result : SimulationResult
        """
        h = import_neuron()
        cfg = self.config
        if spikes.n_seg != self.geometry.n_seg:
            raise ValueError(
                f"spikes are for a cell of {spikes.n_seg} segments, but "
                f"{cfg.cell} has {self.geometry.n_seg}"
            )
        if abs(spikes.duration - cfg.duration) > 1e-9:
            raise ValueError(
                f"spikes last {spikes.duration:g} ms but the simulation duration "
                f"is {cfg.duration:g} ms"
            )
        self.set_weights(InputStatistics() if stats is None else stats)
        t_start = time.perf_counter()

        # warm-up at a coarse step, without input
        h.dt = cfg.warmup_dt if cfg.warmup > 0 else cfg.dt
        h.secondorder = 0
        h.celsius = self.cell.spec.celsius
        h.finitialize(cfg.v_init)
        _advance(h, int(round(cfg.warmup / h.dt)))
        offset = float(h.t)
        h.dt = cfg.dt
        rec = self._nrn_rec
        rec["spike_nc"].threshold = cfg.spike_threshold
        for vec in rec["v"] + rec["i"]:
            vec.resize(0)
        rec["spike_t"].resize(0)
        channels = [rec["v"], rec["i"] if cfg.record_imem else []]

        n_seg = self.geometry.n_seg
        spb = cfg.steps_per_bin
        keep = sink is None
        out_v = np.empty((n_seg, cfg.n_times)) if keep else None
        out_i = np.empty((n_seg, cfg.n_times)) if keep and cfg.record_imem else None
        bins_per_chunk = int(round(cfg.chunk / cfg.interval))
        buf = np.empty((n_seg, bins_per_chunk * spb))
        for k0 in range(0, cfg.n_times, bins_per_chunk):
            k1 = min(cfg.n_times, k0 + bins_per_chunk)
            t0, t1 = k0 * cfg.interval, k1 * cfg.interval
            self._queue(spikes, t0, t1, offset)
            n_steps = (k1 - k0) * spb
            _advance(h, n_steps)
            reduced = []
            for vecs in channels:
                if not vecs:
                    reduced.append(None)
                    for vec in rec["i"]:
                        vec.resize(0)
                    continue
                for j, vec in enumerate(vecs):
                    arr = vec.as_numpy()
                    if arr.size != n_steps:
                        raise RuntimeError(
                            f"recorded {arr.size} steps in a chunk of {n_steps}"
                        )
                    buf[j, :n_steps] = arr
                    vec.resize(0)
                steps = buf[:, :n_steps].reshape(n_seg, k1 - k0, spb)
                if cfg.reduce == "mean":
                    reduced.append(steps.mean(axis=2))
                else:
                    reduced.append(steps[:, :, -1].copy())
            if keep:
                out_v[:, k0:k1] = reduced[0]
                if out_i is not None:
                    out_i[:, k0:k1] = reduced[1]
            else:
                sink(k0, reduced[0], reduced[1])

        spikes_t = np.array(rec["spike_t"].as_numpy()) - offset
        wall = time.perf_counter() - t_start
        logger.debug(
            "Simulated %g ms of %s (%d segments) in %.1f s",
            cfg.duration,
            cfg.cell,
            n_seg,
            wall,
        )
        return SimulationResult(
            vmem=out_v if keep else np.empty((n_seg, 0)),
            imem=out_i if keep else None,
            t=bin_times(cfg),
            soma_spikes=spikes_t[spikes_t > 0],
            wall_time=wall,
        )


def _advance(h, n_steps: int):
    """Take ``n_steps`` fixed steps (``dt`` is a power of two: t stays exact)."""
    fadvance = h.fadvance
    for _ in range(n_steps):
        fadvance()


def bin_times(config: SimulationConfig) -> np.ndarray:
    """Bin centres (mean) or sample times (sample), shape (n_times,), in ms."""
    k = np.arange(config.n_times)
    if config.reduce == "mean":
        return (k + 0.5) * config.interval
    return (k + 1.0) * config.interval
