"""Prediction with a trained surrogate: voltages, currents, LFP, CSD, dipole, EEG, MEG.

The surrogate path is: binned input counts -> network -> vmem of every
segment -> exact vmem -> imem operator -> forward matrices. Every stage runs
chunk by chunk on the network's device with the network's context carried
across chunks, so memory depends on the chunk and batch, not on the duration.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path
from .._logging import logger, progress, use_log_level
from .._validation import check_device, check_positive, check_type
from ..inputs import InputStatistics, SpikeTrains, generate_inputs, simulation_seeds

__all__ = ["PREDICTION_KIND", "Prediction", "load_prediction", "predict"]

#: Value of the ``kind`` attribute of a prediction file.
PREDICTION_KIND = "lfp_surrogate.prediction"

#: Probability at and above which a bin is part of a predicted somatic spike.
SPIKE_THRESHOLD = 0.5

_UNITS = {
    "vmem": "mV",
    "imem": "nA",
    "lfp": "mV",
    "csd": "nA/um**3",
    "dipole": "nA*um",
    "eeg": "mV",
    "meg": "fT",
}


@dataclass
class Prediction:
    """What a surrogate predicts for one or more inputs, in LFPy's units.

    Attributes
    ----------
    vmem : ndarray, shape (n_sims, n_seg, n_times)
        Membrane potential of every segment (mV), bin means.
    imem : ndarray, shape (n_sims, n_seg, n_times) | None
        Transmembrane currents derived exactly from ``vmem`` (nA).
    spike_prob : ndarray, shape (n_sims, n_times)
        Probability of a somatic spike in each bin.
    soma_spikes : list of ndarray
        Predicted somatic spike times (ms) per simulation: one per run of
        bins with probability >= 0.5, at the centre of its most probable bin.
    signals : dict of str to ndarray
        ``"lfp/<label>"``, ``"csd/<label>"`` (n_sims, n_contacts, n_times)
        in mV and nA/µm³, ``"dipole"`` (n_sims, 3, n_times) in nA·µm,
        ``"eeg/<head>"`` (n_sims, n_electrodes, n_times) in mV and
        ``"meg/<model>"`` (n_sims, n_sensors, 3, n_times) in fT.
    t : ndarray, shape (n_times,)
        Bin centres (ms).
    inputs : list of SpikeTrains
        The inputs, one per simulation.
    geometry : CellGeometry
        The cell.
    model : str
        The model's name or folder.
    wall_time : dict of str to float
        Seconds spent in the network, the currents and the forward models.
    """

    vmem: np.ndarray
    imem: np.ndarray | None
    spike_prob: np.ndarray
    soma_spikes: list
    signals: dict
    t: np.ndarray
    inputs: list
    geometry: object
    model: str
    wall_time: dict = field(default_factory=dict)

    @property
    def n_sims(self) -> int:
        """Number of simulations."""
        return self.vmem.shape[0]

    @property
    def lfp(self) -> dict:
        """LFP (mV) by probe label, each (n_sims, n_contacts, n_times)."""
        return _kind(self.signals, "lfp")

    @property
    def csd(self) -> dict:
        """CSD (nA/µm³) by laminar probe label, each (n_sims, n_contacts, n_times)."""
        return _kind(self.signals, "csd")

    @property
    def dipole(self) -> np.ndarray | None:
        """Current dipole moment (nA·µm), shape (n_sims, 3, n_times)."""
        return self.signals.get("dipole")

    @property
    def eeg(self) -> dict:
        """EEG (mV) by head model, each (n_sims, n_electrodes, n_times)."""
        return _kind(self.signals, "eeg")

    @property
    def meg(self) -> dict:
        """MEG (fT) by model, each (n_sims, n_sensors, 3, n_times)."""
        return _kind(self.signals, "meg")

    def __repr__(self) -> str:
        return (
            f"<Prediction | {self.n_sims} x {self.geometry.n_seg} segments x "
            f"{self.t.size} bins of cell {self.geometry.name!r}; signals: "
            f"{', '.join(self.signals) or 'none'}>"
        )


def _kind(signals: dict, kind: str) -> dict:
    return {
        k.split("/", 1)[1]: v for k, v in signals.items() if k.startswith(kind + "/")
    }


def _as_inputs(inputs, saved, *, duration, seed, n_sims, stats) -> tuple[list, dict]:
    """The list of SpikeTrains to predict, and how they were obtained."""
    from ._inputs import read_inputs

    geometry = saved.geometry
    if inputs is None:
        if duration is None or seed is None:
            raise ValueError(
                "inputs: give input spike trains, an input file, or duration and "
                "seed to draw them (e.g. duration=2000, seed=1)"
            )
        check_positive(duration, "duration")
        check_positive(n_sims, "n_sims", integer=True)
        if stats is None:
            stats = InputStatistics()
        elif isinstance(stats, dict):
            stats = InputStatistics.from_dict(stats)
        check_type(stats, InputStatistics, "stats")
        spikes = [
            generate_inputs(geometry, duration, s, stats)
            for s in simulation_seeds(seed, n_sims)
        ]
        return spikes, dict(
            source="generated",
            seed=int(seed),
            input_statistics=stats.to_dict(),
        )
    if duration is not None or seed is not None:
        raise ValueError(
            "duration and seed draw inputs; they cannot be combined with given "
            "inputs: pass either inputs or duration and seed"
        )
    if isinstance(inputs, SpikeTrains):
        inputs = [inputs]
    if isinstance(inputs, (str, Path)):
        return read_inputs(inputs, geometry), dict(source=str(inputs))
    check_type(inputs, (list, tuple), "inputs", "SpikeTrains, a list of them or a path")
    if not inputs:
        raise ValueError("inputs must hold at least one SpikeTrains, got an empty list")
    for i, s in enumerate(inputs):
        check_type(s, SpikeTrains, f"inputs[{i}]")
        if s.n_seg != geometry.n_seg:
            raise ValueError(
                f"inputs[{i}] is for a cell of {s.n_seg} segments, but the model's "
                f"cell {geometry.name!r} has {geometry.n_seg}"
            )
    durations = {s.duration for s in inputs}
    if len(durations) > 1:
        raise ValueError(
            f"inputs must share one duration to run as a batch, got "
            f"{sorted(durations)} ms; predict them separately"
        )
    return list(inputs), dict(source="python")


def _soma_spike_times(prob: np.ndarray, interval: float) -> np.ndarray:
    """Spike times (ms): one per run of bins with ``prob >= SPIKE_THRESHOLD``."""
    above = np.r_[False, prob >= SPIKE_THRESHOLD, False]
    edges = np.flatnonzero(np.diff(above.astype(np.int8)))
    peaks = [a + int(np.argmax(prob[a:b])) for a, b in zip(edges[::2], edges[1::2])]
    return (np.asarray(peaks, dtype=float) + 0.5) * interval


class _Sink:
    """Where predicted chunks go: arrays in memory, or an HDF5 file."""

    def __init__(self, n_sims, n_seg, n_times, specs, *, with_imem, writer=None):
        self.writer = writer
        self.with_imem = with_imem
        if writer is None:
            self.vmem = np.empty((n_sims, n_seg, n_times), np.float32)
            self.imem = (
                np.empty((n_sims, n_seg, n_times), np.float32) if with_imem else None
            )
            self.signals = {
                name: np.empty((n_sims, *shape, n_times), np.float32)
                for name, (shape, _, _) in specs.items()
            }
        self.prob = np.empty((n_sims, n_times), np.float32)

    def write(self, i, k0, vmem, imem, signals):
        k1 = k0 + vmem.shape[-1]
        if self.writer is not None:
            self.writer.write_bins(
                i, k0, vmem, imem if self.with_imem else None, signals
            )
            return
        self.vmem[i, :, k0:k1] = vmem
        if self.imem is not None:
            self.imem[i, :, k0:k1] = imem
        for name, value in signals.items():
            self.signals[name][i, ..., k0:k1] = value


def _run(saved, inputs, fwd, sink, *, device, chunk, batch, dtype):
    """Stream every input through network, currents and forward models."""
    import torch

    from ..data import compute_signals
    from ..models import iter_stream

    model = saved.model.to(device).eval()
    interval = float(model.config.interval)
    n_times = int(round(inputs[0].duration / interval))
    operator = saved.imem_operator
    if fwd is not None:
        fwd.to(device, dtype)
    timing = dict(network=0.0, currents=0.0, forward=0.0)
    sync = torch.cuda.synchronize if torch.device(device).type == "cuda" else None

    def clock():
        if sync is not None:
            sync()
        return time.perf_counter()

    n_sims = len(inputs)
    groups = [list(range(b, min(n_sims, b + batch))) for b in range(0, n_sims, batch)]
    starts = list(range(0, n_times, chunk))
    bar = progress(total=n_sims * n_times, unit="bin", desc="predicting")
    with bar:
        for group in groups:

            def pieces(group=group):
                for k0 in starts:
                    k1 = min(n_times, k0 + chunk)
                    counts = np.stack(
                        [
                            inputs[i]
                            .window(k0 * interval, k1 * interval)
                            .binned(interval)
                            for i in group
                        ]
                    )  # (n_batch, 2, n_seg, k1 - k0)
                    yield torch.from_numpy(counts)

            stream = iter_stream(model, pieces())
            for k0 in starts:
                t0 = clock()
                out = next(stream)
                vmem = out.vmem.to(dtype)  # (n_batch, n_seg, n_chunk), mV
                t1 = clock()
                imem = operator.apply(vmem)  # (n_batch, n_seg, n_chunk), nA
                t2 = clock()
                signals = compute_signals(fwd, imem) if fwd is not None else {}
                t3 = clock()
                timing["network"] += t1 - t0
                timing["currents"] += t2 - t1
                timing["forward"] += t3 - t2
                prob = torch.sigmoid(out.spike_logit.float()).cpu().numpy()
                vmem_np = vmem.cpu().numpy().astype(np.float32)
                imem_np = imem.cpu().numpy().astype(np.float32)
                sig_np = {
                    k: v.detach().cpu().numpy().astype(np.float32)
                    for k, v in signals.items()
                }
                for j, i in enumerate(group):
                    sink.prob[i, k0 : k0 + vmem_np.shape[-1]] = prob[j]
                    sink.write(
                        i,
                        k0,
                        vmem_np[j],
                        imem_np[j],
                        {k: v[j] for k, v in sig_np.items()},
                    )
                bar.update(len(group) * vmem_np.shape[-1])
    return timing, interval, n_times


def predict(
    model="l5_ttpc1",
    inputs=None,
    *,
    duration: float | None = None,
    seed: int | None = None,
    n_sims: int = 1,
    stats: InputStatistics | dict | None = None,
    forward=None,
    out=None,
    force: bool = False,
    with_imem: bool = True,
    device: str = "cpu",
    chunk: int = 1000,
    batch: int = 8,
    check_inputs: bool = True,
    verbose: bool | str | int | None = None,
) -> Prediction | Path:
    """Predict voltages, currents and extracellular signals with a surrogate.

    Parameters
    ----------
    model : str | path-like | SavedModel
        A shipped model's name (default ``"l5_ttpc1"``), a folder written by
        ``lfp-surrogate train``, or a loaded model.
    inputs : SpikeTrains | list of SpikeTrains | path-like | None
        The synaptic input: spike trains (see
        :func:`~lfp_surrogate.predict.spikes_from_locations`), several of one
        duration (predicted as a batch), or an HDF5 file in the dataset's
        input layout (a dataset shard or a prediction file). ``None``: draw
        ``n_sims`` inputs of ``duration`` from ``seed`` and ``stats``, as
        ``lfp-surrogate simulate`` does.
    duration : float | None
        Duration (ms) of drawn inputs.
    seed : int | None
        Root seed of drawn inputs (simulation i uses child i of
        ``SeedSequence(seed)``, as in a dataset).
    n_sims : int
        Number of drawn inputs.
    stats : InputStatistics | dict | None
        Statistics of drawn inputs (default: the calibrated defaults).
    forward : ForwardConfig | dict | ForwardModel | None
        Probes, heads and MEG models to compute (see
        :class:`~lfp_surrogate.forward.ForwardConfig`), or a
        :class:`~lfp_surrogate.forward.ForwardModel` of the model's cell built
        once for many calls; ``None``: the dipole only.
    out : path-like | None
        Write an HDF5 file (the ground-truth shard layout, ``kind``
        ``lfp_surrogate.prediction``) chunk by chunk instead of returning
        arrays: memory then stays bounded by ``chunk`` and ``batch`` whatever
        the duration. An existing file is refused unless ``force``.
    force : bool
        Replace ``out`` (atomically).
    with_imem : bool
        Keep the transmembrane currents (they are always derived, for the
        signals).
    device : str
        ``"cpu"`` or ``"cuda"`` (network, currents and forward models).
    chunk : int
        Bins per streaming step.
    batch : int
        Inputs predicted side by side.
    check_inputs : bool
        Warn (:class:`~lfp_surrogate.predict.InputOutOfDistributionWarning`)
        when an input's statistics fall outside the training inputs'.
    verbose : bool | str | int | None
        Log level for this call.

    Returns
    -------
    prediction : Prediction | Path
        The arrays (float32), or the path of ``out`` when given.

    Notes
    -----
    Currents and signals are computed in float32 on ``device``; the network's
    own error is orders of magnitude above that rounding. The surrogate is
    trained for bin means over its interval (1 ms): extracellular spike
    waveforms are out of its scope.

    Examples
    --------
    >>> from lfp_surrogate.predict import predict
    >>> pred = predict("l5_ttpc1", duration=2000, seed=1,
    ...                forward={"probes": ["Neuropixels-384"],
    ...                         "heads": ["four_sphere_lfpy_default"]})
    >>> pred.lfp["Neuropixels-384"].shape  # (1, 384, 2000), mV
    """
    import torch

    from ..data import signal_specs
    from ..data._shards import ShardWriter
    from ..forward import ForwardConfig, ForwardModel
    from ..train import SavedModel, load_model

    check_positive(chunk, "chunk", integer=True)
    check_positive(batch, "batch", integer=True)
    check_device(device)
    if out is not None:
        out = Path(out)
        if out.is_dir():
            raise ValueError(
                f"out must be the path of an HDF5 file, got the folder {out}; give "
                f"e.g. {out / 'prediction.h5'}"
            )
        if out.exists() and not force:
            raise FileExistsError(f"out ({out}) exists; pass --force to replace it")
    with use_log_level(verbose):
        t_start = time.perf_counter()
        saved = model if isinstance(model, SavedModel) else load_model(model)
        name = (
            str(model)
            if not isinstance(model, SavedModel)
            else saved.card.get("name", saved.geometry.name)
        )
        spikes, origin = _as_inputs(
            inputs, saved, duration=duration, seed=seed, n_sims=n_sims, stats=stats
        )
        interval = float(saved.model.config.interval)
        n_bins = spikes[0].duration / interval
        if abs(n_bins - round(n_bins)) > 1e-9:
            raise ValueError(
                f"duration must be a whole number of the model's {interval:g}-ms "
                f"bins, got {spikes[0].duration:g} ms"
            )
        if check_inputs:
            from ._inputs import check_input_distribution

            for i, s in enumerate(spikes):
                check_input_distribution(s, saved, index=i)

        # forward models: built once, applied chunk by chunk
        if isinstance(forward, ForwardModel):
            # built by the caller once for many calls
            fwd = forward
            if fwd.geometry.cell_hash != saved.geometry.cell_hash:
                raise ValueError(
                    f"forward was built for cell {fwd.geometry.name!r} (hash "
                    f"{fwd.geometry.cell_hash}), not for the model's cell "
                    f"{saved.geometry.name!r}; build it from the model's geometry"
                )
            forward = fwd.config
        else:
            if forward is None:
                forward = ForwardConfig()
            elif isinstance(forward, dict):
                forward = ForwardConfig.from_dict(_parse_probe_specs(forward))
            check_type(
                forward,
                ForwardConfig,
                "forward",
                "a ForwardConfig, a dict or a ForwardModel",
            )
            fwd = ForwardModel(saved.geometry, forward)
        specs = signal_specs(fwd)
        n_times = int(round(n_bins))
        n_seg = saved.geometry.n_seg
        logger.info(
            "Predicting %d input(s) of %g ms (%d segments x %d bins) with %s on %s; "
            "signals: %s",
            len(spikes),
            spikes[0].duration,
            n_seg,
            n_times,
            name,
            device,
            ", ".join(specs),
        )
        t = (np.arange(n_times) + 0.5) * interval
        attrs = dict(
            cell=saved.geometry.name,
            cell_hash=saved.geometry.cell_hash,
            interval=interval,
            duration=float(spikes[0].duration),
            reduce="mean",
            model=name,
            model_card=json.dumps(_card_summary(saved)),
            forward=json.dumps(forward.to_dict()),
            origin=json.dumps(origin),
        )
        dtype = torch.float32
        if out is None:
            sink = _Sink(len(spikes), n_seg, n_times, specs, with_imem=with_imem)
            timing, _, _ = _run(
                saved,
                spikes,
                fwd,
                sink,
                device=device,
                chunk=chunk,
                batch=batch,
                dtype=dtype,
            )
            result = Prediction(
                vmem=sink.vmem,
                imem=sink.imem,
                spike_prob=sink.prob,
                soma_spikes=[_soma_spike_times(p, interval) for p in sink.prob],
                signals=sink.signals,
                t=t,
                inputs=spikes,
                geometry=saved.geometry,
                model=name,
                wall_time=timing,
            )
        else:
            with atomic_path(out, suffix=".h5") as tmp:
                writer = ShardWriter(
                    tmp,
                    len(spikes),
                    saved.geometry,
                    attrs,
                    n_times,
                    t,
                    record_imem=with_imem,
                    signals=specs,
                    imem_operator=saved.imem_operator,
                    kind=PREDICTION_KIND,
                )
                try:
                    sink = _Sink(
                        len(spikes),
                        n_seg,
                        n_times,
                        specs,
                        with_imem=with_imem,
                        writer=writer,
                    )
                    timing, _, _ = _run(
                        saved,
                        spikes,
                        fwd,
                        sink,
                        device=device,
                        chunk=chunk,
                        batch=batch,
                        dtype=dtype,
                    )
                    for i, s in enumerate(spikes):
                        writer.write_input(i, i, s)
                        writer.write_spikes(
                            i, _soma_spike_times(sink.prob[i], interval)
                        )
                    dset = writer.f.create_dataset("soma_spike_prob", data=sink.prob)
                    dset.attrs["units"] = "probability per bin"
                    writer.f.attrs["wall_time"] = json.dumps(timing)
                    writer.close()
                except BaseException:
                    writer.abort()
                    raise
            result = out
        elapsed = time.perf_counter() - t_start
        simulated = len(spikes) * spikes[0].duration * 1e-3
        logger.info(
            "Predicted %.3g simulated s in %.2f s (network %.2f s, currents %.2f s, "
            "forward %.2f s)%s",
            simulated,
            elapsed,
            timing["network"],
            timing["currents"],
            timing["forward"],
            f"; written to {out}" if out is not None else "",
        )
    return result


def _parse_probe_specs(forward: dict) -> dict:
    """Turn ``"NAME position=X,Y,Z ..."`` probe strings into placement dicts."""
    # TODO: move the spec parser from the CLI into lfp_surrogate.forward so
    # that the library does not import from the command line
    from ..cli._common import parse_probe

    probes = [
        parse_probe(p) if isinstance(p, str) and "=" in p else p
        for p in forward.get("probes") or ()
    ]
    return {**forward, "probes": probes} if probes else dict(forward)


def _card_summary(saved) -> dict:
    """The parts of a model card a prediction file records."""
    card = saved.card
    training = card.get("training", {})
    return dict(
        arch=saved.model.config.arch,
        cell=card.get("cell", {}),
        simulated_seconds=training.get("simulated_seconds"),
        receptive_field_ms=card.get("receptive_field_ms"),
    )


def load_prediction(path) -> Prediction:
    """Read a file written by :func:`predict` (``out=``) into memory.

    Parameters
    ----------
    path : path-like

    Returns
    -------
    prediction : Prediction
    """
    from .._io import open_hdf5
    from ..data import read_cell, read_soma_spikes, read_spikes

    path = Path(path)
    with open_hdf5(path, "path", what="a prediction file") as f:
        if f.attrs.get("kind") != PREDICTION_KIND:
            raise ValueError(
                f"{path}: attribute 'kind' is {f.attrs.get('kind')!r}, expected "
                f"{PREDICTION_KIND!r} (a file written by lfp-surrogate predict)"
            )
        geometry, _ = read_cell(f, source=str(path))
        n_sims = f["vmem"].shape[0]
        signals = {}
        for group in ("lfp", "csd", "eeg", "meg"):
            if group in f:
                for label in f[group]:
                    signals[f"{group}/{label}"] = f[f"{group}/{label}"][:]
        if "dipole" in f:
            signals["dipole"] = f["dipole"][:]
        return Prediction(
            vmem=f["vmem"][:],
            imem=f["imem"][:] if "imem" in f else None,
            spike_prob=f["soma_spike_prob"][:],
            soma_spikes=[read_soma_spikes(f, j) for j in range(n_sims)],
            signals=signals,
            t=f["t"][:],
            inputs=[read_spikes(f, j) for j in range(n_sims)],
            geometry=geometry,
            model=str(f.attrs.get("model", "")),
            wall_time=json.loads(f.attrs.get("wall_time", "{}")),
        )
