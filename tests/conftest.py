"""Shared fixtures: small cells and short runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("NEURON_MODULE_OPTIONS", "-nogui")
os.environ.setdefault("LFP_SURROGATE_NO_PROGRESS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]


def _has_neuron() -> bool:
    try:
        import neuron  # noqa: F401
    except ImportError:
        return False
    return True


def _has_mearec() -> bool:
    try:
        import MEArec  # noqa: F401
    except ImportError:
        return False
    return True


requires_neuron = pytest.mark.skipif(not _has_neuron(), reason="NEURON not installed")
requires_mearec = pytest.mark.skipif(
    not _has_mearec(), reason="mearec (Blue Brain cell models) not installed"
)


def run_python(code: str, *args, timeout=600, env=None) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (own NEURON state); fail on error."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=full_env,
        cwd=REPO,
    )
    if proc.returncode != 0:
        raise AssertionError(
            f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


@pytest.fixture(scope="session")
def ball_and_stick():
    """The small test cell, built once in this process."""
    if not _has_neuron():
        pytest.skip("NEURON not installed")
    from lfp_surrogate.cells import build_cell

    return build_cell("ball_and_stick")


@pytest.fixture(scope="session")
def bas_simulator():
    """A simulator of the small test cell (200 ms runs)."""
    if not _has_neuron():
        pytest.skip("NEURON not installed")
    from lfp_surrogate.simulate import SimulationConfig, Simulator

    return Simulator(SimulationConfig(cell="ball_and_stick", duration=200.0))


@pytest.fixture(scope="session")
def strong_input():
    """Input statistics that make the small cell fire."""
    from lfp_surrogate.inputs import InputStatistics

    return InputStatistics(exc_rate=6.0, inh_rate=2.0)


#: A tiny network: trains in seconds on the small cell.
TINY = dict(widths=16, dilations=(1, 2, 4), tower_width=8, expert_width=8, n_experts=3)


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory, strong_input):
    """Training data of the small cell: 3 x 300 ms under strong input, seed 5."""
    if not _has_neuron():
        pytest.skip("NEURON not installed")
    from lfp_surrogate.data import DatasetConfig, generate_dataset
    from lfp_surrogate.simulate import SimulationConfig

    config = DatasetConfig(
        SimulationConfig(cell="ball_and_stick", duration=300.0),
        inputs=strong_input,
        n_sims=3,
        seed=5,
    )
    out = tmp_path_factory.mktemp("tiny") / "train"
    return generate_dataset(out, config, n_jobs=1, verbose=False)


@pytest.fixture(scope="session")
def tiny_model(tiny_data, tmp_path_factory):
    """Folder of a tiny MH surrogate trained one epoch on ``tiny_data``."""
    import torch

    from lfp_surrogate.train import TrainConfig, train

    out = tmp_path_factory.mktemp("tiny_model")
    cfg = TrainConfig(window=100, batch_size=3, max_epochs=1, val_fraction=0.34)
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train(
            tiny_data, out, arch="mh", model_overrides=TINY, config=cfg, verbose=False
        )
    finally:
        torch.set_num_threads(old)
    return out
