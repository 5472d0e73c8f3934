"""Signals derived from NEURON's voltages against LFPykit on NEURON's imem,
in memory (float64) and through float32 files; the forward/figures CLI."""

from __future__ import annotations

import json
import textwrap

import h5py
import numpy as np
import pytest
from conftest import requires_mearec, requires_neuron, run_python

from lfp_surrogate.cli import main

pytestmark = [pytest.mark.neuron, requires_neuron]

PROBES = [
    {"probe": "Laminar-16-100", "position": (40.0, 300.0, 0.0)},
    {
        "probe": "Neuropixels-128",
        "position": (-50.0, 150.0, 0.0),
        "rotation": (90.0, 0.0, 0.0),
        "label": "np128",
    },
]

CODE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import lfpykit
    from lfp_surrogate.forward import ForwardModel
    from lfp_surrogate.inputs import InputStatistics, generate_inputs
    from lfp_surrogate.simulate import SimulationConfig, Simulator
    cell, duration, rate, probes = sys.argv[1], float(sys.argv[2]), \\
        float(sys.argv[3]), json.loads(sys.argv[4])
    stats = InputStatistics(exc_rate=rate, inh_rate=rate / 3)
    sim = Simulator(SimulationConfig(cell=cell, duration=duration, warmup=100.0))
    res = sim.run(generate_inputs(sim.geometry, duration, 5, stats), stats)
    derived = sim.cell.imem_operator().apply(res.vmem)
    fwd = ForwardModel(sim.geometry, probes=probes,
                       heads=["four_sphere_lfpy_default"],
                       meg=["spherical", "infinite"], inside="ignore")
    errors = {}
    for key, op in fwd.operators.items():
        ref = op.apply(res.imem)
        errors[key] = float(np.abs(op.apply(derived) - ref).max()
                            / np.abs(ref).max())
    # direct LFPykit references on NEURON's own imem
    lfp_op = fwd.lfp_operators["Laminar-16-100"]
    c = lfp_op.contacts
    ls = lfpykit.LineSourcePotential(sim.geometry.to_lfpykit(), x=c[:, 0],
                                     y=c[:, 1], z=c[:, 2], sigma=0.3)
    ref = ls.get_transformation_matrix() @ res.imem
    got = fwd.lfp(derived)["Laminar-16-100"]
    errors["lfpykit_lfp"] = float(np.abs(got - ref).max() / np.abs(ref).max())
    cdm = lfpykit.CurrentDipoleMoment(sim.geometry.to_lfpykit())
    ref = cdm.get_transformation_matrix() @ res.imem
    errors["lfpykit_dipole"] = float(np.abs(fwd.dipole(derived) - ref).max()
                                     / np.abs(ref).max())
    print(json.dumps(errors))
    """
)


@pytest.mark.parametrize(
    ("cell", "duration", "rate"),
    [
        ("ball_and_stick", 100.0, 6.0),
        pytest.param("l5_ttpc1", 50.0, 0.6, marks=requires_mearec),
    ],
)
def test_signals_from_neuron_vmem_equal_lfpykit_on_neuron_imem(cell, duration, rate):
    """float64, in memory: every operator (LFP, CSD, dipole, EEG, MEG) applied
    to currents derived from NEURON's vmem equals the same operator on
    NEURON's i_membrane_, and LFPykit itself, to 1e-9 relative."""
    out = run_python(CODE, cell, duration, rate, json.dumps(PROBES)).stdout
    errors = json.loads(out.splitlines()[-1])
    assert {
        "lfp/Laminar-16-100",
        "csd/Laminar-16-100",
        "dipole/dipole",
        "eeg/four_sphere_lfpy_default",
        "meg/spherical",
    } <= set(errors)
    for key, err in errors.items():
        assert err <= 1e-9, f"{cell} {key}: relative error {err:.2e}"


@pytest.fixture(scope="module")
def shard_with_signals(tmp_path_factory):
    out = tmp_path_factory.mktemp("signals") / "data"
    argv = [
        "-q",
        "simulate",
        "--cell",
        "ball_and_stick",
        "--n-sims",
        "1",
        "--duration",
        "200",
        "--seed",
        "2",
        "--exc-rate",
        "6",
        "--n-jobs",
        "1",
        "--out",
        str(out),
        "--probe",
        "Laminar-16-100 position=40,300,0",
        "--probe",
        "Laminar-16-100 position=-40,300,0 label=left",
        "--head",
        "four_sphere_lfpy_default",
        "--meg",
    ]
    assert main(argv) == 0
    return out / "shard-00000.h5"


