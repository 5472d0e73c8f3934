"""Validate a surrogate against full NEURON/LFPy runs of the same inputs."""

from ._figures import FIGURE_NAMES, per_segment_rmse, validation_figures
from ._validate import BANDS, OOD_SCENARIOS, format_summary, validate

__all__ = [
    "BANDS",
    "FIGURE_NAMES",
    "OOD_SCENARIOS",
    "format_summary",
    "per_segment_rmse",
    "validate",
    "validation_figures",
]
