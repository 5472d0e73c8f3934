"""Accuracy metrics of surrogates against NEURON/LFPy ground truth."""

from ._evaluate import (
    DEFAULT_EVAL_PROBE,
    DEFAULT_EVAL_SPAN,
    REPORT_KIND,
    evaluate,
    format_report,
    save_report,
)
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
    "DEFAULT_EVAL_PROBE",
    "DEFAULT_EVAL_SPAN",
    "REPORT_KIND",
    "bootstrap_ci",
    "by_region",
    "clipped_rmse",
    "evaluate",
    "format_report",
    "lowpass",
    "neighbour_differences",
    "per_channel",
    "save_report",
    "spike_auc",
    "spike_time_match",
    "tpr_at_fpr",
]
