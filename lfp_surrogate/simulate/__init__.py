"""Full NEURON simulations (ground truth): every segment's vmem and imem."""

from ._config import SimulationConfig
from ._run import AMPA, GABA_A, NMDA, SimulationResult, Simulator, bin_times

__all__ = [
    "AMPA",
    "GABA_A",
    "NMDA",
    "SimulationConfig",
    "SimulationResult",
    "Simulator",
    "bin_times",
]
