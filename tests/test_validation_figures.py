"""Validation figures: a ground-truth shard against a perturbed "prediction"."""

from __future__ import annotations

import json
import logging
import shutil

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
pytest.importorskip("matplotlib")

try:
    from lfp_surrogate.validate import per_segment_rmse, validation_figures
except ImportError:  # the package's __init__ may not re-export them yet
    from lfp_surrogate.validate._figures import per_segment_rmse, validation_figures

from lfp_surrogate.validate._figures import FIGURE_NAMES  # noqa: E402

DURATION = 300  # ms
PROBE = "Laminar-16-100"
HEAD = "four_sphere_lfpy_default"


def _perturbation(geometry, t, seed):
    """A known voltage error (mV): grows with distance, a phase per segment."""
    rng = np.random.default_rng(seed)
    dist = np.linalg.norm(geometry.mid - geometry.mid[0], axis=1)
    amp = 0.2 + 1.5 * dist / dist.max()
    phase = rng.uniform(0, 2 * np.pi, geometry.n_seg)
    delta = amp[:, None] * np.sin(2 * np.pi * t[None] / 37.0 + phase[:, None])
    return delta + 0.1 * amp[:, None]  # (n_seg, n_times)


def _make_prediction(truth, path, seed=0):
    """Copy the shard, perturb vmem (kept float64) and recompute the signals."""
    from lfp_surrogate.data import compute_signals, read_cell
    from lfp_surrogate.forward import ForwardConfig, ForwardModel

    shutil.copy(truth, path)
    with h5py.File(path, "r+") as f:
        geometry, operator = read_cell(f)
        fwd = ForwardModel(
            geometry, ForwardConfig.from_dict(json.loads(f.attrs["forward"]))
        )
        t = f["t"][:]
        delta = _perturbation(geometry, t, seed)
        vmem = f["vmem"][0].astype(np.float64) + delta
        del f["vmem"]
        f.create_dataset("vmem", data=vmem[None])
        imem = operator.apply(vmem)
        f["imem"][0] = imem
        for name, value in compute_signals(fwd, imem).items():
            f[name][0] = value
        spikes = f["soma_spikes/t"][:]
        prob = np.zeros(t.size)
        for s in spikes:
            prob = np.maximum(prob, 0.9 * np.exp(-0.5 * ((t - s) / 1.5) ** 2))
        f.create_dataset("soma_spike_prob", data=prob[None])
    return delta


@pytest.fixture(scope="module")
def shard_pair(tmp_path_factory):
    """A small ground-truth shard with LFP, CSD, dipole, EEG and MEG, and a
    prediction that differs from it by a known voltage error."""
    pytest.importorskip("neuron", reason="NEURON not installed")
    from lfp_surrogate.cli import main

    root = tmp_path_factory.mktemp("validation_figures")
    argv = ["-q", "simulate", "--cell", "ball_and_stick", "--n-sims", "1"]
    argv += ["--duration", str(DURATION), "--exc-rate", "6", "--inh-rate", "2"]
    argv += ["--n-jobs", "1", "--probe", f"{PROBE} position=40,300,0"]
    argv += ["--head", HEAD, "--meg", "spherical", "--out", str(root / "data")]
    assert main(argv) == 0
    truth = root / "data" / "shard-00000.h5"
    prediction = root / "prediction.h5"
    delta = _make_prediction(truth, prediction)
    return truth, prediction, delta


@pytest.fixture(scope="module")
def rendered(shard_pair, tmp_path_factory):
    truth, prediction, _ = shard_pair
    out = tmp_path_factory.mktemp("figures")
    paths = validation_figures(truth, prediction, out / "figs", formats=("png", "pdf"))
    return paths, out / "figs"


@pytest.mark.neuron
def test_every_figure_is_written(rendered):
    paths, out = rendered
    assert tuple(paths) == FIGURE_NAMES, "one figure per name, in order"
    for name, path in paths.items():
        assert path == out / f"{name}.png"
        assert path.is_file(), f"{name} was not written"
        assert path.stat().st_size > 20_000, f"{name} is nearly empty"
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n", f"{name} is not a PNG"
        pdf = out / f"{name}.pdf"
        assert pdf.stat().st_size > 10_000, f"{name}.pdf is nearly empty"


