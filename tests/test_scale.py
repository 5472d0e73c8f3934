"""Scaling out: generation on a Dask cluster, and training with DDP."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from conftest import REPO, requires_neuron

from lfp_surrogate.data import (
    DatasetConfig,
    generate_dataset,
    open_shard,
    shard_path,
)
from lfp_surrogate.inputs import InputStatistics
from lfp_surrogate.simulate import SimulationConfig

pytestmark = [pytest.mark.neuron, requires_neuron]

STATS = InputStatistics(exc_rate=6.0, inh_rate=2.0)
NAMES = (
    "vmem",
    "imem",
    "t",
    "sim_index",
    "input_hash",
    "soma_spikes/t",
    "soma_spikes/ptr",
    "inputs/exc/seg",
    "inputs/exc/t",
    "inputs/inh/seg",
    "inputs/inh/t",
)
N_SIMS, DURATION, SEED = 6, 2000.0, 11


def _config() -> DatasetConfig:
    return DatasetConfig(
        SimulationConfig(cell="ball_and_stick", duration=DURATION),
        inputs=STATS,
        n_sims=N_SIMS,
        seed=SEED,
        sims_per_shard=1,
    )


def _assert_same_dataset(a, b, config: DatasetConfig) -> None:
    for s in range(config.n_shards):
        with open_shard(shard_path(a, s)) as fa, open_shard(shard_path(b, s)) as fb:
            for name in NAMES:
                np.testing.assert_array_equal(
                    fa[name][()], fb[name][()], err_msg=f"shard {s}: {name}"
                )
            assert dict(fa.attrs) == dict(fb.attrs), f"shard {s}: attributes"


@pytest.fixture(scope="module")
def local_reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "data"
    generate_dataset(out, _config(), n_jobs=1, verbose=False)
    return out


@pytest.fixture(scope="module")
def dask_client():
    """A real local Dask cluster: two worker processes, one thread each."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed not installed (the 'dask' extra)"
    )
    with (
        distributed.LocalCluster(
            n_workers=2,
            processes=True,
            threads_per_worker=1,
            dashboard_address=None,
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _wait_until_idle(client, n_workers: int, timeout: float = 120.0) -> None:
    """Wait for ``n_workers`` live workers running no task (dead runs' included)."""
    deadline = time.time() + timeout
    busy = {}
    while time.time() < deadline:
        # a worker that died but is not yet removed answers with an error
        busy = client.run(
            lambda dask_worker: dask_worker.state.executing_count, on_error="return"
        )
        idle = [v for v in busy.values() if v == 0]
        if len(busy) == n_workers and len(idle) == n_workers:
            return
        time.sleep(0.1)
    raise AssertionError(
        f"Dask workers not all alive and idle after {timeout} s: {busy}"
    )


def test_dask_worker_killed_then_resume_equals_local(
    dask_client, local_reference, tmp_path
):
    config = _config()
    out = tmp_path / "dask"
    address = dask_client.scheduler.address
    args = [
        sys.executable,
        "-m",
        "lfp_surrogate.cli",
        "-q",
        "simulate",
        "--cell",
        "ball_and_stick",
        "--n-sims",
        str(N_SIMS),
        "--duration",
        str(DURATION),
        "--seed",
        str(SEED),
        "--exc-rate",
        "6",
        "--inh-rate",
        "2",
        "--scheduler",
        address,
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(args, cwd=REPO, start_new_session=True)
    try:
        deadline = time.time() + 120
        while not any(out.glob("shard-*.h5")) and time.time() < deadline:
            assert proc.poll() is None, "the Dask run ended before its first shard"
            time.sleep(0.05)
        # a worker dies in the middle of a shard, then the whole run dies
        busy = [w for w, keys in dask_client.processing().items() if keys]
        pids = dask_client.run(os.getpid)
        victim = busy[0] if busy else next(iter(pids))
        os.kill(pids[victim], signal.SIGKILL)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = sorted(p.name for p in out.glob("shard-*.h5"))
    assert 1 <= len(done) < N_SIMS, f"kill came too late or too early: {done}"

    # the nanny restarts the dead worker; then resume on the same cluster
    _wait_until_idle(dask_client, 2)
    with pytest.raises(FileExistsError, match="pass --resume to continue"):
        generate_dataset(out, config, scheduler=dask_client, verbose=False)
    generate_dataset(out, config, scheduler=dask_client, resume=True, verbose=False)
    assert not list(out.glob(".shard-*")), "temporary files must be cleaned"
    _assert_same_dataset(local_reference, out, config)


def test_lost_worker_costs_only_its_shards(dask_client, local_reference, tmp_path):
    import threading

    config = _config()
    out = tmp_path / "dask"
    _wait_until_idle(dask_client, 2)
    pids = dask_client.run(os.getpid)
    killed = []

    def kill_one_worker_mid_run():
        deadline = time.time() + 120
        while not any(out.glob("shard-*.h5")) and time.time() < deadline:
            time.sleep(0.05)
        busy = [w for w, keys in dask_client.processing().items() if keys]
        if busy:
            os.kill(pids[busy[0]], signal.SIGKILL)
            killed.append(busy[0])

    killer = threading.Thread(target=kill_one_worker_mid_run)
    killer.start()
    # the scheduler runs the dead worker's shard again elsewhere: no resume needed
    generate_dataset(out, config, scheduler=dask_client, verbose=False)
    killer.join()
    assert killed, "no worker was busy when the first shard appeared"
    assert not list(out.glob(".shard-*")), "temporary files must be cleaned"
    _assert_same_dataset(local_reference, out, config)


def test_unreachable_scheduler_touches_nothing(tmp_path):
    dask = pytest.importorskip("dask", reason="dask.distributed not installed")
    pytest.importorskip("distributed", reason="dask.distributed not installed")
    out = tmp_path / "never"
    with (
        dask.config.set({"distributed.comm.timeouts.connect": "1s"}),
        pytest.raises(ValueError, match="scheduler: cannot reach a Dask scheduler"),
    ):
        generate_dataset(out, _config(), scheduler="tcp://127.0.0.1:9", verbose=False)
    assert not out.exists()


@pytest.fixture(scope="module")
def train_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("ddp") / "data"
    config = DatasetConfig(
        SimulationConfig(cell="ball_and_stick", duration=600.0),
        inputs=STATS,
        n_sims=4,
        seed=3,
    )
    generate_dataset(out, config, n_jobs=1, verbose=False)
    return out


def test_ddp_training_on_two_cpu_processes(train_data, tmp_path):
    import json

    import torch

    from lfp_surrogate.models import predict_stream
    from lfp_surrogate.train import load_model

    out = tmp_path / "model"
    args = [
        sys.executable,
        "-m",
        "lfp_surrogate.cli",
        "train",
        "--data",
        str(train_data),
        "--out",
        str(out),
        "--arch",
        "mh",
        "--width",
        "16",
        "--window",
        "300",
        "--batch-size",
        "4",
        "--max-epochs",
        "2",
        "--accelerator",
        "cpu",
        "--devices",
        "2",
        "--strategy",
        "ddp",
    ]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run(
        args, cwd=REPO, capture_output=True, text=True, timeout=300, env=env
    )
    assert proc.returncode == 0, f"DDP training failed:\n{proc.stdout}\n{proc.stderr}"
    # both processes trained; only the first saved
    assert "Training process 1 of 2 done" in proc.stderr, proc.stderr[-2000:]
    assert proc.stdout.count("model saved to") == 1, proc.stdout
    card = json.loads((out / "model.json").read_text())
    train_cfg = card["training"]["train_config"]
    assert (train_cfg["strategy"], train_cfg["devices"]) == ("ddp", 2)
    assert card["training"]["epochs"] >= 1

    # the saved model loads and predicts, in one call and streamed
    saved = load_model(out)
    rng = np.random.default_rng(0)
    counts = torch.as_tensor(rng.poisson(0.05, (2, 2, 33, 150)), dtype=torch.float32)
    with torch.no_grad():
        full = saved.model(counts)
    assert full.vmem.shape == (2, 33, 150)
    assert torch.isfinite(full.vmem).all(), "predicted vmem must be finite"
    streamed = predict_stream(saved.model, counts, chunk=40, verbose=False)
    torch.testing.assert_close(
        streamed.vmem,
        full.vmem,
        rtol=1e-4,
        atol=1e-4,
        msg="vmem of the DDP-trained model: streamed vs one call",
    )
