"""Predict with a trained surrogate: voltages, currents, LFP, CSD, dipole, EEG, MEG.

Examples
--------
>>> from lfp_surrogate.predict import predict
>>> pred = predict("l5_ttpc1", duration=2000, seed=1,
...                forward={"probes": ["Neuropixels-384"], "meg": ["spherical"]})
>>> pred.vmem.shape, pred.dipole.shape  # (1, 913, 2000) mV, (1, 3, 2000) nA·µm
"""

from ._inputs import (
    InputOutOfDistributionWarning,
    check_input_distribution,
    input_features,
    input_reference,
    read_inputs,
    reference_from_inputs,
    spikes_from_locations,
)
from ._predict import PREDICTION_KIND, Prediction, load_prediction, predict

__all__ = [
    "PREDICTION_KIND",
    "InputOutOfDistributionWarning",
    "Prediction",
    "check_input_distribution",
    "input_features",
    "input_reference",
    "load_prediction",
    "predict",
    "read_inputs",
    "reference_from_inputs",
    "spikes_from_locations",
]
