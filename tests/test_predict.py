"""Prediction with a trained surrogate, on the small cell with a tiny model."""

from __future__ import annotations

import warnings

import h5py
import numpy as np
import pytest
import torch
from conftest import _has_mearec, requires_mearec, requires_neuron
from numpy.testing import assert_allclose, assert_array_equal

from lfp_surrogate.forward import ForwardConfig, ForwardModel
from lfp_surrogate.inputs import InputStatistics, generate_inputs
from lfp_surrogate.models import predict_stream
from lfp_surrogate.predict import (
    PREDICTION_KIND,
    InputOutOfDistributionWarning,
    check_input_distribution,
    input_features,
    load_prediction,
    predict,
    read_inputs,
    spikes_from_locations,
)
from lfp_surrogate.train import load_model

pytestmark = requires_neuron

STATS = InputStatistics(exc_rate=6.0, inh_rate=2.0)
FORWARD = dict(
    probes=[{"probe": "Laminar-16-100", "position": [40.0, 100.0, 0.0]}],
    heads=["four_sphere_lfpy_default"],
    meg=["spherical"],
)
# float32 network output and float32 currents: a few ulps of values of order 1-100
RTOL32 = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def data(tiny_data):
    return tiny_data


@pytest.fixture(scope="module")
def saved(tiny_model):
    return load_model(tiny_model)


@pytest.fixture(scope="module")
def inputs(saved):
    seeds = np.random.SeedSequence(99).spawn(3)
    return [generate_inputs(saved.geometry, 250.0, s, STATS) for s in seeds]


def test_prediction_equals_the_network_and_the_exact_operators(saved, inputs):
    pred = predict(saved, inputs, forward=FORWARD, chunk=64, batch=2, verbose=False)
    assert pred.vmem.shape == (3, saved.geometry.n_seg, 250)

    # network: the one-shot prediction of the binned input
    counts = np.stack([s.binned() for s in inputs])
    ref = predict_stream(saved.model, counts, chunk=1000, verbose=False)
    assert_allclose(
        pred.vmem, ref.vmem.numpy(), rtol=0, atol=1e-4, err_msg="streamed vmem (mV)"
    )
    assert_allclose(
        pred.spike_prob,
        torch.sigmoid(ref.spike_logit).numpy(),
        rtol=0,
        atol=1e-6,
        err_msg="spike probability",
    )

    # currents and signals: the exact operator and forward matrices in float64
    imem = saved.imem_operator.apply(pred.vmem.astype(np.float64))
    scale = np.abs(imem).max()
    assert_allclose(
        pred.imem, imem, rtol=0, atol=RTOL32 * scale * 10, err_msg="imem (nA)"
    )
    fwd = ForwardModel(saved.geometry, ForwardConfig.from_dict(FORWARD))
    for key, op in fwd.operators.items():
        name = "dipole" if key == "dipole/dipole" else key
        want = op.apply(imem)
        assert_allclose(
            pred.signals[name],
            want,
            rtol=0,
            atol=1e-4 * np.abs(want).max(),
            err_msg=f"{name} from the predicted currents",
        )
    assert set(pred.lfp) == {"Laminar-16-100"}
    assert set(pred.csd) == {"Laminar-16-100"}
    assert pred.dipole.shape == (3, 3, 250)
    assert pred.eeg["four_sphere_lfpy_default"].shape[0] == 3
    assert pred.meg["spherical"].shape[1:3] == (100, 3)


def test_batch_and_chunk_do_not_change_the_result(saved, inputs):
    a = predict(saved, inputs, chunk=1000, batch=3, verbose=False)
    b = predict(saved, inputs[1], chunk=17, batch=1, verbose=False)
    assert_allclose(b.vmem[0], a.vmem[1], rtol=0, atol=1e-4, err_msg="vmem (mV)")
    assert_allclose(
        b.dipole[0], a.dipole[1], rtol=0, atol=1e-3, err_msg="dipole (nA um)"
    )


