"""Training of surrogates, and finished models on disk (safetensors + JSON)."""

from ._config import TrainConfig
from ._fit import train
from ._saved import (
    MODEL_KIND,
    SavedModel,
    load_model,
    resolve_model,
    save_model,
    shipped_models,
)

__all__ = [
    "MODEL_KIND",
    "SavedModel",
    "TrainConfig",
    "load_model",
    "resolve_model",
    "save_model",
    "shipped_models",
    "train",
]
