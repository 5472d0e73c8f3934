"""``lfp-surrogate predict``, called with argument lists, on a tiny model."""

from __future__ import annotations

import json
import re
import shutil

import h5py
import numpy as np
import pytest
import torch
from conftest import requires_neuron, run_python
from numpy.testing import assert_array_equal

from lfp_surrogate.cli import main
from lfp_surrogate.inputs import InputStatistics
from lfp_surrogate.predict import PREDICTION_KIND, predict, read_inputs
from lfp_surrogate.train import load_model

pytestmark = requires_neuron

STATS = InputStatistics(exc_rate=6.0, inh_rate=2.0)
# the drawn input the model was trained on (no out-of-distribution warning)
DRAW = ["--duration", "300", "--seed", "3", "--exc-rate", "6", "--inh-rate", "2"]
# beside the stick, not through it (contacts inside the membrane warn)
FORWARD = [
    *("--probe", "Laminar-16-100 position=40,100,0"),
    *("--head", "four_sphere_lfpy_default"),
    "--meg",
]


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
def model(tiny_model):
    return tiny_model


@pytest.fixture(scope="module")
def shard(data):
    return sorted(data.glob("shard-*.h5"))[0]


def _predict(model, *argv) -> int:
    return main(["predict", "--model", str(model), *map(str, argv)])


def _datasets(path) -> dict:
    out = {}
    with h5py.File(path, "r") as f:
        f.visititems(
            lambda name, obj: (
                out.__setitem__(name, obj[()])
                if isinstance(obj, h5py.Dataset)
                else None
            )
        )
    return out


