"""Ground-truth simulation: chunked bin means, conservation, spikes."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import requires_neuron

from lfp_surrogate.inputs import generate_inputs
from lfp_surrogate.simulate import SimulationConfig, Simulator, bin_times

pytestmark = [pytest.mark.neuron, requires_neuron]


@pytest.fixture(scope="module")
def spikes_and_stats(bas_simulator, strong_input):
    sp = generate_inputs(bas_simulator.geometry, 200.0, 11, strong_input)
    return sp, strong_input


def test_chunked_means_equal_full_resolution_means(spikes_and_stats):
    sp, stats = spikes_and_stats
    chunked = Simulator(
        SimulationConfig(cell="ball_and_stick", duration=200.0, chunk=30.0)
    )
    res = chunked.run(sp, stats)
    # an independent full-resolution run: every step stored as a sample
    full_cfg = SimulationConfig(
        cell="ball_and_stick",
        duration=200.0,
        interval=1 / 32,
        reduce="sample",
        chunk=200.0,
    )
    full = Simulator(full_cfg).run(sp, stats)
    assert full.vmem.shape == (33, 200 * 32)
    for name in ("vmem", "imem"):
        means = getattr(full, name).reshape(33, 200, 32).mean(axis=2)
        got = getattr(res, name)
        err = np.abs(got - means).max() / np.abs(means).max()
        assert err <= 1e-6, f"{name}: chunked bin means differ by {err:.2e}"
    assert res.soma_spikes.size > 0, "the strong input must make the soma fire"
    np.testing.assert_allclose(
        res.soma_spikes,
        full.soma_spikes,
        rtol=0,
        atol=1e-12,
        err_msg="soma spike times",
    )


def test_bin_times_and_sample_mode(bas_simulator, spikes_and_stats):
    sp, stats = spikes_and_stats
    cfg = SimulationConfig(cell="ball_and_stick", duration=200.0)
    np.testing.assert_allclose(
        bin_times(cfg)[:3], [0.5, 1.5, 2.5], rtol=0, atol=1e-12, err_msg="bin centres"
    )
    samp = Simulator(cfg.replace(reduce="sample")).run(sp, stats)
    full = Simulator(cfg.replace(interval=1 / 32, reduce="sample")).run(sp, stats)
    # the sample of bin k is the last step of (k, k + 1]
    np.testing.assert_array_equal(samp.vmem, full.vmem[:, 31::32])


def test_kirchhoff_sum_of_imem_is_zero(bas_simulator, spikes_and_stats):
    sp, stats = spikes_and_stats
    res = bas_simulator.run(sp, stats)
    total = np.abs(res.imem.sum(axis=0)).max()
    assert total <= 1e-9 * np.abs(res.imem).max(), f"sum of imem {total:.2e} nA"


def test_first_bins_start_at_rest(bas_simulator):
    from lfp_surrogate.inputs import SpikeTrains

    empty = SpikeTrains(
        exc_seg=np.zeros(0, int),
        exc_t=np.zeros(0),
        inh_seg=np.zeros(0, int),
        inh_t=np.zeros(0),
        n_seg=33,
        duration=200.0,
    )
    res = bas_simulator.run(empty)
    drift = np.abs(res.vmem[:, -1] - res.vmem[:, 0]).max()
    assert drift < 0.05, f"membrane drifts by {drift:.3f} mV after the warm-up"


def test_streaming_sink_keeps_nothing(bas_simulator, spikes_and_stats):
    sp, stats = spikes_and_stats
    parts = []
    res = bas_simulator.run(sp, stats, sink=lambda k0, v, i: parts.append((k0, v)))
    ref = bas_simulator.run(sp, stats)
    assert res.vmem.size == 0
    got = np.concatenate([v for _, v in sorted(parts, key=lambda p: p[0])], axis=1)
    np.testing.assert_array_equal(got, ref.vmem)


def test_wrong_input_is_refused(bas_simulator, spikes_and_stats):
    sp, _ = spikes_and_stats
    short = sp.window(0.0, 100.0)
    with pytest.raises(ValueError, match=r"spikes last 100 ms but the simulation"):
        bas_simulator.run(short)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (
            dict(interval=0.1),
            ValueError,
            r"interval must be a positive integer "
            r"multiple of dt",
        ),
        (dict(duration=-5.0), ValueError, "duration must be finite and > 0"),
        (dict(duration=100.5), ValueError, "duration must be a positive integer"),
        (dict(reduce="median"), ValueError, "reduce must be one of"),
        (dict(cell=3), TypeError, "cell must be str"),
    ],
)
def test_config_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        SimulationConfig(**kwargs)
