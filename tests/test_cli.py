"""The command line, called with argument lists."""

from __future__ import annotations

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
        (["--cell", "nope"], "cell must be one of"),
        (["--duration", "0"], "duration must be finite and > 0"),
        (["--n-sims", "0"], "n_sims must be finite and > 0"),
        (["--interval", "0.3"], "interval must be a positive integer multiple of dt"),
        (["--exc-rate", "-1"], "exc_rate must be finite and >= 0"),
        (["--config", "missing.yaml"], "--config: no such file"),
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


def test_info_on_foreign_file(tmp_path, capsys):
    bad = tmp_path / "x.txt"
    bad.write_text("hello")
    assert main(["info", str(bad)]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err
