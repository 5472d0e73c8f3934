"""Generate a dataset of full NEURON simulations, in parallel and resumable."""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import shutil
import threading
import time
import uuid
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

from .._logging import logger, progress, use_log_level
from .._validation import check_positive, check_type
from ._config import CONFIG_NAME, DatasetConfig, package_versions
from ._shards import ShardWriter, open_shard
from ._signals import compute_signals, signal_specs

_SHARD_FMT = "shard-{:05d}.h5"

# the simulator of a worker process, built once
_WORKER: dict = {}
# NEURON is not thread-safe: one simulation at a time in a Dask worker process
_NEURON_LOCK = threading.Lock()
#: What ``scheduler`` accepts besides an address or a client.
LOCAL_SCHEDULER = "local"


def shard_path(folder, shard: int) -> Path:
    """Path of a complete shard."""
    return Path(folder) / _SHARD_FMT.format(shard)


def _own_files(folder: Path) -> list[Path]:
    """Files of ours in a dataset folder (shards, temporaries, config)."""
    out = [p for p in folder.glob("shard-*.h5")]
    out += [p for p in folder.glob(".shard-*.tmp")]
    if (folder / CONFIG_NAME).exists():
        out.append(folder / CONFIG_NAME)
    return out


def generate_dataset(
    out,
    config: DatasetConfig,
    *,
    n_jobs: int | None = None,
    scheduler=None,
    resume: bool = False,
    force: bool = False,
    verbose=None,
) -> Path:
    """Simulate ``config.n_sims`` inputs and write them as HDF5 shards.

    Parameters
    ----------
    out : path-like
        Dataset folder. A non-empty folder is refused unless ``resume`` (same
        settings: complete shards are kept, the rest is simulated) or
        ``force`` (our own shards and configuration are replaced; other files
        are left alone).
    config : DatasetConfig
        What to simulate.
    n_jobs : int | None
        Worker processes (default: one per core). With 1 and no
        ``scheduler``, the simulations run in this process. With
        ``scheduler="local"``, the number of workers of the local Dask
        cluster; ignored for another scheduler.
    scheduler : distributed.Client | str | None
        Run the simulations on a Dask cluster (needs ``dask[distributed]``,
        the ``dask`` extra): a connected ``distributed.Client``, the address
        of a scheduler (``"tcp://host:8786"``), or ``"local"`` to start a
        ``distributed.LocalCluster`` of ``n_jobs`` worker processes with one
        thread each for this call. ``None`` (default) uses a local process
        pool. Every worker must see ``out`` (a shared file system) and have
        this package installed; it compiles or finds the cell's mechanisms in
        its own cache.
    resume : bool
        Continue an interrupted generation with the same settings.
    force : bool
        Replace an existing dataset of ours.
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    folder : Path
        The dataset folder.

    Raises
    ------
    ValueError, FileNotFoundError
        For an unknown cell or an unusable probe, head or MEG setting (every
        forward model is built once before any work), or a folder made with
        other settings (``resume``).
    FileExistsError
        For a non-empty folder without ``resume`` or ``force``.
    ValueError
        For a ``scheduler`` that cannot be reached.
    ImportError
        For a ``scheduler`` without ``dask[distributed]`` installed.

    Notes
    -----
    Every setting is checked before ``out`` is created or touched, so a bad
    one never costs existing shards, even with ``force``. A first run that
    fails before its first shard is complete removes the configuration it
    wrote (and the folder, if it made it and it is empty). Resuming a
    complete dataset does nothing. Each shard is written under a temporary
    name and renamed when complete, so a killed run loses at most the shards
    in progress. The data are bit-identical for the same configuration
    whatever ``n_jobs`` and however often the run was resumed: each
    simulation's input comes from its own child of ``SeedSequence(seed)`` and
    NEURON's fixed-step integration is deterministic.

    On a Dask cluster each shard is one task that writes its file on the
    worker, under a temporary name, exactly as in the local pool. A worker
    that dies costs only the shards it was writing: the scheduler runs them
    again on another worker (Dask's ``allowed-failures``), and the
    temporary files it left are removed when the dataset is complete. If
    the whole run dies (this process, the scheduler), ``resume`` continues
    it. A Dask worker process runs one simulation at a time whatever its
    thread count (NEURON is not thread-safe); start workers with one thread
    each (``--nthreads 1``).
    """
    with use_log_level(verbose):
        out = Path(out)
        n_jobs = (os.cpu_count() or 1) if n_jobs is None else n_jobs
        check_positive(n_jobs, "n_jobs", integer=True)
        # every input is checked before the folder is created or touched
        _check_inputs(config)
        with _dask_client(scheduler, n_jobs) as client:
            return _generate(out, config, n_jobs, client, resume, force)


