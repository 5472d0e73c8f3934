"""Throughput of the surrogate against NEURON, in the same run and on the same cores.

Both sides produce the same outputs from the same synaptic inputs: the
membrane potential of every segment in 1-ms bin means, the transmembrane
currents, the LFP on a placed probe, the current dipole moment and the EEG of
a head model. Throughput is simulated cell-seconds per wall-clock second.
"""

from __future__ import annotations

import math
import os
import pickle
import platform
import queue as queue_module
import sys
import threading
import time
import traceback
from collections.abc import Sequence

import numpy as np

from ._logging import logger, use_log_level
from ._validation import check_multiple, check_option, check_positive, check_type

__all__ = ["DEFINITION", "THROUGHPUT_KIND", "format_throughput", "throughput"]

#: ``kind`` field of the result of :func:`throughput`.
THROUGHPUT_KIND = "lfp_surrogate.bench.throughput"

#: The definition written into every result.
DEFINITION = (
    "throughput = simulated cell-seconds per wall-clock second, both sides "
    "using the same cores (n_jobs). Surrogate: torch with n_jobs threads; "
    "n_batch independent inputs of duration ms predicted as one batch by "
    "streaming (rate = n_batch * duration / wall). NEURON: the package's own "
    "recording loop (Simulator, 1-ms bin means) plus the same LFP, dipole and "
    "EEG matrices on bin-mean imem, n_jobs worker processes in parallel, one "
    "cell each (rate = n_jobs * simulated seconds / wall). One-time costs "
    "(cell build, mechanism loading, operator build, model load, process "
    "start) are excluded and reported apart; generating the input spike "
    "trains is excluded on both sides, encoding them into counts is included "
    "in the surrogate's whole path."
)

#: Default probe: a Neuropixels shank along the apical axis (+y), 50 µm from it.
DEFAULT_PROBE = "Neuropixels-384 position=50,500,0 rotation=-90,0,0"

#: Training cost assumed when neither a model card nor arguments give it:
#: the floor of the shipped model (600 simulated seconds) and one hour.
DEFAULT_TRAINING = dict(simulated_s=600.0, wall_min=60.0)

_DEVICES = ("cpu", "cuda", "auto")
_NEURON_IMEM = ("recorded", "derived")
_BYTES_PER_MB = 1024.0**2  # MiB, as `ps` and `top` count
_THREAD_ENV = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
_WORKER_TIMEOUT = 1800.0  # s, from start to the result of a NEURON worker