def test_file_output_streams_the_same_values(saved, inputs, tmp_path):
    out = tmp_path / "pred.h5"
    got = predict(saved, inputs, forward=FORWARD, out=out, chunk=50, verbose=False)
    assert got == out
    mem = predict(saved, inputs, forward=FORWARD, chunk=50, verbose=False)
    with h5py.File(out) as f:
        assert f.attrs["kind"] == PREDICTION_KIND
        assert f.attrs["cell_hash"] == saved.geometry.cell_hash
        for name in ("vmem", "imem", "dipole", "lfp/Laminar-16-100", "soma_spike_prob"):
            assert "units" in f[name].attrs, name
        assert f["vmem"].attrs["units"] == "mV"
        assert f["lfp/Laminar-16-100"].attrs["units"] == "mV"
        assert f["dipole"].attrs["units"] == "nA*um"
    back = load_prediction(out)
    assert_array_equal(back.vmem, mem.vmem, err_msg="vmem from the file")
    for name, value in mem.signals.items():
        assert_array_equal(back.signals[name], value, err_msg=name)
    # the stored inputs are the inputs
    again = read_inputs(out, saved.geometry)
    assert [s.input_hash() for s in again] == [s.input_hash() for s in inputs]
    with pytest.raises(FileExistsError, match="pass --force"):
        predict(saved, inputs, out=out, verbose=False)


def test_drawn_inputs_are_those_of_a_dataset(saved, data):
    """duration/seed draw the inputs a dataset with that seed holds."""
    pred = predict(saved, duration=300.0, seed=5, n_sims=2, stats=STATS, verbose=False)
    stored = read_inputs(sorted(data.glob("shard-*.h5"))[1], saved.geometry)
    assert pred.inputs[1].input_hash() == stored[0].input_hash()


def test_locations_map_to_neuron_segments(saved):
    """sec(x) is segment floor(x * nseg) of the section, the last at x = 1."""
    geometry = saved.geometry
    sec = max(
        (s for s in geometry.sec_names if "soma" not in s and "axon" not in s),
        key=lambda s: np.sum(geometry.sec_index == geometry.sec_names.index(s)),
    )
    segs = np.flatnonzero(geometry.sec_index == geometry.sec_names.index(sec))
    segs = segs[np.argsort(geometry.seg_x[segs])]
    n = len(segs)
    for x, k in ((0.0, 0), (0.999, n - 1), (1.0, n - 1), ((n // 2 + 0.5) / n, n // 2)):
        spikes = spikes_from_locations(geometry, 100.0, exc={(sec, x): [10.0]})
        assert spikes.exc_seg.tolist() == [segs[k]], (sec, x)
    # a point is mapped to the nearest segment centre
    centre = [geometry.x[segs[1]].mean(), geometry.y[segs[1]].mean(), 0.0]
    spikes = spikes_from_locations(
        geometry, 100.0, exc={tuple(centre): [5.0, 6.0]}, inh={(sec, 0.0): [7.0]}
    )
    assert spikes.exc_seg.tolist() == [segs[1], segs[1]]
    assert spikes.inh_seg.tolist() == [segs[0]]
    assert_allclose(spikes.exc_t, [5.0, 6.0], rtol=0, atol=0, err_msg="times (ms)")


@pytest.mark.parametrize(
    "exc, match",
    [
        ({("nosuch", 0.5): [1.0]}, "no section 'nosuch'"),
        ({("SOMA", 1.5): [1.0]}, "must be in \\[0, 1\\]"),
        ({("SOMA", 0.5): [float("nan")]}, "must be finite"),
        ({("SOMA", 0.5): [150.0]}, "outside \\(0, 100\\] ms"),
        ({"SOMA": [1.0]}, "got the string"),
        ({(1.0, 2.0, 3.0, 4.0): [1.0]}, "a location must be"),
    ],
)
def test_bad_locations_are_named(saved, exc, match):
    geometry = saved.geometry
    soma = next(s for s in geometry.sec_names if "soma" in s)
    exc = {
        (soma if k == "SOMA" else (soma, k[1]) if k[0] == "SOMA" else k): v
        for k, v in exc.items()
    }
    with pytest.raises((ValueError, TypeError), match=match):
        spikes_from_locations(geometry, 100.0, exc=exc)


def test_far_point_is_refused(saved):
    with pytest.raises(ValueError, match="from the nearest segment"):
        spikes_from_locations(saved.geometry, 100.0, exc={(1e6, 1e6, 0.0): [1.0]})


@requires_mearec
def test_template_sections_by_their_short_name():
    """'dend[3]' names the template's 'Template[0].dend[3]'."""
    from lfp_surrogate.cells import cell_geometry

    geometry = cell_geometry("l5_ttpc1")
    full = next(s for s in geometry.sec_names if s.endswith(".dend[3]"))
    a = spikes_from_locations(geometry, 100.0, exc={("dend[3]", 0.5): [1.0]})
    b = spikes_from_locations(geometry, 100.0, exc={(full, 0.5): [1.0]})
    assert a.exc_seg.tolist() == b.exc_seg.tolist()
    with pytest.raises(ValueError, match="e.g. dend"):
        spikes_from_locations(geometry, 100.0, exc={("dend[9999]", 0.5): [1.0]})


def test_synapse_free_region_is_refused(saved):
    geometry = saved.geometry
    axon = [s for s in geometry.sec_names if "axon" in s]
    if not axon:
        pytest.skip("the small cell has no axon")
    with pytest.raises(ValueError, match="carries no synapse"):
        spikes_from_locations(geometry, 100.0, exc={(axon[0], 0.5): [1.0]})


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_in_distribution_input_gives_no_warning(saved, seed):
    """Inputs of the training statistics, of the reference window length."""
    spikes = generate_inputs(saved.geometry, 1000.0, seed, STATS)
    with warnings.catch_warnings():
        warnings.simplefilter("error", InputOutOfDistributionWarning)
        assert check_input_distribution(spikes, saved) == []


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(exc_rate=40.0, inh_rate=10.0), "rate"),
        (dict(sync_rate=40.0, sync_fraction=1.0), "synchrony"),
    ],
)
def test_out_of_distribution_input_warns(saved, changes, match):
    spikes = generate_inputs(saved.geometry, 500.0, 1, STATS.replace(**changes))
    with pytest.warns(InputOutOfDistributionWarning, match=match):
        predict(saved, spikes, verbose=False)


