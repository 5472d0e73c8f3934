"""Held-out evaluation and the linear baseline, on the small cell."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pytest
import torch
from conftest import requires_neuron
from numpy.testing import assert_allclose, assert_array_equal

from lfp_surrogate.cli import main
from lfp_surrogate.data import (
    DatasetConfig,
    generate_dataset,
    open_shard,
    read_cell,
    read_soma_spikes,
    soma_spike_bins,
)
from lfp_surrogate.inputs import InputStatistics
from lfp_surrogate.metrics import (
    DEFAULT_EVAL_SPAN,
    evaluate,
    per_channel,
    save_report,
    spike_auc,
    tpr_at_fpr,
)
from lfp_surrogate.metrics._evaluate import _evaluate_arrays
from lfp_surrogate.models import (
    LinearBaseline,
    LinearReadout,
    ModelConfig,
    build_model,
    predict_stream,
)
from lfp_surrogate.simulate import SimulationConfig
from lfp_surrogate.train import TrainConfig, load_model, train

TINY = dict(widths=16, dilations=(1, 2, 4), tower_width=8, expert_width=8, n_experts=3)
# float32 network output: a few ulps of values of order 1
ATOL32 = 1e-5
# sums of float64 products pooled over simulations against a direct formula
RTOL64 = 1e-9


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread (and the 2 cores are shared)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def datasets(tmp_path_factory):
    """Training data (4 x 400 ms) and held-out data (2 x 400 ms, another seed)."""
    root = tmp_path_factory.mktemp("evaluate")
    out = {}
    for name, seed, n_sims in (("train", 3, 4), ("test", 11, 2)):
        config = DatasetConfig(
            SimulationConfig(cell="ball_and_stick", duration=400.0),
            inputs=InputStatistics(exc_rate=6.0, inh_rate=2.0),
            n_sims=n_sims,
            seed=seed,
        )
        generate_dataset(root / name, config, n_jobs=1)
        out[name] = root / name
    return out


@pytest.fixture(scope="module")
def models(datasets, tmp_path_factory):
    """A tiny MH surrogate and the linear baseline, one epoch each."""
    cfg = TrainConfig(window=100, batch_size=4, max_epochs=1, val_fraction=0.25)
    out = {}
    for arch in ("mh", "linear"):
        out[arch] = tmp_path_factory.mktemp(arch)
        train(
            datasets["train"],
            out[arch],
            arch=arch,
            model_overrides=TINY,
            config=cfg,
            verbose=False,
        )
    return out


@pytest.fixture(scope="module")
def report(models, datasets):
    return evaluate(
        models["mh"],
        datasets["test"],
        baseline=models["linear"],
        n_boot=50,
        batch=2,
        chunk=64,
        verbose=False,
    )


def _truth(folder):
    """Geometry, operator and (vmem, soma spike times) of every simulation."""
    sims = []
    for path in sorted(folder.glob("shard-*.h5")):
        with open_shard(path) as f:
            geometry, operator = read_cell(f)
            for j in range(f["vmem"].shape[0]):
                sims.append((f["vmem"][j].astype(np.float64), read_soma_spikes(f, j)))
    return geometry, operator, sims


HEADLINE = [
    "vmem_rmse",
    "vmem_mae",
    "vmem_explained_variance",
    "vmem_correlation",
    "soma_rmse",
    "soma_clipped_rmse",
    "dv_rmse",
    "dv_relative_rmse",
    "spike_auc",
    "spike_tpr_at_fpr_0.25%",
    "spike_tpr_at_fpr_1%",
    "spike_recall",
    "imem_relative_rmse",
    "imem_correlation_lowpass",
    "dipole_x_correlation",
    "dipole_y_relative_rmse_lowpass",
    "lfp_relative_rmse",
    "lfp_correlation_lowpass",
]


@pytest.mark.neuron
@requires_neuron
def test_evaluation_runs_with_finite_numbers(report):
    json.dumps(report, allow_nan=False)
    assert report["data"]["n_sims"] == 2
    assert report["settings"]["n_true_spikes"] > 0, "held-out data must spike"
    for name in ("model", "baseline"):
        metrics = report["metrics"][name]
        for key in HEADLINE:
            entry = metrics[key]
            assert np.isfinite(entry["value"]), f"{name} {key} is not finite"
            low, high = entry["ci"]
            assert low <= high, f"{name} {key} interval {entry['ci']}"
            assert len(entry["per_sim"]) == 2
        for region in ("soma", "apical_trunk", "tuft"):
            assert np.isfinite(metrics[f"vmem_rmse[{region}]"]["value"]), region
    # the ball and stick lies in the x-y plane: no dipole along z to correlate
    assert report["metrics"]["model"]["dipole_z_correlation"]["value"] is None
    for key in HEADLINE:
        paired = report["paired"][key]
        model = report["metrics"]["model"][key]["value"]
        base = report["metrics"]["baseline"][key]["value"]
        assert_allclose(
            paired["difference"],
            model - base,
            rtol=1e-12,
            atol=1e-12,
            err_msg=f"paired difference of {key} is model minus baseline",
        )
    assert report["baseline"]["arch"] == "linear"
    assert report["settings"]["burn_bins"] == 29


@pytest.mark.neuron
@requires_neuron
def test_fixed_probe_covers_the_span(report):
    settings = report["settings"]
    assert settings["n_contacts"] == 142, "Neuropixels rows every 20 µm, 2 per row"
    assert_allclose(
        settings["contact_y_range"],
        DEFAULT_EVAL_SPAN,
        rtol=0,
        atol=1e-9,
        err_msg="scored contacts cover -200..1200 µm along the apical axis",
    )
    contacts = report["detail"]["model"]["lfp_per_contact"]
    distance = np.array(contacts["distance"])
    assert distance.min() == pytest.approx(np.hypot(50.0, 8.0), abs=1e-6)
    assert len(contacts["correlation_lowpass"]) == 142
    by_distance = [k for k in report["metrics"]["model"] if "um]" in k]
    assert "lfp_correlation_lowpass[0-100 um]" in by_distance


@pytest.mark.neuron
@requires_neuron
def test_perfect_prediction_scores_perfectly(datasets):
    geometry, operator, truth = _truth(datasets["test"])
    sims = []
    for vmem, spikes in truth:
        # a sure spike where NEURON spiked, a sure silence elsewhere
        logit = np.where(soma_spike_bins(spikes, vmem.shape[1]) > 0, 20.0, -20.0)
        sims.append((vmem, spikes, {"model": (vmem.copy(), logit)}))
    out = _evaluate_arrays(geometry, operator, sims, burn=10, n_boot=20)
    m = {k: v["value"] for k, v in out["metrics"]["model"].items()}
    for key in ("vmem_rmse", "vmem_mae", "soma_clipped_rmse", "dv_rmse"):
        assert m[key] == 0.0, f"{key} of the truth itself"
    for key in ("imem_relative_rmse", "lfp_relative_rmse_lowpass"):
        assert m[key] == 0.0, f"{key} of the truth itself"
    for key in (
        "vmem_correlation",
        "vmem_explained_variance",
        "imem_correlation",
        "dipole_x_correlation",
        "dipole_y_correlation_lowpass",
        "lfp_correlation",
        "lfp_correlation_lowpass",
        "spike_auc",
        "spike_tpr_at_fpr_0.25%",
        "spike_tpr_at_fpr_1%",
        "spike_precision",
        "spike_recall",
    ):
        assert_allclose(m[key], 1.0, rtol=1e-12, atol=0, err_msg=key)


@pytest.mark.neuron
@requires_neuron
@pytest.mark.parametrize("seed", [0, 1])
def test_pooled_statistics_equal_direct_formulas(datasets, seed):
    """Sums per simulation, pooled, equal the metrics of concatenated arrays."""
    rng = np.random.default_rng(seed)
    geometry, operator, truth = _truth(datasets["test"])
    burn = 7
    sims, preds, trues, logits, targets = [], [], [], [], []
    for vmem, spikes in truth:
        pred = vmem + rng.normal(0.0, 2.0, vmem.shape) + rng.normal(0, 1.0)
        target = soma_spike_bins(spikes, vmem.shape[1]) > 0
        logit = 2.0 * target + rng.normal(size=vmem.shape[1])
        sims.append((vmem, spikes, {"model": (pred, logit)}))
        preds.append(pred[:, burn:])
        trues.append(vmem[:, burn:])
        logits.append(logit[burn:])
        targets.append(target[burn:])
    out = _evaluate_arrays(geometry, operator, sims, burn=burn, n_boot=10, seed=seed)
    direct = per_channel(np.concatenate(preds, 1), np.concatenate(trues, 1))
    got = out["detail"]["model"]["vmem_per_segment"]
    for key in ("rmse", "mae", "explained_variance", "correlation"):
        assert_allclose(got[key], direct[key], rtol=RTOL64, err_msg=f"pooled {key}")
    imem = per_channel(
        operator.apply(np.concatenate(preds, 1)),
        operator.apply(np.concatenate(trues, 1)),
    )
    assert_allclose(
        out["detail"]["model"]["imem_per_segment"]["relative_rmse"],
        imem["relative_rmse"],
        rtol=RTOL64,
        err_msg="pooled imem relative RMSE",
    )
    metrics = out["metrics"]["model"]
    p, t = np.concatenate(logits), np.concatenate(targets)
    assert_allclose(
        metrics["spike_auc"]["value"], spike_auc(p, t), rtol=1e-12, err_msg="AUC"
    )
    for fpr, key in ((0.0025, "spike_tpr_at_fpr_0.25%"), (0.01, "spike_tpr_at_fpr_1%")):
        assert_allclose(
            metrics[key]["value"], tpr_at_fpr(p, t, fpr), rtol=1e-12, err_msg=key
        )
    assert_allclose(
        metrics["spike_auc"]["per_sim"],
        [spike_auc(a, b) for a, b in zip(logits, targets)],
        rtol=1e-12,
        err_msg="AUC of each simulation alone",
    )


@pytest.mark.neuron
@requires_neuron
def test_training_inputs_are_refused(models, datasets):
    with pytest.raises(
        ValueError, match=r"4 of 4 simulations .* the model was trained or validated"
    ):
        evaluate(models["mh"], datasets["train"], n_boot=10, verbose=False)
    # the baseline's training inputs are refused too
    with pytest.raises(ValueError, match=r"the baseline was trained or validated"):
        evaluate(
            models["mh"],
            datasets["test"],
            baseline=_with_hashes(models["linear"], datasets["test"]),
            n_boot=10,
            verbose=False,
        )


def _with_hashes(folder, data):
    """A SavedModel whose card claims the inputs of ``data`` as training inputs."""
    saved = load_model(folder)
    hashes = []
    for path in sorted(data.glob("shard-*.h5")):
        with open_shard(path) as f:
            hashes.extend(h.decode() for h in f["input_hash"][:])
    saved.card["training_input_hashes"] = hashes
    return saved


@pytest.mark.neuron
@requires_neuron
def test_wrong_cell_is_refused(models, datasets, tmp_path):
    data = tmp_path / "other"
    shutil.copytree(datasets["test"], data)
    for path in data.glob("shard-*.h5"):
        with h5py.File(path, "r+") as f:
            f.attrs["cell_hash"] = "0123456789abcdef"
    with pytest.raises(
        ValueError,
        match=r"cell 'ball_and_stick' \(hash 0123456789abcdef\), but the model was "
        r"trained for cell 'ball_and_stick'",
    ):
        evaluate(models["mh"], data, n_boot=10, verbose=False)


@pytest.mark.neuron
@requires_neuron
def test_probe_span_without_contacts_is_refused(models, datasets):
    with pytest.raises(ValueError, match="probe_span must hold some contacts"):
        evaluate(
            models["mh"], datasets["test"], probe_span=(5000.0, 6000.0), verbose=False
        )


@pytest.mark.neuron
@requires_neuron
@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(probe_span=(1200.0, -200.0)), r"probe_span must be two numbers"),
        (dict(spike_threshold=1.5), r"spike_threshold must be a probability"),
        (dict(burn=395), r"longer than the dropped receptive field \(395 bins\)"),
    ],
)
def test_scoring_errors(datasets, kwargs, match):
    geometry, operator, truth = _truth(datasets["test"])
    sims = [(v, s, {"model": (v, np.zeros(v.shape[1]))}) for v, s in truth]
    with pytest.raises(ValueError, match=match):
        _evaluate_arrays(geometry, operator, sims, n_boot=5, **kwargs)


@pytest.mark.neuron
@requires_neuron
def test_missing_data_and_existing_report_are_refused(models, report, tmp_path):
    with pytest.raises(FileNotFoundError, match="data: no shards"):
        evaluate(models["mh"], tmp_path, verbose=False)
    path = save_report(report, tmp_path / "report.json")
    with pytest.raises(FileExistsError, match="exists; pass --force"):
        save_report(report, path)
    save_report(report, path, overwrite=True)
    assert json.loads(path.read_text())["metrics"] == report["metrics"]


@pytest.mark.neuron
@requires_neuron
def test_cli_evaluate_writes_report_and_refuses_overwrite(
    models, datasets, tmp_path, capsys
):
    out = tmp_path / "report.json"
    args = [
        "-q",
        "evaluate",
        "--model",
        str(models["mh"]),
        "--data",
        str(datasets["test"]),
        "--baseline",
        str(models["linear"]),
        "--out",
        str(out),
        "--n-boot",
        "20",
    ]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "soma spike AUC" in text and "model - baseline" in text
    report = json.loads(out.read_text())
    assert report["kind"] == "lfp_surrogate.evaluation"
    assert report["settings"]["n_boot"] == 20
    assert main(args) == 2
    assert "exists; pass --force" in capsys.readouterr().err


# -- the linear baseline --------------------------------------------------------


def linear_config(**changes) -> ModelConfig:
    """12 segments, rank 8, kernel of 29 bins (the receptive field of TINY)."""
    kwargs = dict(n_seg=12, arch="linear", widths=8, dilations=(1, 2, 4))
    kwargs.update(changes)
    return ModelConfig(**kwargs)


def make_linear(seed: int) -> LinearBaseline:
    """A linear baseline whose own-input kernel is not zero (as after training)."""
    torch.manual_seed(seed)
    model = build_model(linear_config())
    with torch.no_grad():
        model.local.weight.normal_(0.0, 0.3)
    return model.eval()


def random_counts(seed: int, n_times: int = 90, n_batch: int = 2) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((n_batch, 2, 12, n_times), 0.1), generator=gen)


@pytest.mark.parametrize("seed", [0, 1])
@pytest.mark.parametrize("k", [0, 31, 89])
def test_linear_baseline_is_causal(seed, k):
    model = make_linear(seed)
    counts = random_counts(seed)
    changed = counts.clone()
    changed[:, :, :, k] += 3.0
    with torch.no_grad():
        a, b = model(counts), model(changed)
    assert_array_equal(
        a.vmem[..., :k].numpy(), b.vmem[..., :k].numpy(), err_msg="vmem before k"
    )
    assert_array_equal(
        a.spike_logit[..., :k].numpy(),
        b.spike_logit[..., :k].numpy(),
        err_msg="spike logit before k",
    )
    assert (a.vmem[..., k] != b.vmem[..., k]).any(), "input bin k must reach bin k"


@pytest.mark.parametrize("seed", [0, 3])
def test_linear_baseline_is_linear_and_streams(seed):
    model = make_linear(seed)
    x, y = random_counts(seed), random_counts(seed + 100)
    with torch.no_grad():
        f0 = model(torch.zeros_like(x)).vmem
        fx, fy = model(x).vmem - f0, model(y).vmem - f0
        fxy = model(2.0 * x + y).vmem - f0
    assert_allclose(
        fxy.numpy(), (2.0 * fx + fy).numpy(), rtol=0, atol=1e-4, err_msg="linearity"
    )
    stream = predict_stream(model, x.to_sparse(), chunk=13, verbose=False)
    with torch.no_grad():
        whole = model(x)
    assert_allclose(
        stream.vmem.numpy(), whole.vmem.numpy(), atol=ATOL32, err_msg="streamed vmem"
    )
    assert_allclose(
        stream.spike_logit.numpy(),
        whole.spike_logit.numpy(),
        atol=ATOL32,
        err_msg="streamed spike logit",
    )


def test_linear_baseline_structure_and_config_round_trip():
    model = build_model(linear_config())
    assert isinstance(model, LinearBaseline)
    n, r, k = 12, 8, 29
    assert model.receptive_field == k and model.config.local_kernel == k
    assert model.n_parameters == 2 * n * r + r + r * k + (n + 1) * (r + 1) + 2 * n * k
    wide = build_model(linear_config(dilations=(1, 2, 4, 8, 16, 32)))
    assert wide.receptive_field == 253 and wide.config.local_kernel == 64
    again = build_model(ModelConfig.from_dict(model.config.to_dict()))
    again.load_state_dict(model.state_dict())
    assert again.config == model.config
    with pytest.raises(ValueError, match="config.arch must be 'linear'"):
        LinearBaseline(linear_config(arch="mh"))
    with pytest.raises(ValueError, match="in_width must be the rank widths"):
        LinearReadout.from_config(linear_config(), 5)


@pytest.mark.parametrize("seed", [0, 1])
def test_linear_baseline_trains(seed):
    """Fitting the response of another linear filter lowers the error."""
    teacher = make_linear(seed + 10)
    torch.manual_seed(seed)
    student = build_model(linear_config())
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    losses = []
    for step in range(60):
        counts = random_counts(1000 * seed + step, n_times=60, n_batch=4)
        with torch.no_grad():
            target = teacher(counts).vmem
        loss = torch.nn.functional.mse_loss(student(counts).vmem, target)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.mean(losses[-5:]) < 0.3 * np.mean(losses[:5]), losses[::10]


@pytest.mark.neuron
@requires_neuron
def test_linear_baseline_from_train_round_trips(models):
    saved = load_model(models["linear"])
    assert isinstance(saved.model, LinearBaseline)
    assert saved.card["model_config"]["arch"] == "linear"
    assert np.isfinite(saved.card["training"]["best_val_loss"])