def throughput(
    model=None,
    *,
    cell: str | None = None,
    duration: float = 1000.0,
    batches: Sequence[int] = (1, 8, 64),
    probe: str = DEFAULT_PROBE,
    head: str = "four_sphere_lfpy_default",
    device: str = "cpu",
    n_jobs: int = 2,
    repeat: int = 3,
    chunk: int = 1000,
    seed: int = 0,
    stats=None,
    neuron_imem: str = "recorded",
    training_simulated_s: float | None = None,
    training_wall_min: float | None = None,
    verbose: bool | str | int | None = None,
) -> dict:
    """Measure the throughput of the surrogate and of NEURON on the same input.

    Throughput is simulated cell-seconds per wall-clock second, both sides
    using ``n_jobs`` cores:

    - **surrogate**: torch with ``n_jobs`` threads. For each batch size B, B
      independent inputs of ``duration`` ms are predicted as one batch by
      streaming (:func:`~lfp_surrogate.models.predict_stream`, chunks of
      ``chunk`` bins). Timed apart: the encoding of the spike trains into
      counts, (a) the network alone, (b) the currents
      (:class:`~lfp_surrogate.currents.ImemOperator` on the predicted vmem),
      (c) the forward models (LFP on the probe, dipole, EEG); and the whole
      path (encoding, network, currents, forward, chunk by chunk) measured
      end to end. Rate = ``B * duration / wall``.
    - **NEURON**: the fastest path to the same outputs, the package's own
      recording loop (:class:`~lfp_surrogate.simulate.Simulator`, 1-ms bin
      means of vmem and imem) plus the same matrices applied to the bin-mean
      imem of each chunk, as the ground-truth generation does; ``n_jobs``
      worker processes run in parallel, one cell each, started together.
      Rate = ``n_jobs * simulated seconds / wall`` of the slowest worker.

    Parameters
    ----------
    model : str | path-like | SavedModel | Surrogate | None
        A shipped model's name or a saved model folder
        (:func:`~lfp_surrogate.train.load_model`), a loaded model, or a
        network. ``None``: an untrained network of the default
        :class:`~lfp_surrogate.models.ModelConfig` for the cell (one task per
        region, as training builds it); timing does not depend on the
        weights.
    cell : str | None
        Catalogue name of the cell. Default: the model's cell, else
        ``"l5_ttpc1"``. A model made for another cell is an error.
    duration : float
        Simulated time per input (ms), a whole number of bins, at least two.
    batches : sequence of int
        Batch sizes of the surrogate.
    probe : str
        LFP probe placement, ``'NAME|FILE [position=X,Y,Z] [rotation=RX,RY,RZ]'``
        (µm relative to the soma, degrees), as ``--probe`` of the command line.
    head : str
        EEG head model (name in ``head_models/`` or YAML file).
    device : {"cpu", "cuda", "auto"}
        ``"cpu"``: the surrogate on the CPU. ``"cuda"``: on the CPU and on
        the GPU (skipped, with a warning and a note in the result, when CUDA is
        not available). ``"auto"``: the GPU too when available. The NEURON
        side always runs on the CPU.
    n_jobs : int
        Cores of each side: torch threads of the surrogate, NEURON worker
        processes.
    repeat : int
        Timed repeats per batch size after one untimed warm-up run; the
        median is reported (and the best).
    chunk : int
        Bins per streamed chunk of the surrogate.
    seed : int
        Seed of the inputs; NEURON worker i simulates the surrogate's input i.
    stats : InputStatistics | None
        Input statistics (default: the calibrated defaults).
    neuron_imem : {"recorded", "derived"}
        NEURON's imem: ``i_membrane_`` recorded at every step and
        bin-averaged, as the ground truth does, or derived from the bin-mean
        vmem with the exact operator (equal to float precision; spares the
        recording).
    training_simulated_s : float | None
        Simulated seconds of training data, for the break-even. Default: the
        model card's ``training.simulated_seconds``, else 600.
    training_wall_min : float | None
        Training wall time (minutes), for the break-even. Default: the card's
        ``training.wall_minutes``, else 60.
    verbose : bool | str | int | None
        Log level for this call (``None``: the current one).

    Returns
    -------
    result : dict
        JSON-serialisable: ``definition``, ``statistic``, ``configuration``
        (cell, model config, parameters, receptive field, outputs, torch
        version, threads, CPU), ``one_time_s``, ``surrogate`` (per device and
        batch: ``wall_s`` and ``wall_s_best`` of ``encode``, ``network``,
        ``currents``, ``forward``, ``whole_path`` and ``sum_of_parts``;
        ``rate`` in cell-s per wall-s; peak resident memory), ``neuron``
        (``rate``, ``rate_with_warmup``, per-worker times and peak resident
        memory), ``ratios`` (surrogate rate / NEURON rate per device and
        batch, network alone and whole path) and ``break_even``.

    Notes
    -----
    The NEURON rate leaves out each run's warm-up (1 s at a coarse step,
    which a saved rest state would replace) and its first chunk, so it is
    the steady rate; ``rate_with_warmup`` counts the whole run. The
    break-even is the simulated time of use after which the surrogate has
    repaid its data generation and training::

        gen_wall = training_simulated_s / neuron_rate
        break_even_s = (gen_wall + train_wall) / (1 / neuron_rate
                                                   - 1 / surrogate_rate)

    with the whole-path surrogate rate of each batch size; ``None`` where
    the surrogate is not faster. ``gen_wall`` uses the NEURON rate measured
    here, with the forward outputs and recorded (or derived) imem.

    Both sides keep the LFP, dipole and EEG of the whole duration and pass
    vmem and imem on chunk by chunk (the surrogate's parts (a)-(c), timed
    apart, hold whole arrays). The surrogate runs in float32, NEURON and its
    matrices in float64. Peak memory is the resident set: sampled in this
    process during the surrogate's warm-up run of each batch size, and the
    high-water mark of each NEURON worker.
    """
    from .inputs import InputStatistics, generate_inputs, simulation_seeds

    batches = _check_batches(batches)
    check_positive(duration, "duration")
    check_positive(n_jobs, "n_jobs", integer=True)
    check_positive(repeat, "repeat", integer=True)
    check_positive(chunk, "chunk", integer=True)
    check_positive(seed, "seed", integer=True, strict=False)
    check_type(probe, str, "probe")
    check_type(head, str, "head")
    check_option(device, _DEVICES, "device")
    check_option(neuron_imem, _NEURON_IMEM, "neuron_imem")
    for value, name in (
        (training_simulated_s, "training_simulated_s"),
        (training_wall_min, "training_wall_min"),
    ):
        if value is not None:
            check_positive(value, name, strict=False)
    stats = InputStatistics() if stats is None else stats
    check_type(stats, InputStatistics, "stats")

    with use_log_level(verbose):
        t_start = time.perf_counter()
        one_time = {}
        net, geometry, imem_op, card, source = _resolve_model(model, cell, one_time)
        interval = float(net.config.interval)
        n_bins = check_multiple(duration, interval, "duration", "model interval")
        if n_bins < 2:
            raise ValueError(
                f"duration must hold at least two bins of {interval:g} ms, got "
                f"{duration:g} ms"
            )
        devices = _devices(device)
        logger.info(
            "Throughput of %s (%d segments), %g ms per input: surrogate at "
            "batch %s on %s with %d threads, NEURON with %d worker(s)",
            geometry.name,
            geometry.n_seg,
            duration,
            ", ".join(map(str, batches)),
            " and ".join(d for d in devices if not d.startswith("skip")),
            n_jobs,
            n_jobs,
        )

        # one-time: forward operators (pickled before torch caches any tensor)
        t0 = time.perf_counter()
        ops, outputs = _forward_operators(geometry, probe, head)
        one_time["forward_operators_s"] = time.perf_counter() - t0
        ops_payload = pickle.dumps(ops)

        # inputs, drawn once; worker i simulates input i (excluded both sides)
        t0 = time.perf_counter()
        n_inputs = max(max(batches), n_jobs)
        seeds = simulation_seeds(seed, n_inputs)
        spikes = [generate_inputs(geometry, duration, s, stats) for s in seeds]
        input_s = time.perf_counter() - t0

        surrogate = {}
        for dev in devices:
            if dev.startswith("skip"):
                surrogate["cuda"] = {"skipped": dev.split(":", 1)[1].strip()}
                continue
            surrogate[dev] = _time_surrogate(
                net, imem_op, ops, spikes, batches, dev, n_jobs, repeat, chunk
            )
        neuron = _time_neuron(
            geometry.name,
            duration,
            interval,
            seeds[:n_jobs],
            stats,
            ops_payload,
            neuron_imem,
            n_jobs,
        )
        one_time["neuron_worker_startup_s"] = [
            w["startup_s"] for w in neuron["workers"]
        ]
        one_time["neuron_build_s"] = [w["build_s"] for w in neuron["workers"]]

        ratios = {}
        for dev, entry in surrogate.items():
            if "batches" not in entry:
                continue
            ratios[dev] = {
                key: {
                    "network": b["rate"]["network"] / neuron["rate"],
                    "whole_path": b["rate"]["whole_path"] / neuron["rate"],
                }
                for key, b in entry["batches"].items()
            }
        result = dict(
            kind=THROUGHPUT_KIND,
            definition=DEFINITION,
            statistic=(
                f"surrogate: median (and best) of {repeat} timed repeats after one "
                f"untimed warm-up run per batch size; NEURON: one run per worker, "
                f"steady rate over all chunks after the first"
            ),
            configuration=_configuration(
                net,
                geometry,
                source,
                outputs,
                duration,
                batches,
                n_jobs,
                repeat,
                chunk,
                seed,
                stats,
                neuron_imem,
                neuron,
            ),
            one_time_s=one_time,
            input_generation_s=input_s,
            surrogate=surrogate,
            neuron=neuron,
            ratios=ratios,
            break_even=_break_even(
                surrogate.get("cpu"),
                neuron["rate"],
                card,
                training_simulated_s,
                training_wall_min,
            ),
        )
        result["wall_s"] = time.perf_counter() - t_start
        cpu_ratio = ratios.get("cpu", {})
        logger.info(
            "Throughput done in %.1f s: NEURON %.3g cell-s/s; surrogate/NEURON "
            "(whole path) %s",
            result["wall_s"],
            neuron["rate"],
            ", ".join(
                f"batch {k}: {v['whole_path']:.3g}x" for k, v in cpu_ratio.items()
            ),
        )
    return result


