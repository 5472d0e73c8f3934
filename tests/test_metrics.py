"""Metrics against closed-form cases."""

from __future__ import annotations

import numpy as np
import pytest

from lfp_surrogate.metrics import (
    bootstrap_ci,
    clipped_rmse,
    lowpass,
    per_channel,
    spike_auc,
    spike_time_match,
    tpr_at_fpr,
)


@pytest.mark.parametrize("seed", [0, 1, 7])
def test_per_channel_closed_forms(seed):
    rng = np.random.default_rng(seed)
    true = rng.normal(size=(3, 4, 500))
    m = per_channel(true, true)
    np.testing.assert_allclose(m["rmse"], 0.0, atol=1e-12, err_msg="perfect rmse")
    np.testing.assert_allclose(m["correlation"], 1.0, rtol=1e-12, err_msg="corr")
    mean = np.broadcast_to(true.mean(axis=(0, 2))[None, :, None], true.shape)
    m = per_channel(mean, true)
    np.testing.assert_allclose(
        m["relative_rmse"], 1.0, rtol=1e-12, err_msg="predicting the mean gives 1"
    )
    np.testing.assert_allclose(
        m["explained_variance"],
        0.0,
        atol=1e-12,
        err_msg="explained variance of the mean",
    )
    m = per_channel(true + 0.5, true)
    np.testing.assert_allclose(m["rmse"], 0.5, rtol=1e-12, err_msg="offset rmse")
    np.testing.assert_allclose(m["mae"], 0.5, rtol=1e-12, err_msg="offset mae")


@pytest.mark.parametrize("seed", [0, 3])
def test_spike_scores(seed):
    rng = np.random.default_rng(seed)
    target = rng.random(5000) < 0.01
    assert spike_auc(target.astype(float), target) == pytest.approx(1.0)
    assert spike_auc(rng.random(5000), target) == pytest.approx(0.5, abs=0.1)
    assert tpr_at_fpr(
        target.astype(float) + 0.01 * rng.random(5000), target, 0.01
    ) == pytest.approx(1.0)


def test_spike_time_match():
    m = spike_time_match([10.5, 30.0, 50.0], [10.0, 29.0, 70.0], tolerance=2.0)
    assert m["precision"] == pytest.approx(2 / 3)
    assert m["recall"] == pytest.approx(2 / 3)


def test_clipped_rmse_ignores_spike_heights():
    true = np.full(100, -70.0)
    true[50] = 30.0
    pred = true.copy()
    pred[50] = -20.0
    assert clipped_rmse(pred, true) == 0.0


def test_lowpass_keeps_slow_removes_fast():
    t = np.arange(2000) * 1.0  # ms
    slow = np.sin(2 * np.pi * 5 * t / 1000)
    fast = np.sin(2 * np.pi * 300 * t / 1000)
    out = lowpass(slow + fast, 100.0)
    np.testing.assert_allclose(
        out[200:-200], slow[200:-200], atol=0.02, err_msg="100 Hz low-pass"
    )
    with pytest.raises(ValueError, match="below the Nyquist"):
        lowpass(slow, 600.0)


def test_bootstrap_interval_contains_the_median():
    value, low, high = bootstrap_ci(np.arange(21.0))
    assert value == 10.0 and low <= value <= high


def test_shape_mismatch_error():
    with pytest.raises(ValueError, match="same shape"):
        per_channel(np.zeros((2, 3)), np.zeros((3, 2)))
