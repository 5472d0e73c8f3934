"""Populations of surrogate cells: layout, batched prediction, summed signals.

A :class:`Population` is plain data: each cell's surrogate (a model name or
folder), soma position (µm) and rotation (degrees) in a frame whose origin
lies on the pial surface, and a seed for the cells' own inputs.
:func:`column_layout` draws a cortical column at a stated density.
:func:`predict_population` runs each surrogate type's cells through one
network call per batch and sums their LFP, CSD, dipole, EEG and MEG through
per-cell forward matrices (:class:`PopulationForward`);
:func:`simulate_population` computes the same signals from one NEURON run
per cell, the reference the surrogates are judged against.
"""

from ._forward import PopulationForward
from ._population import (
    UM3_PER_MM3,
    ColumnLayout,
    Population,
    column_layout,
    population_inputs,
)
from ._predict import PopulationSignals, predict_population, simulate_population

__all__ = [
    "UM3_PER_MM3",
    "ColumnLayout",
    "Population",
    "PopulationForward",
    "PopulationSignals",
    "column_layout",
    "population_inputs",
    "predict_population",
    "simulate_population",
]