def format_throughput(result: dict) -> str:
    """A short table of a result of :func:`throughput`.

    Parameters
    ----------
    result : dict
        As returned by :func:`throughput` (or read back from its JSON).

    Returns
    -------
    table : str
        One line per device and batch size: rates (cell-s per wall-s) of the
        network and the whole path, the ratios to NEURON and the break-even.
    """
    neuron = result["neuron"]
    lines = [
        f"cell {result['configuration']['cell']['name']}, "
        f"{result['configuration']['duration_ms']:g} ms per input, "
        f"{result['configuration']['n_jobs']} cores per side",
        f"NEURON ({neuron['n_workers']} workers, imem {neuron['imem']}): "
        f"{neuron['rate']:.4g} cell-s/s (with warm-up "
        f"{neuron['rate_with_warmup']:.4g}); peak RSS per worker "
        + ", ".join(f"{w['peak_rss_mb']:.0f}" for w in neuron["workers"])
        + " MiB",
        f"{'device':>6} {'batch':>5} {'network':>10} {'whole':>10} "
        f"{'x net':>8} {'x whole':>8} {'RSS MiB':>8} {'break-even':>12}",
    ]
    even = result["break_even"]["by_batch"]
    for dev, entry in result["surrogate"].items():
        if "batches" not in entry:
            lines.append(f"{dev:>6} skipped: {entry.get('skipped', '')}")
            continue
        for key, b in entry["batches"].items():
            ratio = result["ratios"][dev][key]
            be = even.get(key) if dev == "cpu" else None
            lines.append(
                f"{dev:>6} {key:>5} {b['rate']['network']:>10.4g} "
                f"{b['rate']['whole_path']:>10.4g} {ratio['network']:>8.3g} "
                f"{ratio['whole_path']:>8.3g} "
                f"{_fmt(b.get('peak_rss_mb'), '.0f'):>8} "
                f"{_fmt(be, '.3g') if dev == 'cpu' else '':>12}"
            )
    lines.append(
        "rates in simulated cell-seconds per wall-clock second; x: surrogate / "
        "NEURON; break-even (s): simulated seconds of use that repay data "
        "generation and training"
    )
    return "\n".join(lines)


