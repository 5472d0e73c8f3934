"""Forward models: transmembrane currents to LFP, CSD, dipole, EEG and MEG.

Each measurement is a matrix precomputed once per cell placement with
LFPykit (no NEURON, no LFPy) and applied to imem in numpy or batched,
differentiable torch on any device. :class:`ForwardModel` bundles them;
:class:`ForwardConfig` describes them and round-trips to YAML.
"""

from ._eeg import (
    NYHEAD_LOCATIONS,
    NYHEAD_URL,
    EEGElectrodes,
    EEGOperator,
    nyhead_default_path,
    project_to_sphere,
    read_nyhead,
)
from ._heads import (
    CellInHead,
    HeadModel,
    HeadPlacement,
    head_model_dirs,
    list_head_models,
    load_head_model,
    place_in_head,
)
from ._lfp import (
    METHODS,
    CSDOperator,
    DipoleOperator,
    LFPOperator,
    potential_matrix,
)
from ._meg import FT_PER_NA_PER_UM, MEG_MODELS, MEGOperator, MEGSensors
from ._mne import eeg_to_mne, meg_to_mne
from ._model import ForwardConfig, ForwardModel
from ._operator import LinearForward
from ._placement import ContactInsideCellWarning, ProbePlacement, contacts_inside_cell
from ._plot import plot_cell_in_head, plot_csd, plot_lfp, plot_probe_morphology
from ._probes import Probe, list_probes, load_probe, probe_dirs, validate_probe_info
from ._transforms import rotation_matrix

__all__ = [
    "FT_PER_NA_PER_UM",
    "MEG_MODELS",
    "METHODS",
    "NYHEAD_LOCATIONS",
    "NYHEAD_URL",
    "CSDOperator",
    "CellInHead",
    "ContactInsideCellWarning",
    "DipoleOperator",
    "EEGElectrodes",
    "EEGOperator",
    "ForwardConfig",
    "ForwardModel",
    "HeadModel",
    "HeadPlacement",
    "LFPOperator",
    "LinearForward",
    "MEGOperator",
    "MEGSensors",
    "Probe",
    "ProbePlacement",
    "contacts_inside_cell",
    "eeg_to_mne",
    "head_model_dirs",
    "list_head_models",
    "list_probes",
    "load_head_model",
    "load_probe",
    "meg_to_mne",
    "nyhead_default_path",
    "place_in_head",
    "plot_cell_in_head",
    "plot_csd",
    "plot_lfp",
    "plot_probe_morphology",
    "potential_matrix",
    "probe_dirs",
    "project_to_sphere",
    "read_nyhead",
    "rotation_matrix",
    "validate_probe_info",
]
