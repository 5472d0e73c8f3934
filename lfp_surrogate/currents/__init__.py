"""Exact transmembrane currents from segment voltages (Kirchhoff's law).

The surrogate predicts the membrane potential of every segment; the
transmembrane currents follow exactly as the net axial current into each
segment, ``imem = M @ vmem``, through a sparse operator ``M`` built once from
the cell's NEURON sections and applied to numpy arrays or torch tensors
without NEURON.
"""

from ._build import build_imem_operator, check_integrator
from ._operator import ImemOperator

__all__ = ["ImemOperator", "build_imem_operator", "check_integrator"]
