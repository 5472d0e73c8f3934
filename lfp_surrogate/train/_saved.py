"""A finished surrogate on disk: weights in safetensors plus a JSON card.

``DIR/model.safetensors`` holds the network's weights and buffers (``model.``
prefix), the cell's geometry (``cell.geometry.``) and its exact vmem -> imem
operator (``cell.imem_operator.``), so that prediction needs no NEURON.
``DIR/model.json`` holds the architecture, the training settings, the cell's
name and hash, the hashes of the training inputs and the held-out metrics.
Nothing is unpickled when loading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path

MODEL_KIND = "lfp_surrogate.model"
FORMAT_VERSION = 1
#: Environment variable with extra folders of named models (``os.pathsep``).
MODEL_PATH_ENV = "LFP_SURROGATE_MODEL_PATH"
_GEOMETRY = ("x", "y", "z", "d", "area", "length", "region", "sec_index", "seg_x")


@dataclass
class SavedModel:
    """A loaded surrogate: network, cell and card.

    Attributes
    ----------
    model : lfp_surrogate.models.Surrogate
        The network (eval mode, CPU).
    geometry : CellGeometry
        The cell it was trained for.
    imem_operator : ImemOperator
        The cell's exact vmem -> imem operator.
    card : dict
        The JSON card (config, training data, metrics, attributions).
    """

    model: object
    geometry: object
    imem_operator: object
    card: dict = field(default_factory=dict)

    @property
    def cell_hash(self) -> str:
        """Hash of the cell the model was trained for."""
        return self.geometry.cell_hash

    @property
    def training_input_hashes(self) -> set:
        """Hashes of every input the model was trained or validated on."""
        return set(self.card.get("training_input_hashes", []))


def save_model(
    folder, model, geometry, imem_operator, card: dict, *, overwrite: bool = False
) -> Path:
    """Write a finished model (atomically, refusing to overwrite).

    Parameters
    ----------
    folder : path-like
        Output folder (created).
    model : Surrogate
    geometry : CellGeometry
    imem_operator : ImemOperator
    card : dict
        JSON-serialisable description (merged with the kind, format, model
        config and cell identity).
    overwrite : bool
        Replace existing files.

    Returns
    -------
    folder : Path
    """
    import torch
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    weights, meta = folder / "model.safetensors", folder / "model.json"
    if not overwrite and (weights.exists() or meta.exists()):
        raise FileExistsError(
            f"{folder} already holds a model; pass --force to replace it"
        )
    tensors = {
        f"model.{k}": v.detach().cpu().contiguous()
        for k, v in model.state_dict().items()
    }
    for key in _GEOMETRY:
        tensors[f"cell.geometry.{key}"] = torch.as_tensor(
            np.ascontiguousarray(getattr(geometry, key))
        )
    m = imem_operator.matrix.tocsr()
    for key in ("data", "indices", "indptr"):
        tensors[f"cell.imem_operator.{key}"] = torch.as_tensor(
            np.ascontiguousarray(getattr(m, key))
        )
    full = dict(card)
    full.update(
        kind=MODEL_KIND,
        format_version=FORMAT_VERSION,
        model_config=model.config.to_dict(),
        cell=dict(
            name=geometry.name,
            cell_hash=geometry.cell_hash,
            n_seg=geometry.n_seg,
            sec_names=list(geometry.sec_names),
        ),
        n_parameters=int(model.n_parameters),
        receptive_field_ms=float(model.receptive_field_ms),
    )
    with atomic_path(weights, suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata={"kind": MODEL_KIND})
    with atomic_path(meta, suffix=".json") as tmp:
        tmp.write_text(json.dumps(full, indent=2))
    return folder


def _model_dirs() -> list[Path]:
    """Folders whose sub-folders are models known by name, searched in order."""
    import importlib.resources
    import os

    dirs = [Path(p) for p in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p]
    dirs.append(
        Path(str(importlib.resources.files("lfp_surrogate"))) / "_data" / "models"
    )
    return [d for d in dirs if d.is_dir()]


def shipped_models() -> dict[str, Path]:
    """The models known by name: the ones shipped in the package, and those in
    the folders of the environment variable ``LFP_SURROGATE_MODEL_PATH``.

    Returns
    -------
    models : dict of str to Path
        Name -> model folder (earlier folders win when a name appears twice).
    """
    found: dict[str, Path] = {}
    for folder in _model_dirs():
        for sub in sorted(folder.iterdir()):
            if (sub / "model.json").is_file() and (sub / "model.safetensors").is_file():
                found.setdefault(sub.name, sub)
    return found


def resolve_model(name_or_path) -> Path:
    """The folder of a model given by name (see :func:`shipped_models`) or path.

    Parameters
    ----------
    name_or_path : str | path-like
        A shipped model's name, a model folder or its ``model.json``.

    Returns
    -------
    folder : Path
    """
    path = Path(name_or_path)
    if path.exists():
        return path.parent if path.suffix == ".json" else path
    known = shipped_models()
    if str(name_or_path) in known:
        return known[str(name_or_path)]
    raise FileNotFoundError(
        f"model: {str(name_or_path)!r} is neither a model folder nor the name of a "
        f"shipped model (known: {sorted(known) or 'none'}); give the folder "
        f"written by `lfp-surrogate train`"
    )


def load_model(path, *, cell_hash: str | None = None) -> SavedModel:
    """Load a model saved by :func:`save_model` (no unpickling).

    Parameters
    ----------
    path : str | path-like
        The name of a shipped model (``"l5_ttpc1"``, see
        :func:`shipped_models`), a model folder or its ``model.json``.
    cell_hash : str | None
        When given, a model made for another cell is refused.

    Returns
    -------
    saved : SavedModel
    """
    import scipy.sparse as sp
    from safetensors.torch import load_file

    from ..cells import CellGeometry
    from ..currents import ImemOperator
    from ..models import ModelConfig, build_model

    folder = resolve_model(path)
    meta, weights = folder / "model.json", folder / "model.safetensors"
    for p in (meta, weights):
        if not p.exists():
            raise FileNotFoundError(
                f"{folder} is not a saved surrogate: {p.name} is missing"
            )
    try:
        card = json.loads(meta.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{meta} is not valid JSON: {err}") from None
    for key in ("kind", "format_version", "model_config", "cell"):
        if key not in card:
            raise ValueError(f"{meta}: field {key!r} is missing")
    if card["kind"] != MODEL_KIND:
        raise ValueError(f"{meta}: kind is {card['kind']!r}, expected {MODEL_KIND!r}")
    if int(card["format_version"]) > FORMAT_VERSION:
        raise ValueError(
            f"{meta}: format_version {card['format_version']} is newer than this "
            f"lfp_surrogate reads ({FORMAT_VERSION}); upgrade the package"
        )
    if cell_hash is not None and card["cell"]["cell_hash"] != cell_hash:
        raise ValueError(
            f"the model {folder} was trained for cell {card['cell']['name']!r} "
            f"(hash {card['cell']['cell_hash']}), not for this cell (hash "
            f"{cell_hash}); use a model trained for this cell"
        )
    tensors = load_file(str(weights))
    config = ModelConfig.from_dict(card["model_config"], source=str(meta))
    model = build_model(config)
    state = {
        k[len("model.") :]: v for k, v in tensors.items() if k.startswith("model.")
    }
    model.load_state_dict(state)
    model.eval()
    geo = {k: tensors[f"cell.geometry.{k}"].numpy() for k in _GEOMETRY}
    geometry = CellGeometry(
        name=card["cell"]["name"],
        cell_hash=card["cell"]["cell_hash"],
        sec_names=tuple(card["cell"]["sec_names"]),
        **geo,
    )
    n = geometry.n_seg
    m = sp.csr_matrix(
        tuple(
            tensors[f"cell.imem_operator.{k}"].numpy()
            for k in ("data", "indices", "indptr")
        ),
        shape=(n, n),
    )
    return SavedModel(model, geometry, ImemOperator(m, geometry.cell_hash), card)
