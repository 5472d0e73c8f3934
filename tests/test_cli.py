"""The command line, called with argument lists."""

from __future__ import annotations

import os
import re

import pytest
from conftest import requires_mearec, requires_neuron

from lfp_surrogate.cli import main


@requires_mearec
def test_cells_lists_the_catalogue(capsys):
    assert main(["cells"]) == 0
    out = capsys.readouterr().out
    for name in (
        "l5_ttpc1",
        "ball_and_stick",
        "L5_TTPC2_cADpyr232_1",
        "L5_MC_bAC217_1",
    ):
        assert name in out


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "simulate" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["--cell", "nope"], "--cell must be one of"),
        (["--duration", "0"], "--duration must be finite and > 0"),
        (["--n-sims", "0"], "--n-sims must be finite and > 0"),
        (["--interval", "0.3"], "--interval must be a positive integer multiple"),
        (["--exc-rate", "-1"], "--exc-rate must be finite and >= 0"),
        (["--config", "missing.yaml"], "--config: no such file"),
        (["--probe", "Laminar-16-10"], "--probe must be a known probe name"),
        (["--probe", "Laminar-16-100 depth=3"], "cannot read 'depth=3'"),
        (["--head", "nosuch"], "--head must be a known head-model name"),
        (["--meg", "bogus"], "--meg must be one of 'infinite', 'spherical', got"),
        (["--n-jobs", "0"], "--n-jobs must be finite and > 0"),
    ],
)
def test_simulate_bad_input(argv, match, tmp_path, capsys):
    argv = [a if a != "missing.yaml" else str(tmp_path / a) for a in argv]
    code = main(
        ["simulate", "--cell", "ball_and_stick", "--out", str(tmp_path / "o"), *argv]
        if "--cell" not in argv
        else ["simulate", "--out", str(tmp_path / "o"), *argv]
    )
    assert code == 2
    assert match in capsys.readouterr().err
    assert not (tmp_path / "o").exists(), "nothing is created on bad input"


