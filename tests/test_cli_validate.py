"""The validate and demo commands, end to end on the small cell."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import requires_neuron

from lfp_surrogate.cli import main

pytestmark = requires_neuron

PROBE = "Laminar-16-100 position=40,100,0 label=eval"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.fixture(scope="module")
def model(tiny_model):
    return str(tiny_model)


def _validate_args(model, out, *extra):
    return [
        "validate",
        "--model",
        model,
        "--n-sims",
        "1",
        "--duration",
        "300",
        "--seed",
        "77",
        "--probe",
        PROBE,
        "--no-ood",
        "--n-boot",
        "20",
        "--n-jobs",
        "1",
        "--out",
        str(out),
        *extra,
    ]


def test_validate_writes_the_report_and_refuses_to_overwrite(model, tmp_path, capsys):
    out = tmp_path / "v"
    assert main(_validate_args(model, out)) == 0
    printed = capsys.readouterr().out
    assert "median per-segment V RMSE" in printed
    assert "wall time NEURON / surrogate" in printed
    report = json.loads((out / "report.json").read_text())
    assert report["validation"]["n_sims"] == 1
    assert report["ood"] == {}
    before = (out / "report.json").read_bytes()
    assert main(_validate_args(model, out)) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and "--force" in err
    assert (out / "report.json").read_bytes() == before
    # --force replaces our entries and nothing else
    (out / "notes.txt").write_text("mine")
    sibling = out.with_name(out.name + ".old")
    sibling.mkdir()
    (sibling / "analysis.txt").write_text("mine too")
    assert main(_validate_args(model, out, "--force", "--no-figures")) == 0
    assert not (out / "figures").exists()
    assert (out / "notes.txt").read_text() == "mine"
    assert (sibling / "analysis.txt").read_text() == "mine too"
    report = json.loads((out / "report.json").read_text())
    assert report["data"]["folder"] == str(out / "neuron")


@pytest.mark.parametrize(
    "change, match",
    [
        (("--n-sims", "0"), "--n-sims must be"),
        (("--duration", "-3"), "--duration must be"),
        (("--model", "no/such/model"), "--model: 'no/such/model' is neither"),
        (("--seed", "5"), "trained on"),
        (("--n-jobs", "0"), "--n-jobs must be"),
    ],
)
def test_validate_bad_input(model, tmp_path, capsys, change, match):
    args = _validate_args(model, tmp_path / "v")
    i = args.index(change[0])
    args[i + 1] = change[1]
    assert main(args) == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "v").exists()


def test_validate_bad_device_fails_before_any_work(model, tmp_path, capsys):
    args = _validate_args(model, tmp_path / "v") + ["--device", "tpu"]
    assert main(args) == 2
    assert "--device must be one of" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_demo_on_a_small_model(model, tmp_path, capsys):
    out = tmp_path / "demo"
    args = ["demo", "--model", model, "--duration", "300", "--out", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "lfp-surrogate demo" in printed and "faster" in printed
    assert (out / "figures" / "voltage_traces.png").stat().st_size > 10_000
    assert sorted(p.name for p in (out / "surrogate").glob("*.h5")) == [
        "shard-00000.h5"
    ]
    assert main(args) == 2
    assert "--force" in capsys.readouterr().err