def _fmt(value, spec: str) -> str:
    return "-" if value is None else format(value, spec)


# -- checks and setup ----------------------------------------------------------


def _check_batches(batches) -> tuple[int, ...]:
    if isinstance(batches, int | np.integer) and not isinstance(batches, bool):
        batches = (int(batches),)
    if isinstance(batches, str | bytes) or not isinstance(
        batches, Sequence | np.ndarray
    ):
        raise TypeError(
            f"batches must be a sequence of positive ints, got "
            f"{type(batches).__name__} ({batches!r})"
        )
    out = []
    for b in batches:
        check_positive(b, "batches", integer=True)
        out.append(int(b))
    if not out:
        raise ValueError("batches must hold at least one batch size, got none")
    if len(set(out)) != len(out):
        raise ValueError(f"batches must be distinct, got {out}")
    return tuple(out)


def _devices(device: str) -> list[str]:
    """``"cpu"`` first, then ``"cuda"`` or a ``"skip: reason"`` entry."""
    import torch

    devices = ["cpu"]
    if device == "cpu":
        return devices
    if torch.cuda.is_available():
        devices.append("cuda")
    elif device == "cuda":
        reason = (
            f"CUDA is not available (torch {torch.__version__}, "
            f"CUDA build {torch.version.cuda or 'none'})"
        )
        logger.warning("Skipping the GPU: %s", reason)
        devices.append(f"skip: {reason}")
    return devices


def _default_config(geometry):
    """The default ModelConfig for a cell: one task per region present."""
    from .models import ModelConfig

    codes = np.unique(geometry.region)
    task_of_seg = np.searchsorted(codes, geometry.region)
    return ModelConfig(
        n_seg=geometry.n_seg, task_of_seg=tuple(int(t) for t in task_of_seg)
    )


def _resolve_model(model, cell, one_time: dict):
    """(network in eval mode, geometry, imem operator, card, source)."""
    from .cells import cell_geometry, cell_imem_operator
    from .models import Surrogate, build_model
    from .train import SavedModel, load_model

    if cell is not None:
        check_type(cell, str, "cell")
    if isinstance(model, str | os.PathLike):
        t0 = time.perf_counter()
        saved = load_model(model)
        one_time["model_load_s"] = time.perf_counter() - t0
        source = f"saved model {os.fspath(model)}"
        model = saved
    else:
        source = None
    if isinstance(model, SavedModel):
        geometry = model.geometry
        if cell is not None and cell != geometry.name:
            expected = cell_geometry(cell).cell_hash
            if expected != geometry.cell_hash:
                raise ValueError(
                    f"model was trained for cell {geometry.name!r} (hash "
                    f"{geometry.cell_hash}), not for cell {cell!r} (hash "
                    f"{expected}); pass cell={geometry.name!r} or a model of "
                    f"{cell!r}"
                )
        net = model.model
        return (
            net.eval(),
            geometry,
            model.imem_operator,
            dict(model.card),
            source or "loaded SavedModel",
        )

    cell = "l5_ttpc1" if cell is None else cell
    t0 = time.perf_counter()
    geometry = cell_geometry(cell)
    imem_op = cell_imem_operator(cell)
    one_time["cell_geometry_and_imem_operator_s"] = time.perf_counter() - t0
    if model is None:
        t0 = time.perf_counter()
        net = build_model(_default_config(geometry), verbose=False)
        one_time["model_build_s"] = time.perf_counter() - t0
        source = (
            "untrained network of the default ModelConfig for the cell (timing "
            "does not depend on the weights)"
        )
        return net.eval(), geometry, imem_op, {}, source
    if isinstance(model, Surrogate):
        if model.n_seg != geometry.n_seg:
            raise ValueError(
                f"model predicts {model.n_seg} segments but cell {cell!r} has "
                f"{geometry.n_seg}; pass the cell the model was built for"
            )
        return model.eval(), geometry, imem_op, {}, "Surrogate given in Python"
    raise TypeError(
        f"model must be None, a model name or folder, a SavedModel or a "
        f"Surrogate, got {type(model).__name__} ({model!r})"
    )