@pytest.mark.neuron
def test_per_segment_rmse_is_the_known_error(shard_pair):
    truth, prediction, delta = shard_pair
    with h5py.File(truth) as ft, h5py.File(prediction) as fp:
        rmse = per_segment_rmse(ft["vmem"][0], fp["vmem"][0])
    expected = np.sqrt(np.mean(delta**2, axis=1))
    np.testing.assert_allclose(
        rmse, expected, rtol=1e-5, atol=0, err_msg="per-segment RMSE of vmem (mV)"
    )


def test_per_segment_rmse_shapes():
    rng = np.random.default_rng(1)
    true = rng.normal(size=(2, 5, 40))
    pred = true + 0.5
    np.testing.assert_allclose(
        per_segment_rmse(true, pred),
        np.full((2, 5), 0.5),
        rtol=1e-12,
        atol=0,
        err_msg="RMSE of a constant 0.5 mV offset",
    )
    with pytest.raises(ValueError, match="must have the same shape"):
        per_segment_rmse(true, pred[..., :-1])


@pytest.mark.neuron
def test_missing_signals_are_skipped(shard_pair, tmp_path, caplog):
    truth, prediction, _ = shard_pair
    bare = tmp_path / "bare.h5"
    shutil.copy(prediction, bare)
    with h5py.File(bare, "r+") as f:
        for name in ("csd", "meg", "eeg", "dipole", "lfp", "soma_spike_prob"):
            del f[name]
    with caplog.at_level(logging.INFO, logger="lfp_surrogate"):
        paths = validation_figures(truth, bare, tmp_path / "figs")
    assert set(paths) == {"voltage_traces", "error_morphology", "raster"}
    for name in ("lfp_heatmaps", "csd_heatmaps", "dipole_eeg_meg", "spectra"):
        assert f"Skipped {name}" in caplog.text, f"{name} skipped silently"
    assert "no soma_spike_prob" in caplog.text


def _copy_with(src, dst, edit):
    shutil.copy(src, dst)
    with h5py.File(dst, "r+") as f:
        edit(f)
    return dst


def _other_hash(f):
    f.attrs["cell_hash"] = "0123456789abcdef"


def _shorter(f):
    vmem = f["vmem"][..., :-10]
    del f["vmem"]
    f.create_dataset("vmem", data=vmem)


def _bad_prob(f):
    f["soma_spike_prob"][0, 5] = 1.5


@pytest.mark.neuron
@pytest.mark.parametrize(
    "edit, match",
    [
        (_other_hash, "truth and prediction are of different cells: cell_hash"),
        (_shorter, r"vmem shapes differ: \(1, 33, 300\) in .* vs \(1, 33, 290\)"),
        (_bad_prob, r"soma_spike_prob of sim 0 must lie in \[0, 1\]"),
    ],
)
def test_mismatched_files_are_refused(shard_pair, tmp_path, edit, match):
    truth, prediction, _ = shard_pair
    bad = _copy_with(prediction, tmp_path / "bad.h5", edit)
    with pytest.raises(ValueError, match=match):
        validation_figures(truth, bad, tmp_path / "figs")
    assert not (tmp_path / "figs").exists(), "nothing written before the checks"


@pytest.mark.neuron
@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"sim": 1}, ValueError, r"sim must be < 1 \(simulations in"),
        ({"probe": "np"}, ValueError, "probe must be one of the labels under 'lfp/'"),
        ({"head": "nyhead"}, ValueError, "head must be one of the labels under"),
        ({"t_window": (500, 600)}, ValueError, "t_window must hold at least two"),
        ({"t_window": (50, 10)}, ValueError, "t_window must be finite with t0 < t1"),
        ({"t_window": "all"}, TypeError, "t_window must be two numbers"),
        ({"formats": ("png", "gif9")}, ValueError, "formats must hold formats"),
    ],
)
def test_bad_arguments(shard_pair, tmp_path, kwargs, error, match):
    truth, prediction, _ = shard_pair
    with pytest.raises(error, match=match):
        validation_figures(truth, prediction, tmp_path / "figs", **kwargs)
