"""Datasets: bit-identical across workers and resumes, atomic, validated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from conftest import REPO, requires_mearec, requires_neuron

from lfp_surrogate.data import (
    Dataset,
    DatasetConfig,
    generate_dataset,
    open_shard,
    read_cell,
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
    "inputs/exc/ptr",
    "inputs/inh/seg",
    "inputs/inh/t",
    "inputs/inh/ptr",
)


def _config(n_sims=3, duration=200.0, cell="ball_and_stick", spp=2):
    return DatasetConfig(
        SimulationConfig(cell=cell, duration=duration),
        inputs=STATS,
        n_sims=n_sims,
        seed=7,
        sims_per_shard=spp,
    )


def assert_same_dataset(a, b, config):
    for s in range(config.n_shards):
        with open_shard(shard_path(a, s)) as fa, open_shard(shard_path(b, s)) as fb:
            for name in NAMES:
                np.testing.assert_array_equal(
                    fa[name][()], fb[name][()], err_msg=f"shard {s}: {name}"
                )
            assert dict(fa.attrs) == dict(fb.attrs)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp("ref") / "data"
    generate_dataset(out, _config(), n_jobs=1)
    return out


def test_layout_units_and_attributes(reference):
    ds = Dataset(reference)
    assert ds.n_sims == 3 and ds.n_seg == 33
    with open_shard(shard_path(reference, 0)) as f:
        assert f["vmem"].shape == (2, 33, 200) and f["vmem"].dtype == np.float32
        assert f["vmem"].chunks == (1, 33, 200)
        for name, units in (
            ("vmem", "mV"),
            ("imem", "nA"),
            ("t", "ms"),
            ("inputs/exc/t", "ms"),
            ("soma_spikes/t", "ms"),
        ):
            assert f[name].attrs["units"] == units, name
        for key in (
            "cell",
            "cell_hash",
            "dt",
            "interval",
            "duration",
            "seed",
            "input_statistics",
            "versions",
            "simulation",
        ):
            assert key in f.attrs, key
        assert f.attrs["complete"]
        geometry, operator = read_cell(f)
        # currents derived from the stored float32 voltages match the stored
        # imem within float32 storage precision (DESIGN.md: up to 3e-4)
        vmem = f["vmem"][0].astype(np.float64)
        imem = f["imem"][0]
        err = np.abs(operator.apply(vmem) - imem)[:, 1:].max() / np.abs(imem).max()
        assert err < 3e-4, f"derived imem from float32 files: {err:.2e}"
    spikes = ds.spikes(2)
    assert spikes.input_hash() == ds.input_hashes()[2]
    assert ds.soma_spikes(0).size > 0


def test_same_data_with_two_workers(reference, tmp_path):
    out = tmp_path / "two"
    generate_dataset(out, _config(), n_jobs=2)
    assert_same_dataset(reference, out, _config())


def test_kill_and_resume_gives_the_complete_dataset(tmp_path):
    config = _config(n_sims=4, duration=3000.0, spp=1)
    ref = tmp_path / "ref"
    generate_dataset(ref, config, n_jobs=2)
    out = tmp_path / "killed"
    args = [
        sys.executable,
        "-m",
        "lfp_surrogate.cli",
        "-q",
        "simulate",
        "--cell",
        "ball_and_stick",
        "--n-sims",
        "4",
        "--duration",
        "3000",
        "--seed",
        "7",
        "--exc-rate",
        "6",
        "--inh-rate",
        "2",
        "--n-jobs",
        "1",
        "--out",
        str(out),
    ]
    proc = subprocess.Popen(args, cwd=REPO, start_new_session=True)
    deadline = time.time() + 120
    while not shard_path(out, 0).exists() and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = sorted(p.name for p in out.glob("shard-*.h5"))
    assert 1 <= len(done) < 4, f"kill came too late or too early: {done}"
    # the killed run's partial shard is never mistaken for a complete one
    with pytest.raises(FileExistsError, match="pass --resume to continue"):
        generate_dataset(out, config, n_jobs=1)
    generate_dataset(out, config, n_jobs=2, resume=True)
    assert not list(out.glob(".shard-*")), "temporary files must be cleaned"
    assert_same_dataset(ref, out, config)


def test_other_settings_are_refused_and_force_keeps_user_files(reference, tmp_path):
    out = tmp_path / "data"
    generate_dataset(out, _config(n_sims=1), n_jobs=1)
    (out / "notes.txt").write_text("mine")
    other = _config(n_sims=2)
    with pytest.raises(FileExistsError, match="made with other settings"):
        generate_dataset(out, other, n_jobs=1)
    with pytest.raises(ValueError, match=r"cannot resume .*n_sims: 1 vs 2"):
        generate_dataset(out, other, n_jobs=1, resume=True)
    generate_dataset(out, other, n_jobs=1, force=True)
    assert (out / "notes.txt").read_text() == "mine"
    assert Dataset(out).n_sims == 2


def test_foreign_folder_is_refused(tmp_path):
    (tmp_path / "x.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match="is not empty and holds no dataset"):
        generate_dataset(tmp_path, _config(n_sims=1), n_jobs=1)


def test_truncated_and_foreign_files(reference, tmp_path):
    path = tmp_path / "trunc.h5"
    data = shard_path(reference, 0).read_bytes()
    path.write_bytes(data[: len(data) // 3])
    with pytest.raises(ValueError, match="not a readable HDF5 file"):
        open_shard(path)
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["vmem"] = np.zeros(3)
    with pytest.raises(ValueError, match="attribute 'kind' is missing"):
        open_shard(foreign)
    missing = tmp_path / "incomplete"
    missing.mkdir()
    _config().save(missing)
    with pytest.raises(ValueError, match=r"is incomplete: 2 of 2 shards missing"):
        Dataset(missing)


@requires_mearec
@pytest.mark.slow
def test_l5_ttpc1_dataset_identical_with_one_and_two_workers(tmp_path):
    """The default cell: 913 segments, same data with 1 and 2 workers, and
    derived currents equal NEURON's i_membrane_ in float32 storage precision."""
    config = DatasetConfig(
        SimulationConfig(cell="l5_ttpc1", duration=200.0, warmup=200.0),
        n_sims=2,
        seed=1,
        sims_per_shard=1,
    )
    generate_dataset(tmp_path / "two", config, n_jobs=2)
    with open_shard(shard_path(tmp_path / "two", 0)) as f:
        assert f["vmem"].shape == (1, 913, 200)
    # 1 worker in a fresh process (the Blue Brain template owns NEURON)
    code = (
        "import sys; from lfp_surrogate.data import DatasetConfig, "
        "generate_dataset; generate_dataset(sys.argv[1], "
        "DatasetConfig.load(sys.argv[2]), n_jobs=1)"
    )
    subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "one"), str(tmp_path / "two")],
        check=True,
        cwd=REPO,
    )
    assert_same_dataset(tmp_path / "two", tmp_path / "one", config)


