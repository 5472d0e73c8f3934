"""The throughput benchmark on the small cell: structure, rates, ratios, CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from conftest import requires_mearec, requires_neuron

from lfp_surrogate.bench import DEFINITION, THROUGHPUT_KIND, format_throughput
from lfp_surrogate.bench import throughput as run_throughput
from lfp_surrogate.cli import main

pytestmark = [pytest.mark.neuron, requires_neuron]

TINY = dict(cell="ball_and_stick", duration=200.0, batches=(1, 2), repeat=1)
PARTS = ("encode", "network", "currents", "forward", "whole_path", "sum_of_parts")


@pytest.fixture(scope="module")
def result():
    return run_throughput(**TINY, verbose=False)


def _positive_finite(value, what):
    assert isinstance(value, float), f"{what} is {type(value).__name__}"
    assert math.isfinite(value) and value > 0, f"{what} = {value}"


def test_structure(result):
    assert result["kind"] == THROUGHPUT_KIND
    assert result["definition"] == DEFINITION
    assert "median" in result["statistic"]
    for key in ("surrogate", "neuron", "ratios", "break_even", "one_time_s"):
        assert key in result
    cfg = result["configuration"]
    assert cfg["cell"]["name"] == "ball_and_stick"
    assert cfg["batches"] == [1, 2]
    assert cfg["model"]["n_parameters"] > 0
    assert cfg["model"]["receptive_field_ms"] > 0
    assert "untrained" in cfg["model"]["source"]
    assert cfg["machine"]["torch"] == torch.__version__
    assert cfg["machine"]["torch_threads"] == 2
    assert cfg["outputs"]["lfp"]["n_contacts"] == 384
    assert cfg["outputs"]["eeg"]["n_electrodes"] > 0
    assert set(result["surrogate"]) == {"cpu"}
    assert set(result["surrogate"]["cpu"]["batches"]) == {"1", "2"}
    assert len(result["neuron"]["workers"]) == 2
    # strict JSON: no NaN or infinity anywhere
    text = json.dumps(result, allow_nan=False)
    assert json.loads(text)["ratios"] == result["ratios"]
    assert "ball_and_stick" in format_throughput(result)


def test_rates_positive_and_finite(result):
    for key, b in result["surrogate"]["cpu"]["batches"].items():
        assert b["n_batch"] == int(key)
        np.testing.assert_allclose(
            b["simulated_s"], int(key) * 0.2, rtol=1e-12, err_msg="simulated_s"
        )
        for part in PARTS:
            _positive_finite(b["wall_s"][part], f"batch {key} wall_s[{part}]")
            assert b["wall_s_best"][part] <= b["wall_s"][part] + 1e-12
        for part, rate in b["rate"].items():
            _positive_finite(rate, f"batch {key} rate[{part}]")
            np.testing.assert_allclose(
                rate,
                b["simulated_s"] / b["wall_s"][part],
                rtol=1e-12,
                err_msg=f"batch {key} rate[{part}] = simulated_s / wall_s",
            )
        _positive_finite(b["peak_rss_mb"], f"batch {key} peak_rss_mb")
    neuron = result["neuron"]
    _positive_finite(neuron["rate"], "neuron rate")
    _positive_finite(neuron["rate_with_warmup"], "neuron rate_with_warmup")
    for w in neuron["workers"]:
        _positive_finite(w["peak_rss_mb"], "worker peak_rss_mb")
        _positive_finite(w["build_s"], "worker build_s")
        np.testing.assert_allclose(
            w["steady_simulated_s"], 0.1, rtol=1e-12, err_msg="steady part"
        )


def test_ratios_are_quotients_of_rates(result):
    neuron = result["neuron"]["rate"]
    for key, b in result["surrogate"]["cpu"]["batches"].items():
        ratio = result["ratios"]["cpu"][key]
        for part in ("network", "whole_path"):
            np.testing.assert_allclose(
                ratio[part],
                b["rate"][part] / neuron,
                rtol=1e-12,
                err_msg=f"batch {key} ratio[{part}]",
            )


def test_break_even(result):
    even = result["break_even"]
    assert even["source"] == {"simulated_s": "default", "wall_min": "default"}
    neuron = result["neuron"]["rate"]
    np.testing.assert_allclose(
        even["gen_wall_s"], 600.0 / neuron, rtol=1e-12, err_msg="gen_wall_s"
    )
    for key, b in result["surrogate"]["cpu"]["batches"].items():
        saving = 1 / neuron - 1 / b["rate"]["whole_path"]
        if saving <= 0:
            assert even["by_batch"][key] is None
            continue
        np.testing.assert_allclose(
            even["by_batch"][key],
            (even["gen_wall_s"] + 3600.0) / saving,
            rtol=1e-12,
            err_msg=f"break-even at batch {key}",
        )


def test_neuron_with_derived_imem():
    res = run_throughput(
        **dict(TINY, duration=20.0, batches=(1,)), neuron_imem="derived", verbose=False
    )
    assert res["neuron"]["imem"] == "derived"
    assert res["neuron"]["simulation"]["record_imem"] is False
    _positive_finite(res["neuron"]["rate"], "neuron rate, derived imem")


def test_break_even_reads_the_model_card():
    from lfp_surrogate._bench import _break_even

    cpu = {"batches": {"4": {"rate": {"whole_path": 10.0}}}}
    card = {"training": {"simulated_seconds": 50.0, "wall_minutes": 2.0}}
    even = _break_even(cpu, 0.5, card, None, None)
    assert even["source"] == {"simulated_s": "card", "wall_min": "card"}
    np.testing.assert_allclose(
        even["by_batch"]["4"],
        (50.0 / 0.5 + 120.0) / (1 / 0.5 - 1 / 10.0),
        rtol=1e-12,
        err_msg="break-even from the card",
    )
    slower = _break_even(
        {"batches": {"1": {"rate": {"whole_path": 0.1}}}}, 0.5, {}, 1.0, 1.0
    )
    assert slower["by_batch"]["1"] is None
    assert slower["source"] == {"simulated_s": "argument", "wall_min": "argument"}


def test_cli_writes_and_refuses_existing_out(tmp_path, capsys):
    out = tmp_path / "bench.json"
    out.write_text("{}")
    argv = ["bench", "--out", str(out), "--cell", "ball_and_stick"]
    argv += ["--duration", "20", "--batches", "1", "--repeat", "1"]
    assert main(argv) == 2
    assert "exists; pass --force" in capsys.readouterr().err
    assert out.read_text() == "{}"
    assert main([*argv, "--force"]) == 0
    written = json.loads(out.read_text())
    assert written["kind"] == THROUGHPUT_KIND
    assert list(written["surrogate"]["cpu"]["batches"]) == ["1"]
    assert "wrote" in capsys.readouterr().out


def test_cli_bad_batches(tmp_path, capsys):
    argv = ["bench", "--out", str(tmp_path / "b.json"), "--batches", "1,x"]
    assert main(argv) == 2
    assert "--batches must be positive integers" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(batches=()), ValueError, "batches must hold at least one"),
        (dict(batches=(1, 1)), ValueError, "batches must be distinct"),
        (dict(batches=(0,)), ValueError, "batches must be finite and > 0"),
        (dict(batches="1,2"), TypeError, "batches must be a sequence"),
        (dict(duration=1.0), ValueError, "at least two bins"),
        (dict(duration=2.5), ValueError, "duration must be a positive integer"),
        (dict(device="tpu"), ValueError, "device must be one of"),
        (dict(neuron_imem="x"), ValueError, "neuron_imem must be one of"),
        (dict(model=3), TypeError, "model must be None, a model name"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = dict(TINY, **kwargs)
    with pytest.raises(error, match=match):
        run_throughput(**args, verbose=False)


def test_model_for_another_cell():
    from lfp_surrogate.models import ModelConfig, build_model

    net = build_model(ModelConfig(n_seg=5, widths=8, dilations=(1,)), verbose=False)
    with pytest.raises(ValueError, match="model predicts 5 segments"):
        run_throughput(net, **TINY, verbose=False)


@requires_mearec
def test_saved_model_for_another_cell():
    from lfp_surrogate._bench import _default_config
    from lfp_surrogate.cells import cell_geometry, cell_imem_operator
    from lfp_surrogate.models import build_model
    from lfp_surrogate.train import SavedModel

    geometry = cell_geometry("ball_and_stick")
    net = build_model(_default_config(geometry), verbose=False)
    saved = SavedModel(net, geometry, cell_imem_operator("ball_and_stick"))
    args = dict(TINY, cell="l5_ttpc1")
    with pytest.raises(ValueError, match="model was trained for cell 'ball_and_stick'"):
        run_throughput(saved, **args, verbose=False)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available")
def test_cuda_skipped_without_a_gpu():
    from lfp_surrogate._bench import _devices

    devices = _devices("cuda")
    assert devices[0] == "cpu"
    assert devices[1].startswith("skip: CUDA is not available")
    assert _devices("auto") == ["cpu"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")
def test_cuda():
    res = run_throughput(**dict(TINY, batches=(2,)), device="cuda", verbose=False)
    entry = res["surrogate"]["cuda"]["batches"]["2"]
    _positive_finite(entry["rate"]["whole_path"], "cuda whole-path rate")
    _positive_finite(entry["peak_cuda_mb"], "peak CUDA memory")
    np.testing.assert_allclose(
        res["ratios"]["cuda"]["2"]["network"],
        entry["rate"]["network"] / res["neuron"]["rate"],
        rtol=1e-12,
        err_msg="cuda ratio",
    )
