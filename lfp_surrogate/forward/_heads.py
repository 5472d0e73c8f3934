"""Head models (``head_models/*.yaml``) and the cell's place in the head."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import yaml

from .._logging import logger
from .._validation import check_option, check_positive, check_type
from ._resources import HEAD_MODEL_PATH_ENV, data_dirs, yaml_files
from ._transforms import (
    _unit,
    axis_rotation,
    rotation_between,
    segment_ends,
    transform_geometry,
)

#: Kinds of head model.
HEAD_KINDS = ("four_sphere", "infinite", "nyhead")
#: Where the dipole of the cell sits for the head models.
DIPOLE_LOCATIONS = ("soma", "centroid")


@dataclass(frozen=True)
class HeadModel:
    """A named head model read from ``head_models/*.yaml``.

    Parameters
    ----------
    name : str
        Its name (the file stem).
    kind : {"four_sphere", "infinite", "nyhead"}
        Four concentric shells (LFPykit ``FourSphereVolumeConductor``), an
        infinite homogeneous medium (``InfiniteVolumeConductor``), or the
        New York head (``NYHeadModel``, a user-supplied file).
    radii : tuple of 4 float | None
        Outer radii of brain, CSF, skull and scalp (µm). For ``infinite``
        only the brain radius (cell placement) and the scalp radius
        (electrodes) are used.
    sigmas : tuple of 4 float | None
        Conductivities of brain, CSF, skull and scalp (S/m), four-sphere
        only.
    sigma : float | None
        Conductivity of the infinite medium (S/m).
    reference : str
        Where the values come from.
    doi : str
        DOI of ``reference``.
    description : str
        One line for listings.
    url : str | None
        Download page of a head-model file (New York head).
    source : str
        The YAML file it was read from.
    """

    name: str
    kind: str
    reference: str
    doi: str
    description: str = ""
    radii: tuple | None = None
    sigmas: tuple | None = None
    sigma: float | None = None
    url: str | None = None
    file_name: str | None = None
    source: str = field(default="", compare=False)

    @property
    def brain_radius(self) -> float:
        """Outer radius of the brain shell (µm)."""
        return float(self.radii[0])

    @property
    def scalp_radius(self) -> float:
        """Outer radius of the scalp, where EEG electrodes sit (µm)."""
        return float(self.radii[-1])


def head_model_dirs() -> list[Path]:
    """Folders searched for head-model YAML files, in order.

    ``$LFP_SURROGATE_HEAD_MODEL_PATH``, the repository's ``head_models/``
    and the packaged ``lfp_surrogate/_data/head_models``, where they exist.
    """
    return data_dirs("head_models", HEAD_MODEL_PATH_ENV)


def list_head_models() -> list[tuple[str, str]]:
    """Names of the head models with the file each comes from.

    Returns
    -------
    models : list of (str, str)
        ``(name, path)`` pairs, sorted by name.
    """
    return [
        (name, str(path))
        for name, path in sorted(yaml_files(head_model_dirs()).items())
    ]


def _bad(source, name, need, value):
    raise ValueError(
        f"head model file {source}: field {name!r} must be {need}, got {value!r}"
    )


def _numbers(value, n: int, source: str, name: str, unit: str) -> tuple:
    ok = (
        isinstance(value, list)
        and len(value) == n
        and all(
            isinstance(v, numbers.Real)
            and not isinstance(v, bool)
            and np.isfinite(v)
            and v > 0
            for v in value
        )
    )
    if not ok:
        _bad(source, name, f"{n} positive numbers ({unit})", value)
    return tuple(float(v) for v in value)


def _looks_like_path(text: str) -> bool:
    return Path(text).suffix in (".yaml", ".yml") or os.sep in text


def check_head_name(head: str, name: str = "head") -> str:
    """Check that ``head`` is a known head-model name, or looks like a path.

    Parameters
    ----------
    head : str
        A name from :func:`list_head_models` or a YAML path (ends in
        ``.yaml``/``.yml`` or holds a path separator; read when loaded).
    name : str
        The parameter, for the message.

    Returns
    -------
    head : str

    Raises
    ------
    ValueError
        For an unknown name, listing the known ones.
    """
    if _looks_like_path(head):
        return head
    found = yaml_files(head_model_dirs())
    if head not in found:
        raise ValueError(
            f"{name} must be a known head-model name or a YAML path, got "
            f"{head!r}. Known head models: {', '.join(sorted(found))}"
        )
    return head


def load_head_model(head) -> HeadModel:
    """Load a head model by name or from a YAML file.

    Parameters
    ----------
    head : str | os.PathLike | HeadModel
        A name from :func:`list_head_models` or a YAML path with fields
        ``kind``, ``reference``, ``doi`` and, by kind, ``radii`` (µm, 4
        increasing), ``sigmas`` (S/m, 4) or ``sigma`` (S/m); optional
        ``description``, ``url``, ``file_name``.

    Returns
    -------
    HeadModel

    Raises
    ------
    ValueError
        For an unknown name or a malformed file (naming file and field).
    """
    if isinstance(head, HeadModel):
        return head
    check_type(head, (str, os.PathLike), "head", "a head-model name or YAML path")
    text = os.fspath(head)
    path = Path(text).expanduser()
    if _looks_like_path(text):
        if not path.is_file():
            raise FileNotFoundError(f"head: no such head-model file: {path}")
    else:
        path = yaml_files(head_model_dirs()).get(check_head_name(text))
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except yaml.YAMLError as err:
        raise ValueError(f"head model file {path}: not valid YAML ({err})") from None
    return _parse_head_model(data, path)


def _parse_head_model(data, path: Path) -> HeadModel:
    source = str(path)
    if not isinstance(data, dict):
        raise ValueError(f"head model file {source}: must hold a mapping of fields")
    kind = data.get("kind")
    if kind not in HEAD_KINDS:
        _bad(source, "kind", f"one of {', '.join(HEAD_KINDS)}", kind)
    for key in ("reference", "doi"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            _bad(source, key, "a non-empty string", data.get(key))
    for key in ("description", "url", "file_name"):
        if data.get(key) is not None and not isinstance(data[key], str):
            _bad(source, key, "a string", data[key])
    radii = sigmas = sigma = None
    if kind in ("four_sphere", "infinite"):
        radii = _numbers(data.get("radii"), 4, source, "radii", "µm")
        if not all(a < b for a, b in zip(radii, radii[1:])):
            _bad(
                source,
                "radii",
                "strictly increasing (brain < CSF < skull < scalp)",
                list(radii),
            )
    if kind == "four_sphere":
        sigmas = _numbers(data.get("sigmas"), 4, source, "sigmas", "S/m")
    if kind == "infinite":
        sigma = _numbers([data.get("sigma")], 1, source, "sigma", "S/m")[0]
    name = data.get("name", path.stem)
    if not isinstance(name, str):
        _bad(source, "name", "a string", name)
    return HeadModel(
        name=name,
        kind=kind,
        reference=data["reference"].strip(),
        doi=data["doi"].strip(),
        description=(data.get("description") or "").strip(),
        radii=radii,
        sigmas=sigmas,
        sigma=sigma,
        url=data.get("url"),
        file_name=data.get("file_name"),
        source=source,
    )


@dataclass(frozen=True)
class HeadPlacement:
    """Where and how the cell sits in the head, stated once for EEG and MEG.

    The cell's apical axis (+y) is turned onto the local radial direction of
    the head at ``direction``; the soma sits ``depth`` below the brain
    surface.

    Parameters
    ----------
    direction : tuple of 3 float | str
        Direction from the head centre to the cell (any point along it, e.g.
        a point on the brain surface, µm), or the name of an EEG electrode
        (the cell sits under it). Head frame: x right, y front, z up
        (MNE's head coordinates) for montages.
    depth : float | None
        Soma depth below the brain surface (µm). ``None``: the smallest depth
        that keeps the whole cell ``margin`` below the surface.
    tilt : float
        Tilt of the apical axis away from radial (degrees): 0 radial (gyral
        crown), 90 tangential (sulcal wall). The cell turns about its own
        x-axis, so the apical dendrite leans towards the cell's +z side.
    roll : float
        Rotation of the cell about its apical axis (degrees), applied first.
    margin : float
        Gap between the cell and the brain surface for the default depth (µm).
    dipole_location : {"soma", "centroid"}
        Where the cell's current dipole sits: the soma, or the
        membrane-area-weighted centre of the segment midpoints.
    """

    direction: tuple | str = (0.0, 0.0, 1.0)
    depth: float | None = None
    tilt: float = 0.0
    roll: float = 0.0
    margin: float = 50.0
    dipole_location: str = "soma"

    def __post_init__(self):
        if isinstance(self.direction, str):
            if not self.direction:
                raise ValueError("direction must be 3 numbers or an electrode name")
        else:
            _unit(self.direction, "direction")  # 3 finite numbers, not all 0
            vec = np.asarray(self.direction, dtype=float).reshape(-1)
            object.__setattr__(self, "direction", tuple(float(v) for v in vec))
        if self.depth is not None:
            check_positive(self.depth, "depth")
            object.__setattr__(self, "depth", float(self.depth))
        for name in ("tilt", "roll"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(f"{name} must be a number (degrees), got {value!r}")
            object.__setattr__(self, name, float(value))
        check_positive(self.margin, "margin", strict=False)
        object.__setattr__(self, "margin", float(self.margin))
        check_option(self.dipole_location, DIPOLE_LOCATIONS, "dipole_location")

    def to_dict(self) -> dict:
        """Plain dict for YAML."""
        return {
            "direction": self.direction
            if isinstance(self.direction, str)
            else list(self.direction),
            "depth": self.depth,
            "tilt": self.tilt,
            "roll": self.roll,
            "margin": self.margin,
            "dipole_location": self.dipole_location,
        }

    @classmethod
    def from_dict(cls, data) -> HeadPlacement:
        """Build from :meth:`to_dict`; absent keys take their defaults."""
        check_type(data, dict, "head_placement", "a mapping")
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(
                f"head_placement has unknown key(s) {unknown}; allowed: "
                f"{sorted(cls.__dataclass_fields__)}"
            )
        data = dict(data)
        if isinstance(data.get("direction"), list):
            data["direction"] = tuple(data["direction"])
        return cls(**data)


class CellInHead(NamedTuple):
    """The cell placed in a head (µm, head frame).

    Attributes
    ----------
    rotation : ndarray, shape (3, 3)
        Rotation of the cell about its soma.
    soma : ndarray, shape (3,)
        Soma position.
    radial : ndarray, shape (3,)
        Unit radial direction at the cell.
    depth : float
        Soma depth below the brain surface.
    dipole_location : ndarray, shape (3,)
        Where the current dipole sits.
    cell : CellGeometry
        The placed cell.
    """

    rotation: np.ndarray
    soma: np.ndarray
    radial: np.ndarray
    depth: float
    dipole_location: np.ndarray
    cell: object


def cell_rotation_in_head(radial, placement: HeadPlacement) -> np.ndarray:
    """Rotation, shape (3, 3), that turns the cell's +y onto ``radial``.

    ``R = R_tilt @ R_align @ R_roll``: roll about +y, the smallest rotation
    of +y onto the radial direction, then tilt about the turned x-axis.
    """
    radial = _unit(radial, "radial direction")
    roll = axis_rotation((0.0, 1.0, 0.0), placement.roll)
    align = rotation_between((0.0, 1.0, 0.0), radial)
    x_axis = align @ roll @ np.array([1.0, 0.0, 0.0])
    return axis_rotation(x_axis, placement.tilt) @ align @ roll


def resolve_direction(placement: HeadPlacement, electrodes=None) -> np.ndarray:
    """Unit direction of ``placement`` (an electrode name looked up)."""
    if not isinstance(placement.direction, str):
        return _unit(placement.direction, "direction")
    if electrodes is None:
        raise ValueError(
            f"direction {placement.direction!r} names an electrode, but no EEG "
            f"electrodes are given; pass 3 numbers or EEG electrodes"
        )
    names = list(electrodes.names)
    if placement.direction not in names:
        raise ValueError(
            f"direction must be 3 numbers or one of the electrode names "
            f"{', '.join(names[:20])}{' ...' if len(names) > 20 else ''}, got "
            f"{placement.direction!r}"
        )
    return _unit(electrodes.positions[names.index(placement.direction)], "direction")


def place_in_head(
    geometry, placement: HeadPlacement, brain_radius: float, *, electrodes=None
) -> CellInHead:
    """Put the cell under the brain surface of a spherical head.

    Parameters
    ----------
    geometry : CellGeometry
        The cell in its own frame (soma at the origin, apical axis +y).
    placement : HeadPlacement
    brain_radius : float
        Radius of the brain sphere (µm).
    electrodes : EEGElectrodes | None
        Needed when ``placement.direction`` names an electrode.

    Returns
    -------
    CellInHead

    Raises
    ------
    ValueError
        When any part of the cell (end points plus radius) lies outside the
        brain sphere.
    """
    check_positive(brain_radius, "brain_radius")
    radial = resolve_direction(placement, electrodes)
    rot = cell_rotation_in_head(radial, placement)

    # height of every segment end above the soma, along the radial direction
    start, end = segment_ends(geometry)
    pts = np.concatenate([start, end]) @ rot.T
    radius = np.concatenate([geometry.d, geometry.d]) / 2
    height = pts @ radial + radius
    depth = placement.depth
    if depth is None:
        depth = max(float(height.max()), 0.0) + placement.margin
    if depth >= brain_radius:
        raise ValueError(
            f"depth must be less than the brain radius ({brain_radius:g} µm), got "
            f"{depth:g} µm"
        )
    soma = (brain_radius - depth) * radial
    reach = np.linalg.norm(pts + soma, axis=1) + radius
    excess = float(reach.max() - brain_radius)
    if excess >= 0:
        needed = depth + excess + placement.margin
        raise ValueError(
            f"cell outside the brain: at depth {depth:g} µm the cell sticks out "
            f"of the brain sphere (radius {brain_radius:g} µm) by {excess:.1f} "
            f"µm; use depth >= {needed:.0f} µm or depth=None (fits the cell)"
        )
    cell = transform_geometry(geometry, rot, soma)
    if placement.dipole_location == "soma":
        dipole_location = soma.copy()
    else:
        mid = cell.mid
        dipole_location = (geometry.area[:, None] * mid).sum(0) / geometry.area.sum()
    logger.debug(
        "cell in head: depth %.1f µm, tilt %.1f deg, soma %s µm",
        depth,
        placement.tilt,
        np.round(soma, 1).tolist(),
    )
    return CellInHead(rot, soma, radial, float(depth), dipole_location, cell)