def _generate(out: Path, config, n_jobs, client, resume, force) -> Path:
    """Body of :func:`generate_dataset` once the inputs and cluster are ready."""
    had_config = (out / CONFIG_NAME).exists()
    todo = _prepare_folder(out, config, resume=resume, force=force)
    cfg = config.simulation
    if not todo:
        _check_consistent(out, config)
        logger.info(
            "All %d shard(s) of %s are complete; nothing to do",
            config.n_shards,
            out,
        )
        return out
    n_todo = sum(len(config.shard_sims(s)) for s in todo)
    logger.info(
        "Simulating %d of %d simulations of %s (%g ms, %d steps each) into %s with %s",
        n_todo,
        config.n_sims,
        cfg.cell,
        cfg.duration,
        int(round(cfg.duration / cfg.dt)),
        out,
        f"{n_jobs} worker(s)" if client is None else _describe_cluster(client),
    )
    t0 = time.perf_counter()
    try:
        with progress(total=n_todo * cfg.duration, unit="ms", desc="simulating") as bar:
            if client is not None:
                _run_dask(out, config, todo, client, bar)
            elif n_jobs == 1:
                for shard in todo:
                    _write_shard(str(out), config.to_dict(), shard, bar.update)
            else:
                _run_pool(out, config, todo, n_jobs, bar)
    except BaseException:
        if not had_config:
            _discard_unstarted(out)
        raise
    _check_consistent(out, config)
    for path in out.glob(".shard-*.tmp"):
        # left by a worker that died (its shard was written again elsewhere)
        path.unlink(missing_ok=True)
    logger.info(
        "Wrote %d shard(s) to %s in %.1f s",
        len(todo),
        out,
        time.perf_counter() - t0,
    )
    return out


def _check_inputs(config: DatasetConfig) -> None:
    """Fail on an unknown cell or an unusable forward setting before any work."""
    from ..cells import get_cell_spec

    get_cell_spec(config.simulation.cell)
    if not config.forward:
        return
    from ..cells import cell_geometry
    from ..forward import ForwardConfig, ForwardModel

    # build every probe, head and MEG model once here (cheap next to the
    # simulations), so that a bad name, file or placement fails now
    geometry = cell_geometry(config.simulation.cell)
    ForwardModel(geometry, ForwardConfig.from_dict(config.forward), verbose="WARNING")


def _discard_unstarted(out: Path) -> None:
    """After a failed first run: remove our configuration if no shard is done.

    A rerun with corrected settings then finds the folder as it was (or no
    folder), not a dataset it would refuse.
    """
    if not out.is_dir() or any(out.glob("shard-*.h5")):
        return
    for path in _own_files(out):
        path.unlink(missing_ok=True)
    if not any(out.iterdir()):
        out.rmdir()


def _prepare_folder(out: Path, config: DatasetConfig, *, resume, force) -> list:
    """Check the folder against the settings; return the shards to simulate.

    Nothing is created or removed until every check has passed.
    """
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"out must be a folder, got the file {out}")
    existing = out.is_dir() and any(out.iterdir())
    has_config = (out / CONFIG_NAME).exists()
    if existing and not (resume or force):
        if has_config:
            old = DatasetConfig.load(out)
            if old == config:
                raise FileExistsError(
                    f"out ({out}) already holds a dataset with the same settings; "
                    f"pass --resume to continue it or --force to replace it"
                )
            diff = _diff(old.to_dict(), config.to_dict())
            raise FileExistsError(
                f"out ({out}) already holds a dataset made with other settings "
                f"(stored vs given: {diff}); continue it with --resume and its "
                f"own settings, choose a new folder, or pass --force to replace it"
            )
        raise FileExistsError(
            f"out ({out}) is not empty and holds no dataset; choose an empty "
            f"folder or pass --force to write our shards beside its files"
        )
    if has_config and resume and not force:
        old = DatasetConfig.load(out)
        if old != config:
            diff = _diff(old.to_dict(), config.to_dict())
            raise ValueError(
                f"cannot resume {out}: it was made with other settings (stored "
                f"vs given: {diff}); use the same settings, choose a new folder, "
                f"or pass --force to replace it"
            )
    out.mkdir(parents=True, exist_ok=True)
    if force:
        for path in _own_files(out):
            path.unlink()
    for path in out.glob(".shard-*.tmp"):
        path.unlink()  # shards in progress when a previous run was killed
    config.save(out)
    return [s for s in range(config.n_shards) if not shard_path(out, s).exists()]