def _forward_operators(geometry, probe: str, head: str):
    """LFP, dipole and EEG operators (as ground truth builds them)."""
    from .cli._common import parse_probe
    from .forward import ForwardConfig, ForwardModel

    placement = parse_probe(probe)
    config = ForwardConfig(probes=[placement], heads=[head], inside="ignore")
    fwd = ForwardModel(geometry, config, verbose=False)
    (label, lfp), (name, eeg) = (
        next(iter(fwd.lfp_operators.items())),
        next(iter(fwd.eeg_operators.items())),
    )
    ops = {"lfp": lfp, "dipole": fwd.dipole_operator, "eeg": eeg}
    outputs = {
        "lfp": dict(probe=probe, label=label, n_contacts=int(lfp.out_shape[0])),
        "dipole": dict(components=3),
        "eeg": dict(
            head=name,
            n_electrodes=int(eeg.out_shape[0]),
            reference=str(eeg.reference),
        ),
        "units": dict(lfp="mV", dipole="nA*um", eeg="mV", vmem="mV", imem="nA"),
        "kept": "lfp, dipole and eeg over the whole duration; vmem and imem "
        "chunk by chunk",
    }
    return ops, outputs


# -- memory ----------------------------------------------------------------------


def _rss_bytes() -> int | None:
    """Resident set size of this process now (bytes), or None if unknown."""
    try:
        import psutil

        return int(psutil.Process().memory_info().rss)
    except ImportError:
        pass
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, AttributeError):
        return None