def test_shard_stores_signals_with_units_and_placement(shard_with_signals):
    with h5py.File(shard_with_signals) as f:
        assert f["lfp/Laminar-16-100"].shape == (1, 16, 200)
        assert f["lfp/left"].attrs["units"] == "mV"
        assert f["csd/left"].attrs["units"] == "nA/um**3"
        assert f["dipole"].shape == (1, 3, 200)
        assert f["dipole"].attrs["units"] == "nA*um"
        assert f["eeg/four_sphere_lfpy_default"].attrs["units"] == "mV"
        assert f["meg/spherical"].shape[2:] == (3, 200)
        assert f["meg/spherical"].attrs["units"] == "fT"
        # one probe at two placements, side by side, placements as attributes
        pos_a = f["lfp/Laminar-16-100"].attrs["contacts"]
        pos_b = f["lfp/left"].attrs["contacts"]
        np.testing.assert_allclose(
            pos_a[:, 0] - pos_b[:, 0],
            80.0,
            rtol=0,
            atol=1e-9,
            err_msg="placement x offset",
        )
        assert not np.allclose(f["lfp/Laminar-16-100"][0], f["lfp/left"][0])


def test_forward_file_through_float32_matches_ground_truth(
    shard_with_signals, tmp_path, capsys
):
    """Signals recomputed from the shard's float32 vmem agree with the
    ground truth computed from NEURON's float64 imem within float32 storage
    precision (vmem rounding costs up to 3e-4 of max |imem|)."""
    out = tmp_path / "signals.h5"
    with h5py.File(shard_with_signals) as f:
        forward = json.loads(f.attrs["forward"])
    cfg = tmp_path / "fwd.yaml"
    from lfp_surrogate.forward import ForwardConfig

    ForwardConfig.from_dict(forward).to_yaml(cfg)
    argv = [
        "-q",
        "forward",
        "--vmem",
        str(shard_with_signals),
        "--out",
        str(out),
        "--forward-config",
        str(cfg),
    ]
    assert main(argv) == 0
    with h5py.File(shard_with_signals) as a, h5py.File(out) as b:
        names = []
        a.visititems(
            lambda n, o: (
                names.append(n)
                if n.split("/")[0] in ("imem", "lfp", "csd", "dipole", "eeg", "meg")
                and isinstance(o, h5py.Dataset)
                else None
            )
        )
        assert len(names) >= 7, names
        for name in names:
            x, y = a[name][()], b[name][()]
            assert b[name].attrs["units"] == a[name].attrs["units"]
            err = np.abs(x - y).max() / np.abs(x).max()
            assert err <= 5e-4, f"{name}: {err:.2e}"
    # an existing output is refused, nothing is touched
    before = out.stat().st_mtime_ns
    assert main(argv) == 2
    assert "pass --force" in capsys.readouterr().err
    assert out.stat().st_mtime_ns == before


def test_figures_command(shard_with_signals, tmp_path, capsys):
    assert main(["figures", str(shard_with_signals), "--out", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.glob("*.png"))
    for expected in (
        "probes.png",
        "lfp_left.png",
        "csd_Laminar-16-100.png",
        "head_four_sphere_lfpy_default.png",
        "dipole.png",
    ):
        assert expected in names
    assert min(p.stat().st_size for p in tmp_path.glob("*.png")) > 10_000


@pytest.mark.parametrize(
    ("probe", "match"),
    [
        ("Laminar-16-100 position=1,2", "position must be three numbers"),
        ("Laminar-16-100 depth=3", "cannot read 'depth=3'"),
        ("NoSuchProbe", "NoSuchProbe"),
    ],
)
def test_forward_cli_bad_probe(shard_with_signals, tmp_path, probe, match, capsys):
    argv = [
        "forward",
        "--vmem",
        str(shard_with_signals),
        "--out",
        str(tmp_path / "o.h5"),
        "--probe",
        probe,
    ]
    assert main(argv) == 2
    assert match in capsys.readouterr().err


def test_forward_cli_needs_something_to_compute(shard_with_signals, tmp_path, capsys):
    assert (
        main(
            [
                "forward",
                "--vmem",
                str(shard_with_signals),
                "--out",
                str(tmp_path / "o.h5"),
            ]
        )
        == 2
    )
    assert "nothing to compute" in capsys.readouterr().err


def test_probes_command_lists_ours_and_meautility(capsys):
    assert main(["probes"]) == 0
    out = capsys.readouterr().out
    for name in ("Laminar-16-100", "Linear-32-50", "Grid-8x8-200", "Neuropixels-384"):
        assert name in out