def describe_forward(forward: dict) -> str:
    """One line naming the probes, heads and MEG models of a forward dict."""
    if not forward:
        return "none"
    parts = []
    probes = [
        (p.get("label") or p.get("probe")) if isinstance(p, dict) else str(p)
        for p in forward.get("probes") or ()
    ]
    for name, values in (
        ("probes", probes),
        ("heads", list(forward.get("heads") or ())),
        ("MEG", list(forward.get("meg") or ())),
    ):
        if values:
            parts.append(f"{name} {', '.join(map(str, values))}")
    return "; ".join(parts) or "no probe, head or MEG"


def _short(value, width: int = 32) -> str:
    text = repr(value)
    return text if len(text) <= width else text[: width - 3] + "..."


def _diff(a: dict, b: dict, prefix: str = "", limit: int = 4) -> str:
    """The settings that differ, briefly: ``"key: old vs new; ..."``."""
    diffs = _diff_items(a, b, prefix)
    text = "; ".join(diffs[:limit])
    if len(diffs) > limit:
        text += f"; and {len(diffs) - limit} more"
    return text


def _diff_items(a: dict, b: dict, prefix: str = "") -> list:
    diffs = []
    for key in sorted(set(a) | set(b)):
        va, vb = a.get(key), b.get(key)
        if key == "forward" and not prefix:
            va, vb = va or {}, vb or {}
        if va == vb:
            continue
        if key == "forward" and not prefix:
            # one item for the forward settings, not one per field
            sa, sb = describe_forward(va), describe_forward(vb)
            if sa == sb:
                keys = sorted(k for k in set(va) | set(vb) if va.get(k) != vb.get(k))
                diffs.append(f"forward settings differ in {', '.join(keys)}")
            else:
                diffs.append(f"forward: {sa} vs {sb}")
        elif isinstance(va, dict) and isinstance(vb, dict):
            diffs += _diff_items(va, vb, f"{prefix}{key}.")
        else:
            diffs.append(f"{prefix}{key}: {_short(va)} vs {_short(vb)}")
    return diffs


def _run_pool(out, config, todo, n_jobs, bar):
    ctx = mp.get_context("spawn")
    manager = ctx.Manager()
    queue = manager.Queue()
    try:
        with ProcessPoolExecutor(
            max_workers=min(n_jobs, len(todo)), mp_context=ctx
        ) as pool:
            futures = {
                pool.submit(_write_shard, str(out), config.to_dict(), s, queue)
                for s in todo
            }
            while futures:
                done, futures = wait(futures, timeout=0.5, return_when=FIRST_COMPLETED)
                while not queue.empty():
                    bar.update(queue.get())
                for fut in done:
                    fut.result()  # re-raise a worker's error
            while not queue.empty():
                bar.update(queue.get())
    finally:
        manager.shutdown()


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError(
            "scheduler needs dask.distributed, which is not installed; install "
            "it with `pip install 'lfp_surrogate[dask]'` (or `pip install "
            '"dask[distributed]"`), or leave scheduler unset for the local '
            "process pool"
        ) from None
    return distributed


@contextlib.contextmanager
def _dask_client(scheduler, n_jobs: int):
    """Yield a ``distributed.Client`` for ``scheduler`` (None: yield None).

    A client we open (from an address, or on a local cluster we start) is
    closed on exit; a client given by the caller is left open.
    """
    if scheduler is None:
        yield None
        return
    distributed = _import_distributed()
    if isinstance(scheduler, distributed.Client):
        yield scheduler
        return
    check_type(scheduler, str, "scheduler", "a Dask client, an address or 'local'")
    if scheduler == LOCAL_SCHEDULER:
        logger.info(
            "Starting a local Dask cluster of %d worker process(es), one thread each",
            n_jobs,
        )
        with (
            distributed.LocalCluster(
                n_workers=n_jobs,
                threads_per_worker=1,
                processes=True,
                dashboard_address=None,
            ) as cluster,
            distributed.Client(cluster) as client,
        ):
            yield client
        return
    try:
        # timeout: Dask's distributed.comm.timeouts.connect (30 s by default)
        client = distributed.Client(scheduler)
    except (OSError, ValueError, TypeError) as err:
        raise ValueError(
            f"scheduler: cannot reach a Dask scheduler at {scheduler!r} ({err}); "
            f"give the address printed by `dask scheduler` (e.g. "
            f"tcp://host:8786) or 'local' to start a cluster here"
        ) from None
    with client:
        yield client


def _describe_cluster(client) -> str:
    """``"the Dask cluster at ADDR (N workers, T threads)"``."""
    workers = client.scheduler_info().get("workers", {})
    threads = sum(int(w.get("nthreads", 1)) for w in workers.values())
    return (
        f"the Dask cluster at {client.scheduler.address} ({len(workers)} "
        f"worker(s), {threads} thread(s))"
    )


