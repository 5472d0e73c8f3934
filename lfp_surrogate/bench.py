"""Throughput benchmark: the surrogate against NEURON on the same cores.

:func:`throughput` measures simulated cell-seconds per wall-clock second of
the surrogate (network alone, currents, forward models and the whole path to
LFP, dipole and EEG) at several batch sizes and of the fastest NEURON path to
the same outputs, in one run; :func:`format_throughput` prints a summary.
The command line is ``lfp-surrogate bench``.
"""

from ._bench import DEFINITION, THROUGHPUT_KIND, format_throughput, throughput

__all__ = ["DEFINITION", "THROUGHPUT_KIND", "format_throughput", "throughput"]
