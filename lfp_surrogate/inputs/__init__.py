"""Synaptic input: statistics, seeded generation and a sparse spike container."""

from ._spikes import SpikeTrains
from ._statistics import (
    SYNAPTIC_REGIONS,
    InputStatistics,
    generate_inputs,
    simulation_seeds,
)

__all__ = [
    "SYNAPTIC_REGIONS",
    "InputStatistics",
    "SpikeTrains",
    "generate_inputs",
    "simulation_seeds",
]