def _run_dask(out, config, todo, client, bar):
    """Simulate the shards ``todo`` as Dask tasks, one per shard."""
    from distributed import as_completed

    config_dict = config.to_dict()
    # keys unique to this run: a resumed run never waits on a dead run's task
    token = uuid.uuid4().hex[:8]
    futures = {
        client.submit(
            _dask_shard,
            str(out),
            config_dict,
            shard,
            key=f"lfp-surrogate-shard-{shard:05d}-{token}",
        ): shard
        for shard in todo
    }
    try:
        for future in as_completed(futures):
            future.result()  # re-raise a worker's error
            shard = futures[future]
            logger.debug("shard %d written on the Dask cluster", shard)
            bar.update(len(config.shard_sims(shard)) * config.simulation.duration)
    finally:
        # on an error or an interrupt, stop what has not started
        client.cancel(list(futures))


def _dask_shard(out: str, config_dict: dict, shard: int) -> str:
    """One Dask task: write one shard, one simulation per process at a time."""
    with _NEURON_LOCK:
        return _write_shard(out, config_dict, shard, None)


def _simulator(sim_cfg, forward: dict):
    """The worker's simulator (and forward model), built once per settings."""
    from ..simulate import Simulator

    key = repr((sim_cfg, forward))
    if _WORKER.get("key") != key:
        # the forward signals come from NEURON's own i_membrane_
        record = sim_cfg.replace(record_imem=sim_cfg.record_imem or bool(forward))
        sim = Simulator(record)
        fwd = None
        if forward:
            from ..forward import ForwardConfig, ForwardModel

            fwd = ForwardModel(sim.geometry, ForwardConfig.from_dict(forward))
        _WORKER.update(sim=sim, fwd=fwd, key=key)
    return _WORKER["sim"], _WORKER["fwd"]


def _write_shard(out: str, config_dict: dict, shard: int, report) -> str:
    """Simulate the simulations of one shard and write it atomically."""
    from ..inputs import generate_inputs, simulation_seeds
    from ..simulate import bin_times

    config = DatasetConfig.from_dict(config_dict)
    cfg = config.simulation
    sim, fwd = _simulator(cfg, config.forward)
    sims = config.shard_sims(shard)
    seeds = simulation_seeds(config.seed, config.n_sims)
    final = shard_path(out, shard)
    tmp = Path(out) / f".shard-{shard:05d}.h5.{os.getpid()}.tmp"
    attrs = dict(
        cell=cfg.cell,
        cell_hash=sim.geometry.cell_hash,
        dt=cfg.dt,
        interval=cfg.interval,
        duration=cfg.duration,
        reduce=cfg.reduce,
        seed=config.seed,
        shard=shard,
        n_sims_total=config.n_sims,
        simulation=cfg.to_dict(),
        input_statistics=config.inputs.to_dict(),
        forward=dict(config.forward),
        versions=package_versions(),
    )
    writer = ShardWriter(
        tmp,
        len(sims),
        sim.geometry,
        attrs,
        cfg.n_times,
        bin_times(cfg),
        record_imem=cfg.record_imem,
        signals=signal_specs(fwd) if fwd is not None else None,
        imem_operator=sim.cell.imem_operator(),
    )
    try:
        for j, i in enumerate(sims):
            spikes = generate_inputs(
                sim.geometry, cfg.duration, seeds[i], config.inputs
            )
            writer.write_input(j, i, spikes)

            def sink(k0, vmem, imem, j=j):
                # signals from float64 bin-mean imem: the operators are
                # linear, so this equals the bin mean of per-step signals
                signals = compute_signals(fwd, imem) if fwd is not None else None
                writer.write_bins(j, k0, vmem, imem, signals)
                _report(report, vmem.shape[1] * cfg.interval)

            result = sim.run(spikes, config.inputs, sink=sink)
            writer.write_spikes(j, result.soma_spikes)
        writer.close()
    except BaseException:
        writer.abort()
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, final)
    return str(final)


def _report(report, value):
    if report is None:
        return
    if callable(report):
        report(value)
    else:
        report.put(value)


def _check_consistent(out: Path, config: DatasetConfig):
    """All shards present, complete and made for the same cell."""
    hashes = set()
    for s in range(config.n_shards):
        path = shard_path(out, s)
        if not path.exists():
            raise RuntimeError(f"shard {path} is missing after generation")
        with open_shard(path) as f:
            hashes.add(f.attrs["cell_hash"])
    if len(hashes) > 1:
        raise RuntimeError(
            f"the shards of {out} were made for different cells (hashes "
            f"{sorted(hashes)}); regenerate with --force"
        )


def remove_dataset(out) -> None:
    """Delete our files in a dataset folder (and the folder if then empty)."""
    out = Path(out)
    for path in _own_files(out):
        path.unlink()
    if out.is_dir() and not any(out.iterdir()):
        shutil.rmtree(out)