def test_predict_writes_what_python_predicts(model, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    assert _predict(model, *DRAW, *FORWARD, "--out", out) == 0
    line = capsys.readouterr().out
    assert re.search(
        rf"prediction written to {re.escape(str(out))}: 1 input\(s\) of 300 ms; "
        r"vmem, imem, lfp/Laminar-16-100, csd/Laminar-16-100, dipole, "
        r"eeg/four_sphere_lfpy_default, meg/spherical",
        line,
    ), line

    n_seg = load_model(model).geometry.n_seg
    with h5py.File(out, "r") as f:
        assert f.attrs["kind"] == PREDICTION_KIND
        assert f["vmem"].shape == (1, n_seg, 300)
        units = {
            "vmem": "mV",
            "imem": "nA",
            "lfp/Laminar-16-100": "mV",
            "dipole": "nA*um",
            "eeg/four_sphere_lfpy_default": "mV",
            "meg/spherical": "fT",
        }
        for name, unit in units.items():
            assert f[name].attrs["units"] == unit, name

    # the same arguments in Python: the same code path, the same numbers
    ref = tmp_path / "python.h5"
    forward = dict(
        probes=[{"probe": "Laminar-16-100", "position": [40.0, 100.0, 0.0]}],
        heads=["four_sphere_lfpy_default"],
        meg=["spherical"],
    )
    predict(str(model), duration=300.0, seed=3, stats=STATS, forward=forward, out=ref)
    got, want = _datasets(out), _datasets(ref)
    assert set(got) == set(want)
    for name, value in want.items():
        assert_array_equal(got[name], value, err_msg=f"{name} (CLI vs predict())")


def test_inputs_from_a_shard(model, shard, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    assert _predict(model, "--inputs", shard, "--no-imem", "--out", out) == 0
    assert "1 input(s) of 300 ms; vmem, dipole" in capsys.readouterr().out
    geometry = load_model(model).geometry
    got = [s.input_hash() for s in read_inputs(out, geometry)]
    assert got == [s.input_hash() for s in read_inputs(shard, geometry)]
    with h5py.File(out, "r") as f:
        assert "imem" not in f, "--no-imem stores no currents"


def test_force_replaces_the_file(model, tmp_path):
    out = tmp_path / "pred.h5"
    out.write_bytes(b"an older file of a user")
    assert _predict(model, *DRAW, "--out", out, "--force") == 0
    with h5py.File(out, "r") as f:
        assert f.attrs["kind"] == PREDICTION_KIND
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pred.h5"], "no temp file"


def _foreign_inputs(path):
    """An input file made for another cell (empty inputs)."""
    with h5py.File(path, "w") as f:
        f.attrs["cell_hash"] = "0123456789abcdef"
        f.attrs["cell"] = "l5_ttpc1"
        f.attrs["duration"] = 100.0
        for kind in ("exc", "inh"):
            f[f"inputs/{kind}/seg"] = np.zeros(0, np.int32)
            f[f"inputs/{kind}/t"] = np.zeros(0)
            f[f"inputs/{kind}/ptr"] = np.zeros(2, np.int64)
    return path


def _model_of_another_cell(model, path):
    """A copy of ``model`` whose card names another cell hash."""
    shutil.copytree(model, path)
    card = json.loads((path / "model.json").read_text())
    card["cell"]["cell_hash"] = "fedcba9876543210"
    (path / "model.json").write_text(json.dumps(card))
    return path


BAD = {
    "negative duration": (
        ["--duration", "-5", "--seed", "1"],
        r"--duration must be finite and > 0",
    ),
    "inputs and seed": (
        ["--inputs", "SHARD", "--seed", "1"],
        r"--inputs and --seed exclude each other",
    ),
    "inputs and drawing": (
        ["--inputs", "SHARD", "--duration", "300", "--n-sims", "2"],
        r"--inputs and --duration/--n-sims exclude each other",
    ),
    "no input": ([], r"no input: give --inputs FILE\.h5 .* or --duration and --seed"),
    "no seed": (["--duration", "300"], r"--seed is required to draw inputs"),
    "unknown region": (
        [*DRAW, "--regions", "soma,nosuch"],
        r"--regions must be one of 'soma', .* got 'nosuch'",
    ),
    "unknown device": (
        [*DRAW, "--device", "tpu"],
        r"--device must be one of 'cpu', 'cuda', got 'tpu'",
    ),
    "empty chunk": ([*DRAW, "--chunk", "0"], r"--chunk must be finite and > 0"),
    "no such model": (
        ["--model", "NOSUCH", *DRAW],
        r"--model: '.*nosuch' is neither a model folder nor the name of a shipped",
    ),
    "inputs of another cell": (
        ["--inputs", "FOREIGN"],
        r"--inputs: .*foreign\.h5 holds inputs for cell 'l5_ttpc1' \(hash "
        r"0123456789abcdef\), not for 'ball_and_stick'",
    ),
    "model of another cell": (
        ["--model", "OTHER", "--inputs", "SHARD"],
        r"--inputs: .*shard-00000\.h5 holds inputs for cell 'ball_and_stick' "
        r"\(hash [0-9a-f]+\), not for 'ball_and_stick' \(hash fedcba9876543210\)",
    ),
    "out a folder": (
        ["OUT_DIR", *DRAW],
        r"--out must be the path of an HDF5 file, got the folder",
    ),
    "out exists": (["OUT_EXISTS", *DRAW], r"--out \(.*pred\.h5\) exists; pass --force"),
}


@pytest.mark.parametrize(("argv", "match"), list(BAD.values()), ids=list(BAD))
def test_bad_input_is_named(argv, match, model, shard, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    places = {
        "SHARD": shard,
        "FOREIGN": _foreign_inputs(tmp_path / "foreign.h5")
        if "FOREIGN" in argv
        else None,
        "NOSUCH": tmp_path / "nosuch",
        "OTHER": _model_of_another_cell(model, tmp_path / "other")
        if "OTHER" in argv
        else None,
    }
    if "OUT_EXISTS" in argv:
        out.write_bytes(b"a file of a user")
    if "OUT_DIR" in argv:
        out = tmp_path / "folder"
        out.mkdir()
    argv = [str(places.get(a, a)) for a in argv if not a.startswith("OUT_")]
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}

    if "--model" in argv:
        result = main(["predict", *argv, "--out", str(out)])
    else:
        result = _predict(model, *argv, "--out", out)
    assert result == 2, "a bad value is a usage error (exit code 2)"
    err = capsys.readouterr().err
    assert re.search(r"lfp-surrogate predict: error: " + match, err), err
    after = {p.name: p.read_bytes() for p in tmp_path.iterdir() if p.is_file()}
    assert after == before, "a refused run writes nothing and keeps what is there"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_without_a_device_is_a_runtime_error(model, tmp_path, capsys):
    out = tmp_path / "pred.h5"
    assert _predict(model, *DRAW, "--device", "cuda", "--out", out) == 1
    assert "--device cuda: torch sees no CUDA device" in capsys.readouterr().err
    assert not out.exists()


def test_out_of_distribution_input_warns_on_stderr(model, tmp_path):
    """A fresh interpreter with Python's own warning filters: nothing hides it."""
    out = tmp_path / "pred.h5"
    proc = run_python(
        "import sys; from lfp_surrogate.cli import main; sys.exit(main(sys.argv[1:]))",
        *("predict", "--model", model, "--duration", "300", "--seed", "1"),
        *("--exc-rate", "40", "--out", out),
        env={"PYTHONWARNINGS": ""},
        timeout=120,
    )
    assert re.search(
        r"InputOutOfDistributionWarning: input 0 is outside the training "
        r"distribution of the surrogate: excitatory rate",
        proc.stderr,
    ), proc.stderr
    assert out.exists(), "a warning does not stop the prediction"


def test_options_from_a_config_file(model, tmp_path, capsys):
    """--config gives every option, --regions as a YAML list, switches as booleans."""
    out = tmp_path / "pred.h5"
    config = tmp_path / "predict.yaml"
    config.write_text(
        f"model: {model}\nduration: 100\nseed: 2\nexc-rate: 6\ninh-rate: 2\n"
        f"regions: [soma, dend]\nno-input-check: true\nout: {out}\n"
    )
    assert main(["predict", "--config", str(config)]) == 0
    assert "1 input(s) of 100 ms" in capsys.readouterr().out
    with h5py.File(out, "r") as f:
        origin = json.loads(f.attrs["origin"])
    assert origin["seed"] == 2
    assert origin["input_statistics"]["regions"] == ["soma", "dend"]
    assert origin["input_statistics"]["exc_rate"] == 6.0
