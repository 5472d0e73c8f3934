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