def _max_rss_mb() -> float | None:
    """Peak resident set size of this process so far (MiB).

    On Linux, ``VmHWM`` of ``/proc/self/status``, the high-water mark of this
    program's memory; ``getrusage`` would also count the parent's memory at
    fork, which Linux carries across ``exec``, so a spawned worker would
    inherit its parent's peak.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # kB -> MiB
    except (OSError, ValueError, IndexError):
        pass
    try:
        import resource
    except ImportError:  # Windows
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # macOS reports bytes, other systems KiB
    return peak / (_BYTES_PER_MB if sys.platform == "darwin" else 1024.0)


class _PeakRSS:
    """Sample the resident set size in a thread; ``peak`` and ``before`` (MiB)."""

    def __init__(self, period: float = 0.005):
        self.period = period
        self.before = self.peak = None
        self._stop = threading.Event()

    def _run(self):
        while not self._stop.wait(self.period):
            rss = _rss_bytes()
            if rss is not None:
                self._peak = max(self._peak, rss)

    def __enter__(self):
        rss = _rss_bytes()
        if rss is None:
            return self
        self._peak = rss
        self.before = rss / _BYTES_PER_MB
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.before is None:
            return
        self._stop.set()
        self._thread.join()
        rss = _rss_bytes()
        self.peak = max(self._peak, rss or 0) / _BYTES_PER_MB


# -- surrogate side ------------------------------------------------------------


def _sync(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.synchronize()


def _timed(fn, device: str):
    _sync(device)
    t0 = time.perf_counter()
    out = fn()
    _sync(device)
    return out, time.perf_counter() - t0


def _time_surrogate(net, imem_op, ops, spikes, batches, device, n_jobs, repeat, chunk):
    """Per batch size: wall times and rates of each part and of the whole."""
    import torch

    from .models import iter_stream, predict_stream, sparse_counts
    from .models._streaming import _chunks

    interval = float(net.config.interval)
    old_threads = torch.get_num_threads()
    old_device = net.vmem_mean.device
    torch.set_num_threads(n_jobs)
    net.to(device)
    for op in ops.values():
        op.to(device, torch.float32)
    try:
        out = dict(
            device=device,
            torch_threads=torch.get_num_threads(),
            dtype="float32",
            chunk_bins=chunk,
            gpu=torch.cuda.get_device_name(0) if device == "cuda" else None,
            batches={},
        )
        for n_batch in batches:
            batch = spikes[:n_batch]

            def encode(batch=batch):
                counts = sparse_counts(batch, interval)
                return counts if device == "cpu" else counts.to(device)

            def network(counts):
                return predict_stream(net, counts, chunk, verbose=False).vmem

            def currents(vmem):
                return imem_op.apply(vmem)

            def forward(imem):
                return {name: op(imem) for name, op in ops.items()}

            def whole(encode=encode, n_batch=n_batch):
                counts = encode()
                n_times = counts.shape[-1]
                signals = {
                    name: torch.empty((n_batch, *op.out_shape, n_times), device=device)
                    for name, op in ops.items()
                }
                k0 = 0
                for step in iter_stream(net, _chunks(counts, chunk)):
                    imem = imem_op.apply(step.vmem)
                    k1 = k0 + imem.shape[-1]
                    for name, op in ops.items():
                        signals[name][..., k0:k1] = op(imem)
                    k0 = k1
                return signals

            with torch.no_grad():
                # warm-up (untimed): the whole path, sampling memory, then parts
                if device == "cuda":
                    torch.cuda.reset_peak_memory_stats()
                with _PeakRSS() as mem:
                    whole()
                    _sync(device)
                counts = encode()
                vmem = network(counts)
                imem = currents(vmem)
                forward(imem)
                _sync(device)
                del vmem, imem

                times = {k: [] for k in ("encode", "network", "currents", "forward")}
                times["whole_path"] = []
                for _ in range(repeat):
                    counts, t = _timed(encode, device)
                    times["encode"].append(t)
                    vmem, t = _timed(lambda c=counts: network(c), device)
                    times["network"].append(t)
                    imem, t = _timed(lambda v=vmem: currents(v), device)
                    times["currents"].append(t)
                    del vmem
                    _, t = _timed(lambda i=imem: forward(i), device)
                    times["forward"].append(t)
                    del imem, counts
                    _, t = _timed(whole, device)
                    times["whole_path"].append(t)

            sim_s = n_batch * _duration_s(spikes[0])
            median = {k: float(np.median(v)) for k, v in times.items()}
            best = {k: float(np.min(v)) for k, v in times.items()}
            parts = ("encode", "network", "currents", "forward")
            median["sum_of_parts"] = sum(median[k] for k in parts)
            best["sum_of_parts"] = sum(best[k] for k in parts)
            entry = dict(
                n_batch=n_batch,
                simulated_s=sim_s,
                wall_s=median,
                wall_s_best=best,
                wall_s_all=times,
                rate={k: sim_s / v for k, v in median.items() if k != "encode"},
                rss_before_mb=mem.before,
                peak_rss_mb=mem.peak,
            )
            if device == "cuda":
                entry["peak_cuda_mb"] = torch.cuda.max_memory_allocated() / (
                    _BYTES_PER_MB
                )
            out["batches"][str(n_batch)] = entry
            logger.info(
                "Surrogate on %s, batch %d: network %.3g, whole path %.3g cell-s/s "
                "(median of %d; %.3f s for %g cell-s; peak RSS %s MiB)",
                device,
                n_batch,
                entry["rate"]["network"],
                entry["rate"]["whole_path"],
                repeat,
                median["whole_path"],
                sim_s,
                _fmt(mem.peak, ".0f"),
            )
        out["process_peak_rss_mb"] = _max_rss_mb()
        return out
    finally:
        torch.set_num_threads(old_threads)
        net.to(old_device)


def _duration_s(spikes) -> float:
    """Duration (s) of a SpikeTrains."""
    return float(spikes.duration) * 1e-3


# -- NEURON side ---------------------------------------------------------------


def _neuron_worker(index, args: dict, barrier, results) -> None:
    """Build a simulator, wait for the others, simulate one input, report."""
    ready = None
    try:
        t0 = time.perf_counter()
        from .inputs import generate_inputs
        from .simulate import SimulationConfig, Simulator

        derived = args["neuron_imem"] == "derived"
        duration, interval = args["duration"], args["interval"]
        n_bins = int(round(duration / interval))
        # at least two chunks: the first holds the warm-up and is not timed
        chunk = interval * max(1, min(int(round(100.0 / interval)), n_bins // 2))
        cfg = SimulationConfig(
            cell=args["cell"],
            duration=duration,
            interval=interval,
            chunk=chunk,
            record_imem=not derived,
        )
        sim = Simulator(cfg)
        imem_op = sim.cell.imem_operator() if derived else None
        ops = pickle.loads(args["ops"])
        spikes = generate_inputs(sim.geometry, duration, args["seed"], args["stats"])
        signals = {name: np.empty((*op.out_shape, n_bins)) for name, op in ops.items()}
        stamps = []

        def sink(k0, vmem, imem):
            if imem is None:
                imem = imem_op.apply(vmem)
            k1 = k0 + vmem.shape[1]
            for name, op in ops.items():
                signals[name][..., k0:k1] = op.apply(imem)
            stamps.append((k1, time.perf_counter()))

        build_s = time.perf_counter() - t0
        rss_built = _max_rss_mb()
        ready = time.perf_counter()
        barrier.wait(timeout=_WORKER_TIMEOUT)
        start = time.perf_counter()
        res = sim.run(spikes, args["stats"], sink=sink)
        end = time.perf_counter()
        import neuron

        results.put(
            dict(
                index=index,
                ok=True,
                ready=ready,
                start=start,
                end=end,
                build_s=build_s,
                stamps=stamps,
                chunk_ms=chunk,
                simulation=cfg.to_dict(),
                n_soma_spikes=int(res.soma_spikes.size),
                rss_built_mb=rss_built,
                peak_rss_mb=_max_rss_mb(),
                neuron_version=neuron.__version__,
                blas_threads=os.environ.get("OPENBLAS_NUM_THREADS"),
            )
        )
    except BaseException as err:  # report every failure to the parent
        if ready is None or not isinstance(err, threading.BrokenBarrierError):
            barrier.abort()
        results.put(
            dict(
                index=index,
                ok=False,
                broken_barrier=isinstance(err, threading.BrokenBarrierError),
                error=f"{type(err).__name__}: {err}",
                traceback=traceback.format_exc(),
            )
        )


def _time_neuron(cell, duration, interval, seeds, stats, ops_payload, imem, n_jobs):
    """Run ``n_jobs`` NEURON workers together; rates and per-worker details."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    barrier = ctx.Barrier(n_jobs)
    results = ctx.Queue()
    base = dict(
        cell=cell,
        duration=float(duration),
        interval=interval,
        stats=stats,
        ops=ops_payload,
        neuron_imem=imem,
    )
    procs = [
        ctx.Process(
            target=_neuron_worker,
            args=(i, dict(base, seed=seeds[i]), barrier, results),
            daemon=True,
        )
        for i in range(n_jobs)
    ]
    logger.info(
        "NEURON: %d worker(s) simulating %g ms of %s each (imem %s)",
        n_jobs,
        duration,
        cell,
        imem,
    )
    # one core per worker: single-threaded BLAS for the forward matrices
    saved = {k: os.environ.get(k) for k in _THREAD_ENV}
    os.environ.update({k: "1" for k in _THREAD_ENV})
    try:
        spawned = time.perf_counter()
        for p in procs:
            p.start()
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    reports = []
    deadline = time.monotonic() + _WORKER_TIMEOUT
    try:
        while len(reports) < n_jobs:
            try:
                reports.append(results.get(timeout=1.0))
            except queue_module.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead and len(reports) + len(dead) >= n_jobs:
                    # give a dying worker's last message a moment to arrive
                    try:
                        reports.append(results.get(timeout=5.0))
                        continue
                    except queue_module.Empty:
                        pass
                    raise RuntimeError(
                        f"NEURON worker(s) exited with code(s) "
                        f"{[p.exitcode for p in dead]} without a result"
                    ) from None
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"NEURON workers gave no result within {_WORKER_TIMEOUT:g} s"
                    ) from None
    finally:
        for p in procs:
            p.join(timeout=10.0)
            if p.is_alive():
                p.terminate()
    failed = [r for r in reports if not r["ok"]]
    if failed:
        first = next((r for r in failed if not r["broken_barrier"]), failed[0])
        raise RuntimeError(
            f"NEURON worker {first['index']} failed: {first['error']}\n"
            f"{first['traceback']}"
        )
    workers = sorted(reports, key=lambda r: r["index"])

    out_workers = []
    for w in workers:
        (k_first, t_first), (k_last, t_last) = w["stamps"][0], w["stamps"][-1]
        steady_sim_s = (k_last - k_first) * interval * 1e-3
        steady_wall = t_last - t_first
        out_workers.append(
            dict(
                startup_s=w["ready"] - spawned,
                build_s=w["build_s"],
                wall_s=w["end"] - w["start"],
                first_chunk_s=t_first - w["start"],
                steady_wall_s=steady_wall,
                steady_simulated_s=steady_sim_s,
                rate=steady_sim_s / steady_wall,
                chunk_ms=w["chunk_ms"],
                n_soma_spikes=w["n_soma_spikes"],
                rss_built_mb=w["rss_built_mb"],
                peak_rss_mb=w["peak_rss_mb"],
            )
        )
    steady_sim_s = out_workers[0]["steady_simulated_s"]
    slowest = max(w["steady_wall_s"] for w in out_workers)
    span = max(w["end"] for w in workers) - min(w["start"] for w in workers)
    rate = n_jobs * steady_sim_s / slowest
    out = dict(
        n_workers=n_jobs,
        imem=imem,
        rate=rate,
        rate_with_warmup=n_jobs * duration * 1e-3 / span,
        wall_s_per_simulated_s_per_core=n_jobs / rate,
        steady_wall_s=slowest,
        wall_s_with_warmup=span,
        simulation=workers[0]["simulation"],
        neuron_version=workers[0]["neuron_version"],
        worker_blas_threads=workers[0]["blas_threads"],
        workers=out_workers,
    )
    logger.info(
        "NEURON: %.3g cell-s/s with %d worker(s) (%.3g with warm-up); peak RSS "
        "per worker %s MiB",
        rate,
        n_jobs,
        out["rate_with_warmup"],
        ", ".join(_fmt(w["peak_rss_mb"], ".0f") for w in out_workers),
    )
    return out