def test_bad_forward_setting_leaves_an_existing_dataset_alone(tmp_path, capsys):
    """--force replaces a dataset only once every setting has been checked."""
    out = tmp_path / "data"
    out.mkdir()
    (out / "shard-00000.h5").write_bytes(b"a shard of a user")
    (out / "dataset.yaml").write_text("made: earlier\n")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    base = ["simulate", "--cell", "ball_and_stick", "--out", str(out), "--force"]
    for flags in (["--probe", "Laminar-16-10"], ["--head", "nosuch"]):
        assert main([*base, *flags]) == 2
        assert "must be a known" in capsys.readouterr().err
        assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("force: 'no'\n", r"force must be true or false \(a YAML boolean\), got 'no'"),
        ("resume: 1\n", r"resume must be true or false \(a YAML boolean\), got 1"),
        ("foo: [1, 2\n", r"c.yaml: not valid YAML at line 2, column 1"),
        ("- a\n- b\n", r"expected a mapping of options .* got a list"),
        ("probe: 5\n", r"probe must be a string or a list of strings, got 5"),
        ("n_sims: 1.5\n", r"--n-sims must be an integer, got 1.5"),
        ("duration: abc\n", r"--duration must be a number, got 'abc'"),
        (
            "probe: 'Laminar-16-10 position=40,300,0'\n",
            r"--probe must be a known probe name or a YAML path, got 'Laminar-16-10'",
        ),
        ("head: nosuch\n", r"--head must be a known head-model name .* 'nosuch'"),
    ],
)
def test_config_file_values_are_checked(text, match, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text)
    out = tmp_path / "o"
    argv = ["simulate", "--cell", "ball_and_stick", "--out", str(out)]
    assert main([*argv, "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert re.search(match, err), err
    assert "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize(
    ("argv", "match"),
    [
        (["simulate", "--cell", "ball_and_stick"], "--out is required"),
        (["forward", "--probe", "Laminar-16-100"], "--vmem is required"),
        (
            ["forward", "--vmem", "x.h5", "--probe", "Laminar-16-100"],
            "--out is required",
        ),
    ],
)
def test_required_options_from_flags_or_config(argv, match, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{match}: give it on the command line or as '" in err


def test_out_from_the_config_file(tmp_path, capsys):
    # --out given only in the file: accepted (the run then fails on the cell)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(f"cell: nope\nout: {tmp_path / 'from_config'}\n")
    assert main(["simulate", "--config", str(cfg)]) == 2
    err = capsys.readouterr().err
    assert "--cell must be one of" in err and "required" not in err


def test_other_settings_are_named_briefly(tmp_path, capsys):
    from lfp_surrogate.data import DatasetConfig
    from lfp_surrogate.simulate import SimulationConfig

    out = tmp_path / "data"
    out.mkdir()
    DatasetConfig(SimulationConfig(cell="ball_and_stick"), n_sims=3).save(out)
    argv = ["simulate", "--cell", "ball_and_stick", "--n-sims", "2", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert (
        "made with other settings (stored vs given: n_sims: 3 vs 2); continue it "
        "with --resume and its own settings, choose a new folder, or pass --force"
    ) in err
    assert main([*argv, "--resume"]) == 2
    assert "cannot resume" in capsys.readouterr().err


def _truncated_hdf5(path):
    h5py = pytest.importorskip("h5py")
    import numpy as np

    full = path.with_suffix(".full.h5")
    with h5py.File(full, "w") as f:
        f["vmem"] = np.zeros((1, 3, 5000))
    path.write_bytes(full.read_bytes()[:4000])
    return path


@pytest.mark.parametrize("command", ["info", "figures"])
def test_truncated_hdf5_is_a_clear_error(command, tmp_path, capsys):
    path = _truncated_hdf5(tmp_path / "trunc.h5")
    argv = [command, str(path)]
    if command == "figures":
        argv += ["--out", str(tmp_path / "figs")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert f"{path} is not a readable HDF5 file (truncated or corrupt?)" in err
    assert not (tmp_path / "figs").exists()


def test_figures_needs_a_file_and_a_folder(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    (data / "shard-00000.h5").write_bytes(b"")
    assert main(["figures", str(data), "--out", str(tmp_path / "figs")]) == 2
    err = capsys.readouterr().err
    assert f"got the folder {data}; give a file in it, e.g. {data}/shard-0" in err
    taken = tmp_path / "fig.png"
    taken.write_text("mine")
    assert main(["figures", str(data / "shard-00000.h5"), "--out", str(taken)]) == 1
    assert "--out must be a folder for the PNG files, got the file" in (
        capsys.readouterr().err
    )
    assert taken.read_text() == "mine"


def test_forward_refuses_a_folder_as_out(tmp_path, capsys):
    vmem = _truncated_hdf5(tmp_path / "v.h5")
    folder = tmp_path / "signals"
    folder.mkdir()
    argv = ["forward", "--vmem", str(vmem), "--probe", "Laminar-16-100"]
    assert main([*argv, "--out", str(folder), "--force"]) == 2
    assert "--out must be the path of an HDF5 file, got the folder" in (
        capsys.readouterr().err
    )
    assert folder.is_dir()
    assert main([*argv, "--out", str(tmp_path / "s.h5")]) == 2
    assert "is not a readable HDF5 file (truncated or corrupt?)" in (
        capsys.readouterr().err
    )


def test_probes_plot_refuses_a_folder_as_out(tmp_path, capsys):
    argv = ["probes", "--plot", "Laminar-16-100", "--out", str(tmp_path)]
    assert main(argv) == 2
    assert "--out must be a figure file, got the folder" in capsys.readouterr().err


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_unreadable_file_is_a_clear_error(tmp_path, capsys):
    path = _truncated_hdf5(tmp_path / "x.h5")
    path.chmod(0)
    try:
        assert main(["info", str(path)]) == 2
    finally:
        path.chmod(0o644)
    assert "(permission denied)" in capsys.readouterr().err


def test_info_describes_saved_geometry_and_operator(tmp_path, capsys):
    import numpy as np
    import scipy.sparse as sp

    from lfp_surrogate.currents import ImemOperator
    from lfp_surrogate.forward._synthetic import synthetic_geometry

    path = tmp_path / "geometry.npz"
    synthetic_geometry(40).save(path)
    assert main(["info", str(path)]) == 0
    assert "cell geometry of synthetic_pyramidal (40 segments" in (
        capsys.readouterr().out
    )
    op = tmp_path / "op.npz"
    ImemOperator(sp.csr_matrix(np.eye(3)), "abc").save(op)
    assert main(["info", str(op)]) == 0
    assert "imem operator (3 segments, cell hash abc)" in capsys.readouterr().out
    other = tmp_path / "other.npz"
    np.savez(other, a=np.zeros(2))
    assert main(["info", str(other)]) == 2
    assert "is not a geometry or operator file written by CellGeometry.save" in (
        capsys.readouterr().err
    )


def test_config_must_be_a_text_file(tmp_path, capsys):
    binary = tmp_path / "c.yaml"
    binary.write_bytes(b"\xff\xfe\x00")
    argv = ["simulate", "--cell", "ball_and_stick", "--out", str(tmp_path / "o")]
    assert main([*argv, "--config", str(binary)]) == 2
    assert "not a text (UTF-8) YAML file" in capsys.readouterr().err
    assert main([*argv, "--config", str(tmp_path)]) == 2
    assert "--config must be a YAML file, got the folder" in capsys.readouterr().err


def test_config_file_unknown_option(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("n-sim: 3\n")
    code = main(["simulate", "--out", str(tmp_path / "o"), "--config", str(cfg)])
    assert code == 2
    assert "unknown option 'n-sim'" in capsys.readouterr().err


@requires_neuron
@pytest.mark.neuron
def test_simulate_config_then_info_then_refusal(tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "cell: ball_and_stick\nn-sims: 2\nduration: 50\nexc_rate: 6\nn_jobs: 1\n"
    )
    out = tmp_path / "data"
    assert (
        main(["-q", "simulate", "--config", str(cfg), "--seed", "3", "--out", str(out)])
        == 0
    )
    assert main(["info", str(out)]) == 0
    text = capsys.readouterr().out
    assert "ball_and_stick" in text and "2 x 50 ms" in text
    assert "vmem" in text and "(1, 33, 50)" in text and "mV" in text
    # same settings again without --resume: refused, nothing touched
    before = sorted(p.stat().st_mtime_ns for p in out.iterdir())
    assert (
        main(["-q", "simulate", "--config", str(cfg), "--seed", "3", "--out", str(out)])
        == 2
    )
    assert "pass --resume" in capsys.readouterr().err
    assert sorted(p.stat().st_mtime_ns for p in out.iterdir()) == before
    assert (
        main(
            [
                "-q",
                "simulate",
                "--config",
                str(cfg),
                "--seed",
                "3",
                "--out",
                str(out),
                "--resume",
            ]
        )
        == 0
    )


@requires_neuron
@pytest.mark.neuron
def test_config_gives_out_and_forward_strings_then_resume(tmp_path, capsys, caplog):
    out = tmp_path / "data"
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "cell: ball_and_stick\nn-sims: 1\nduration: 20\nn_jobs: 1\n"
        f"out: {out}\nprobe: 'Laminar-16-100 position=40,300,0'\n"
        "head: four_sphere_lfpy_default\n"
    )
    assert main(["simulate", "--config", str(cfg)]) == 0
    assert f"dataset written to {out}" in capsys.readouterr().out
    h5py = pytest.importorskip("h5py")
    with h5py.File(out / "shard-00000.h5") as f:
        assert f["lfp/Laminar-16-100"].shape == (1, 16, 20)
        assert "eeg/four_sphere_lfpy_default" in f
    umask = os.umask(0)
    os.umask(umask)
    mode = (out / "dataset.yaml").stat().st_mode & 0o777
    assert mode == 0o666 & ~umask, f"dataset.yaml mode {mode:o}"

    # resume of a complete dataset, without the forward flags: nothing to do
    bare = ["simulate", "--cell", "ball_and_stick", "--n-sims", "1"]
    bare += ["--duration", "20", "--out", str(out), "--resume"]
    with caplog.at_level("INFO", logger="lfp_surrogate"):
        assert main([*bare, "--n-jobs", "2"]) == 0
    assert f"dataset written to {out}" in capsys.readouterr().out
    assert main(["-q", *bare, "--n-jobs", "1"]) == 0
    assert capsys.readouterr().out == "", "-q silences the closing line"
    text = caplog.text
    assert "Resuming with the forward settings stored in" in text
    assert "(probes Laminar-16-100; heads four_sphere_lfpy_default)" in text
    assert "All 1 shard(s) of" in text and "nothing to do" in text

    # other forward settings: one line names them
    assert main(["-q", *bare, "--probe", "Linear-32-50 position=90,300,0"]) == 2
    err = capsys.readouterr().err
    assert (
        "(stored vs given: forward: probes Laminar-16-100; heads "
        "four_sphere_lfpy_default vs probes Linear-32-50)"
    ) in err
    assert err.count("\n") == 1 and "forward." not in err


def test_info_on_foreign_file(tmp_path, capsys):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    assert main(["info", str(bad)]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
