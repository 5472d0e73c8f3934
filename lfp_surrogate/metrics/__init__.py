"""Accuracy metrics of surrogates against NEURON/LFPy ground truth."""

from ._metrics import (
    bootstrap_ci,
    by_region,
    clipped_rmse,
    lowpass,
    neighbour_differences,
    per_channel,
    spike_auc,
    spike_time_match,
    tpr_at_fpr,
)

__all__ = [
    "bootstrap_ci",
    "by_region",
    "clipped_rmse",
    "lowpass",
    "neighbour_differences",
    "per_channel",
    "spike_auc",
    "spike_time_match",
    "tpr_at_fpr",
]