# -- report ----------------------------------------------------------------------


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _configuration(
    net,
    geometry,
    source,
    outputs,
    duration,
    batches,
    n_jobs,
    repeat,
    chunk,
    seed,
    stats,
    neuron_imem,
    neuron,
) -> dict:
    import torch

    from . import __version__

    return dict(
        cell=dict(
            name=geometry.name, n_seg=geometry.n_seg, cell_hash=geometry.cell_hash
        ),
        duration_ms=float(duration),
        batches=list(batches),
        n_jobs=n_jobs,
        repeat=repeat,
        chunk_bins=chunk,
        seed=seed,
        input_statistics=stats.to_dict(),
        neuron_imem=neuron_imem,
        outputs=outputs,
        model=dict(
            source=source,
            config=net.config.to_dict(),
            n_parameters=int(net.n_parameters),
            receptive_field_bins=int(net.receptive_field),
            receptive_field_ms=float(net.receptive_field_ms),
        ),
        machine=dict(
            cpu=_cpu_name(),
            cores=os.cpu_count(),
            platform=platform.platform(),
            python=platform.python_version(),
            numpy=np.__version__,
            torch=torch.__version__,
            torch_threads=n_jobs,
            neuron=neuron["neuron_version"],
            cuda=torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
            lfp_surrogate=__version__,
        ),
    )


