"""Training end to end on the small cell: fit, save, load, resume, refuse."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from conftest import requires_neuron

from lfp_surrogate.data import (
    DatasetConfig,
    WindowDataset,
    generate_dataset,
    soma_spike_bins,
)
from lfp_surrogate.inputs import InputStatistics
from lfp_surrogate.simulate import SimulationConfig
from lfp_surrogate.train import TrainConfig, load_model, train

pytestmark = [pytest.mark.neuron, requires_neuron]

TINY = dict(widths=16, dilations=(1, 2, 4), tower_width=8, expert_width=8, n_experts=3)


@pytest.fixture(scope="module")
def small_data(tmp_path_factory):
    out = tmp_path_factory.mktemp("train") / "data"
    config = DatasetConfig(
        SimulationConfig(cell="ball_and_stick", duration=600.0),
        inputs=InputStatistics(exc_rate=6.0, inh_rate=2.0),
        n_sims=4,
        seed=3,
    )
    generate_dataset(out, config, n_jobs=1)
    return out


@pytest.fixture(scope="module")
def trained(small_data, tmp_path_factory):
    out = tmp_path_factory.mktemp("model")
    cfg = TrainConfig(window=100, batch_size=4, max_epochs=2, val_fraction=0.25)
    train(small_data, out, arch="mmoeex", model_overrides=TINY, config=cfg)
    return out


def test_soma_spike_bins_convention():
    got = soma_spike_bins([0.2, 1.0, 1.5, 9.99], 5)
    np.testing.assert_array_equal(got, [1, 1, 0, 0, 0])


def test_windows_match_the_shards(small_data):
    ds = WindowDataset(sorted(small_data.glob("shard-*.h5")), 100, stride=50)
    assert len(ds) == 4 * 11
    item = ds[3]
    assert item["counts"].shape == (2, 33, 100)
    assert item["vmem"].shape == (33, 100) and item["spike"].shape == (100,)
    weights = ds.spike_weights(4.0)
    assert set(np.unique(weights)) <= {1.0, 4.0} and weights.max() == 4.0


def test_saved_model_card_and_round_trip(trained, small_data):
    saved = load_model(trained)
    card = json.loads((trained / "model.json").read_text())
    assert card["model_config"]["arch"] == "mmoeex"
    assert card["cell"]["n_seg"] == 33
    assert len(card["training_input_hashes"]) == 4
    assert card["training"]["simulated_seconds"] == pytest.approx(2.4)
    assert (trained / "logs").is_dir() and (trained / "checkpoints").is_dir()
    # the loaded network predicts the same as a second load (pure data)
    again = load_model(trained / "model.json")
    counts = torch.zeros(1, 2, 33, 80)
    counts[0, 0, 5, 10] = 3.0
    with torch.no_grad():
        a, b = saved.model(counts), again.model(counts)
    torch.testing.assert_close(a.vmem, b.vmem, rtol=0, atol=0)
    assert saved.geometry.n_seg == 33 and saved.imem_operator.n_seg == 33


@pytest.mark.parametrize(
    ("arch", "overrides"),
    [
        ("mh", {}),
        ("mh", dict(local_kernel=8)),
        ("mmoe", {}),
        ("mmoeex", {}),
        ("linear", dict(local_kernel=8)),
    ],
)
def test_each_head_learns_the_small_cell(arch, overrides, small_data, tmp_path):
    import csv

    cfg = TrainConfig(
        window=100, batch_size=4, max_epochs=4, val_fraction=0.25, lr=3e-3, patience=4
    )
    train(
        small_data,
        tmp_path,
        arch=arch,
        model_overrides={**TINY, **overrides},
        config=cfg,
    )
    rows = list(csv.DictReader((tmp_path / "logs/version_0/metrics.csv").open()))
    val = [float(r["val_loss"]) for r in rows if r.get("val_loss")]
    assert len(val) == 4 and np.isfinite(val).all()
    # the validation loss (held-out simulations) falls while training
    assert min(val[1:]) < val[0], f"{arch}: validation loss did not fall: {val}"
    assert load_model(tmp_path).model.config.arch == arch


def test_wrong_cell_is_refused(trained):
    with pytest.raises(ValueError, match="was trained for cell 'ball_and_stick'"):
        load_model(trained, cell_hash="0123456789abcdef")


def test_existing_model_is_refused_and_resume_continues(trained, small_data):
    cfg = TrainConfig(window=100, batch_size=4, max_epochs=3, val_fraction=0.25)
    with pytest.raises(FileExistsError, match="already holds a finished model"):
        train(small_data, trained, arch="mmoeex", model_overrides=TINY, config=cfg)
    train(
        small_data,
        trained,
        arch="mmoeex",
        model_overrides=TINY,
        config=cfg,
        resume=True,
    )
    card = json.loads((trained / "model.json").read_text())
    assert card["training"]["epochs"] == 3


def test_models_by_name(trained, tmp_path, monkeypatch):
    import shutil

    from lfp_surrogate.train import resolve_model, shipped_models

    shutil.copytree(trained, tmp_path / "tiny_bas", ignore=lambda d, n: ["logs"])
    monkeypatch.setenv("LFP_SURROGATE_MODEL_PATH", str(tmp_path))
    assert shipped_models()["tiny_bas"] == tmp_path / "tiny_bas"
    assert resolve_model("tiny_bas") == tmp_path / "tiny_bas"
    saved = load_model("tiny_bas")
    assert saved.geometry.name == "ball_and_stick"
    with pytest.raises(FileNotFoundError, match="neither a model folder nor the name"):
        load_model("no_such_model")


def test_load_refuses_foreign_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved surrogate"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{")
    (tmp_path / "model.safetensors").write_bytes(b"")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_model(tmp_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(window=0), "window must be finite and > 0"),
        (dict(val_fraction=1.0), r"val_fraction must be in \(0, 1\)"),
        (dict(accelerator="tpu"), "accelerator must be one of"),
    ],
)
def test_train_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        TrainConfig(**kwargs)