def test_resume_of_a_complete_dataset_has_nothing_to_do(tmp_path, caplog):
    out = tmp_path / "data"
    config = _config(n_sims=2, duration=20.0, spp=1)
    generate_dataset(out, config, n_jobs=1)
    before = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.h5")}
    with caplog.at_level("INFO", logger="lfp_surrogate"):
        assert generate_dataset(out, config, n_jobs=2, resume=True) == out
    assert "All 2 shard(s) of" in caplog.text and "nothing to do" in caplog.text
    assert {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.h5")} == before


@pytest.mark.parametrize(
    ("forward", "error", "match"),
    [
        (
            {"probes": [{"probe": "Laminar-16-10"}]},
            ValueError,
            r"probe must be a known probe name .* Known probes: .*Laminar-16-100",
        ),
        (
            {"probes": [{"probe": "missing/probe.yaml"}]},
            FileNotFoundError,
            r"no such probe file: missing/probe\.yaml",
        ),
        (
            {"heads": ["nosuch"]},
            ValueError,
            r"heads must be a known head-model name or a YAML path, got 'nosuch'",
        ),
        ({"meg": ["bogus"]}, ValueError, r"meg must be one of"),
    ],
)
def test_bad_forward_settings_touch_nothing(forward, error, match, tmp_path):
    out = tmp_path / "data"
    config = _config(n_sims=1, duration=20.0)
    generate_dataset(out, config, n_jobs=1)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    bad = DatasetConfig(config.simulation, n_sims=1, forward=forward)
    with pytest.raises(error, match=match):
        generate_dataset(out, bad, n_jobs=1, force=True)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    fresh = tmp_path / "fresh"
    with pytest.raises(error, match=match):
        generate_dataset(fresh, bad, n_jobs=1)
    assert not fresh.exists()


@pytest.mark.parametrize("user_file", [False, True])
def test_failed_first_run_leaves_no_configuration(user_file, tmp_path, monkeypatch):
    from lfp_surrogate.data import _generate

    def fail(*args, **kwargs):
        raise RuntimeError("the simulation failed")

    out = tmp_path / "data"
    if user_file:
        out.mkdir()
        (out / "notes.txt").write_text("mine")
    monkeypatch.setattr(_generate, "_write_shard", fail)
    with pytest.raises(RuntimeError, match="the simulation failed"):
        generate_dataset(out, _config(n_sims=1, duration=20.0), n_jobs=1, force=True)
    if user_file:
        assert [p.name for p in out.iterdir()] == ["notes.txt"]
    else:
        assert not out.exists(), "a folder made by the failed run is removed"