def _break_even(cpu, neuron_rate, card, simulated_s, wall_min) -> dict:
    training = card.get("training", {}) if isinstance(card, dict) else {}
    sources = {}
    if simulated_s is None and "simulated_seconds" in training:
        simulated_s, sources["simulated_s"] = training["simulated_seconds"], "card"
    if wall_min is None and "wall_minutes" in training:
        wall_min, sources["wall_min"] = training["wall_minutes"], "card"
    if simulated_s is None:
        simulated_s, sources["simulated_s"] = DEFAULT_TRAINING["simulated_s"], "default"
    if wall_min is None:
        wall_min, sources["wall_min"] = DEFAULT_TRAINING["wall_min"], "default"
    sources.setdefault("simulated_s", "argument")
    sources.setdefault("wall_min", "argument")
    gen_wall = float(simulated_s) / neuron_rate
    train_wall = float(wall_min) * 60.0
    by_batch = {}
    for key, b in (cpu or {}).get("batches", {}).items():
        saving = 1.0 / neuron_rate - 1.0 / b["rate"]["whole_path"]
        value = (gen_wall + train_wall) / saving if saving > 0 else None
        by_batch[key] = value if value is None or math.isfinite(value) else None
    return dict(
        formula=(
            "break_even_s = (gen_wall + train_wall) / (1/neuron_rate - "
            "1/surrogate_rate), gen_wall = training_simulated_s / neuron_rate; "
            "surrogate_rate: whole path on the CPU at each batch size; None "
            "where the surrogate is not faster"
        ),
        training_simulated_s=float(simulated_s),
        training_wall_s=train_wall,
        source=sources,
        gen_wall_s=gen_wall,
        by_batch=by_batch,
    )