def test_features_measure_rates(saved):
    """Rates per µm come back from a Poisson draw within sampling error."""
    spikes = generate_inputs(
        saved.geometry, 5000.0, 3, STATS.replace(mod_min=1.0, mod_max=1.0, seg_noise=0)
    )
    feats = input_features(spikes, saved.geometry)
    assert_allclose(
        feats["exc_rate_basal"].mean(), 6.0, rtol=0.1, err_msg="exc rate (Hz/um)"
    )


def test_bad_arguments(saved, inputs, tmp_path):
    with pytest.raises(ValueError, match="duration and seed"):
        predict(saved, verbose=False)
    with pytest.raises(ValueError, match="share one duration"):
        other = generate_inputs(saved.geometry, 100.0, 1, STATS)
        predict(saved, [inputs[0], other], verbose=False)
    with pytest.raises(ValueError, match="cannot be combined"):
        predict(saved, inputs[0], duration=100.0, seed=1, verbose=False)
    with pytest.raises(ValueError, match="device"):
        predict(saved, inputs[0], device="tpu", verbose=False)
    with pytest.raises(ValueError, match="folder"):
        predict(saved, inputs[0], out=tmp_path, verbose=False)
    with pytest.raises(FileNotFoundError, match="neither a model folder"):
        predict(tmp_path / "none", inputs[0], verbose=False)


def test_inputs_of_another_cell_are_refused(saved, tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f.attrs["cell_hash"] = "0123456789abcdef"
        f.attrs["cell"] = "l5_ttpc1"
        f.attrs["duration"] = 100.0
        for kind in ("exc", "inh"):
            f[f"inputs/{kind}/seg"] = np.zeros(0, np.int32)
            f[f"inputs/{kind}/t"] = np.zeros(0)
            f[f"inputs/{kind}/ptr"] = np.zeros(2, np.int64)
    with pytest.raises(ValueError, match="not for 'ball_and_stick'"):
        predict(saved, path, verbose=False)


def test_a_prebuilt_forward_model_gives_the_same_signals(saved, inputs):
    fwd = ForwardModel(saved.geometry, ForwardConfig.from_dict(FORWARD))
    a = predict(saved, inputs[0], forward=FORWARD, check_inputs=False, verbose=False)
    for _ in range(2):  # reusable across calls
        b = predict(saved, inputs[0], forward=fwd, check_inputs=False, verbose=False)
        for name, value in a.signals.items():
            assert_allclose(
                b.signals[name], value, rtol=1e-6, atol=0, err_msg=f"{name}"
            )


def test_forward_model_of_another_cell_is_refused(saved, inputs):
    from lfp_surrogate.cells import cell_geometry

    if not _has_mearec():
        pytest.skip("mearec not installed")
    other = ForwardModel(cell_geometry("l5_ttpc1"))
    with pytest.raises(ValueError, match="forward was built for cell 'l5_ttpc1'"):
        predict(saved, inputs[0], forward=other, verbose=False)
