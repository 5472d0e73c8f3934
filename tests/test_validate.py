"""Validation against NEURON, end to end on the small cell with a tiny model."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch
from conftest import requires_neuron
from numpy.testing import assert_allclose

from lfp_surrogate.inputs import InputStatistics
from lfp_surrogate.predict import predict, read_inputs
from lfp_surrogate.train import load_model
from lfp_surrogate.validate import BANDS, FIGURE_NAMES, OOD_SCENARIOS, validate
from lfp_surrogate.validate._validate import _spectra

pytestmark = requires_neuron

STATS = InputStatistics(exc_rate=6.0, inh_rate=2.0)
PROBE = "Laminar-16-100 position=40,100,0 label=eval"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def run(model, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "validation"
    report = validate(
        model,
        out,
        n_sims=2,
        duration=300.0,
        seed=77,
        probe=PROBE,
        extra_probes=(),
        heads=("four_sphere_lfpy_default",),
        meg=("spherical",),
        ood_n_sims=1,
        ood_duration=300.0,
        n_boot=20,
        n_jobs=1,
        verbose=False,
    )
    return out, report


def test_report_is_written_with_every_section(run):
    out, report = run
    on_disk = json.loads((out / "report.json").read_text())
    assert on_disk["metrics"]["model"]["vmem_rmse"]["value"] == pytest.approx(
        report["metrics"]["model"]["vmem_rmse"]["value"], rel=1e-12
    )
    for key in ("vmem_rmse", "spike_auc", "imem_relative_rmse", "lfp_correlation"):
        entry = on_disk["metrics"]["model"][key]
        assert "ci" in entry and "value" in entry, key
    assert set(on_disk["ood"]) == set(OOD_SCENARIOS)
    for entry in on_disk["ood"].values():
        assert isinstance(entry["breaks_down"], list)
        assert "vmem_rmse" in entry["metrics"]
    wall = on_disk["wall_time"]
    assert wall["neuron_s"] > 0 and wall["surrogate_s"] > 0
    assert_allclose(
        wall["speed_ratio"],
        wall["neuron_s"] / wall["surrogate_s"],
        rtol=1e-12,
        err_msg="speed ratio",
    )
    assert {"lfp/eval", "dipole", "eeg/four_sphere_lfpy_default"} <= set(
        on_disk["spectra"]
    )
    assert set(on_disk["spectra"]["dipole"]["bands"]) <= set(BANDS)
    for name in FIGURE_NAMES:
        if name in on_disk["figures"]:
            assert (out / on_disk["figures"][name]).stat().st_size > 10_000, name
    assert "voltage_traces" in on_disk["figures"]
    assert "wall time NEURON / surrogate" in (out / "report.txt").read_text()
    assert not out.with_name(out.name + ".partial").exists()


def test_surrogate_files_are_the_prediction_of_the_neuron_inputs(run, model):
    out, _ = run
    saved = load_model(model)
    shard = sorted((out / "neuron").glob("shard-*.h5"))[0]
    inputs = read_inputs(shard, saved.geometry)
    pred = predict(saved, inputs, check_inputs=False, verbose=False)
    with h5py.File(out / "surrogate" / shard.name) as f:
        assert_allclose(
            f["vmem"][:], pred.vmem, rtol=0, atol=0, err_msg="stored prediction (mV)"
        )
    # the metric is the pooled RMSE against NEURON after the burn-in
    with h5py.File(shard) as f:
        assert f.attrs["seed"] == 77


def test_spectra_of_a_signal_against_itself(run):
    """Power ratio 1 and coherence 1 in every band when both sides agree."""
    out, _ = run
    spectra = _spectra(out / "neuron", out / "neuron", ["dipole", "lfp/eval"], burn=0)
    for name, entry in spectra.items():
        for band, values in entry["bands"].items():
            assert_allclose(
                values["power_ratio"], 1.0, rtol=1e-12, err_msg=f"{name} {band}"
            )
            assert_allclose(
                values["coherence"], 1.0, rtol=1e-9, err_msg=f"{name} {band}"
            )


def test_existing_output_is_refused_and_kept(run, model):
    out, _ = run
    before = (out / "report.json").read_bytes()
    with pytest.raises(FileExistsError, match="pass --force"):
        validate(model, out, n_sims=1, duration=100.0, seed=3, verbose=False)
    assert (out / "report.json").read_bytes() == before


def test_training_inputs_are_refused(model, tmp_path):
    with pytest.raises(ValueError, match="trained on"):
        validate(
            model,
            tmp_path / "v",
            n_sims=1,
            duration=300.0,
            seed=5,
            stats=STATS,
            verbose=False,
        )
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_sims=0), "n_sims"),
        (dict(duration=-1.0), "duration"),
        (dict(n_boot=0), "n_boot"),
    ],
)
def test_bad_arguments(model, tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        validate(model, tmp_path / "v", **kwargs)
    assert np.all([not p.exists() for p in (tmp_path / "v",)])
