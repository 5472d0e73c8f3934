"""Placing a probe and the cell relative to each other (µm, degrees)."""

from __future__ import annotations

import numbers
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._logging import logger
from .._validation import check_option, check_positive, check_type
from ._transforms import (
    point_segment_distance,
    rotation_matrix,
    segment_ends,
    transform_geometry,
    transform_points,
)

#: Version of the attribute layout written by :meth:`ProbePlacement.attrs`.
PLACEMENT_VERSION = 1

#: What to do when a contact lies inside the cell's membrane.
INSIDE_POLICIES = ("raise", "warn", "ignore")


class ContactInsideCellWarning(UserWarning):
    """A probe contact lies inside a segment's membrane cylinder."""


def _vector3(value, name: str) -> tuple[float, float, float]:
    try:
        arr = np.asarray(value, dtype=float).reshape(-1)
    except (TypeError, ValueError):
        arr = np.array([])
    if arr.shape != (3,) or not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be 3 finite numbers (x, y, z), got {value!r}")
    return tuple(float(v) for v in arr)


def _default_label(probe: str) -> str:
    text = str(probe)
    if text.endswith((".yaml", ".yml")) or os.sep in text:
        return Path(text).stem
    return text


@dataclass(frozen=True)
class ProbePlacement:
    """A probe and the cell placed relative to each other.

    The cell is first rotated about its soma (the origin) by
    ``cell_rotation`` and moved to ``cell_position``. The probe, centred on
    its contacts, is rotated about its centre by ``rotation`` and its centre
    put at ``cell_position + position``, i.e. ``position`` is the probe
    centre relative to the soma, in world axes. Rotations are right-handed,
    in degrees, about the fixed x, then y, then z axis
    (``LFPy.Cell.set_rotation``'s convention).

    Parameters
    ----------
    probe : str
        A probe name from :func:`list_probes` (an unknown name is refused at
        once) or the path of a probe YAML (read when the probe is loaded).
    label : str | None
        Name under which this placed probe's results are stored; defaults to
        the probe name (file stem for a path). Two placements of one probe
        need two labels.
    position : tuple of 3 float
        Probe centre relative to the soma (µm).
    rotation : tuple of 3 float
        Probe rotation about x, y, z (degrees).
    cell_position : tuple of 3 float
        Soma position (µm).
    cell_rotation : tuple of 3 float
        Cell rotation about x, y, z (degrees), about the soma.
    n_points : int
        Points per contact averaged for extended contacts; 1 treats each
        contact as a point at its centre.
    seed : int
        Seed of the ``numpy.random.Generator`` that draws the contact points
        (used when ``n_points > 1``).

    Notes
    -----
    MEAutility's probes lie along z with their contacts facing -x; our cells
    have their apical axis along +y. ``rotation=(-90, 0, 0)`` lays a
    MEAutility shank along +y. Our own laminar probes (``probes/``) already
    lie along y.
    """

    probe: str
    label: str | None = None
    position: tuple = (0.0, 0.0, 0.0)
    rotation: tuple = (0.0, 0.0, 0.0)
    cell_position: tuple = (0.0, 0.0, 0.0)
    cell_rotation: tuple = (0.0, 0.0, 0.0)
    n_points: int = 1
    seed: int = 0

    def __post_init__(self):
        check_type(self.probe, (str, os.PathLike), "probe", "a probe name or path")
        probe = os.fspath(self.probe)
        if not probe:
            raise ValueError("probe must be a probe name or path, got ''")
        from ._probes import check_probe_name

        # a path is checked when the probe is loaded; a name is checked now
        check_probe_name(probe)
        label = _default_label(probe) if self.label is None else self.label
        check_type(label, str, "label")
        if not label or "/" in label:
            raise ValueError(
                f"label must be a non-empty string without '/', got {label!r}"
            )
        check_positive(self.n_points, "n_points", integer=True)
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        set_ = object.__setattr__
        set_(self, "probe", probe)
        set_(self, "label", label)
        for name in ("position", "rotation", "cell_position", "cell_rotation"):
            set_(self, name, _vector3(getattr(self, name), name))
        set_(self, "n_points", int(self.n_points))
        set_(self, "seed", int(self.seed))

    # -- serialisation ---------------------------------------------------

    def attrs(self) -> dict:
        """A flat dict of plain values, fit for HDF5 attributes.

        Returns
        -------
        attrs : dict
            Keys ``placement_version``, ``label``, ``probe``, ``position``,
            ``rotation``, ``cell_position``, ``cell_rotation`` (lists of 3
            float), ``n_points``, ``seed``. :meth:`from_attrs` rebuilds the
            placement.
        """
        return {
            "placement_version": PLACEMENT_VERSION,
            "label": self.label,
            "probe": self.probe,
            "position": list(self.position),
            "rotation": list(self.rotation),
            "cell_position": list(self.cell_position),
            "cell_rotation": list(self.cell_rotation),
            "n_points": self.n_points,
            "seed": self.seed,
        }

    @classmethod
    def from_attrs(cls, attrs: Mapping) -> ProbePlacement:
        """Rebuild a placement from :meth:`attrs` (as read back from HDF5).

        Parameters
        ----------
        attrs : Mapping
            Strings may come back as ``bytes``, vectors as arrays and
            integers as numpy scalars; other keys are ignored.

        Returns
        -------
        ProbePlacement
        """
        check_type(attrs, Mapping, "attrs", "a mapping")
        required = (
            "label",
            "probe",
            "position",
            "rotation",
            "cell_position",
            "cell_rotation",
            "n_points",
            "seed",
        )
        missing = [k for k in required if k not in attrs]
        if missing:
            raise ValueError(
                f"attrs is not a probe placement: missing key(s) {missing}; "
                f"write it with ProbePlacement.attrs()"
            )
        version = int(np.asarray(attrs.get("placement_version", 1)))
        if version > PLACEMENT_VERSION:
            raise ValueError(
                f"attrs['placement_version'] must be <= {PLACEMENT_VERSION}, got "
                f"{version}; upgrade lfp_surrogate to read it"
            )

        def text(key):
            value = attrs[key]
            if isinstance(value, np.ndarray) and value.shape == ():
                value = value.item()
            if isinstance(value, bytes):
                value = value.decode("utf-8")
            if not isinstance(value, str):
                raise TypeError(f"attrs[{key!r}] must be a string, got {value!r}")
            return value

        def integer(key):
            value = np.asarray(attrs[key])
            if value.shape != () or value.dtype.kind not in "iu":
                raise TypeError(f"attrs[{key!r}] must be an integer, got {value!r}")
            return int(value)

        return cls(
            probe=text("probe"),
            label=text("label"),
            position=_vector3(attrs["position"], "attrs['position']"),
            rotation=_vector3(attrs["rotation"], "attrs['rotation']"),
            cell_position=_vector3(attrs["cell_position"], "attrs['cell_position']"),
            cell_rotation=_vector3(attrs["cell_rotation"], "attrs['cell_rotation']"),
            n_points=integer("n_points"),
            seed=integer("seed"),
        )

    def to_dict(self) -> dict:
        """Plain dict for YAML (as :meth:`attrs` without the version)."""
        out = self.attrs()
        del out["placement_version"]
        return out

    @classmethod
    def from_dict(cls, data: Mapping) -> ProbePlacement:
        """Build from :meth:`to_dict`; absent keys take their defaults."""
        check_type(data, Mapping, "probe placement", "a mapping")
        allowed = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"probe placement has unknown key(s) {unknown}; allowed: "
                f"{sorted(allowed)}"
            )
        return cls(**dict(data))

    # -- geometry --------------------------------------------------------

    @property
    def cell_rotation_matrix(self) -> np.ndarray:
        """Cell rotation, shape (3, 3)."""
        return rotation_matrix(self.cell_rotation)

    @property
    def probe_rotation_matrix(self) -> np.ndarray:
        """Probe rotation, shape (3, 3)."""
        return rotation_matrix(self.rotation)

    @property
    def probe_center(self) -> np.ndarray:
        """Probe centre in world coordinates, shape (3,) in µm."""
        return np.add(self.cell_position, self.position)

    def place_cell(self, geometry):
        """The cell geometry rotated about its soma and moved (µm)."""
        return transform_geometry(
            geometry, self.cell_rotation_matrix, self.cell_position
        )

    def place_contacts(self, probe) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Contact centres, normals and probe-plane axes in world coordinates.

        Parameters
        ----------
        probe : Probe

        Returns
        -------
        positions : ndarray, shape (n_contacts, 3)
            Contact centres (µm).
        normals : ndarray, shape (n_contacts, 3)
            Unit normals.
        main_axes : ndarray, shape (2, 3)
            Unit vectors spanning the probe plane.
        """
        rot = self.probe_rotation_matrix
        positions = transform_points(probe.positions, rot, self.probe_center)
        return positions, probe.normals @ rot.T, probe.main_axes @ rot.T

    def contact_points(self, probe) -> np.ndarray:
        """Points on each contact surface whose potentials are averaged.

        With ``n_points == 1`` the contact centres. Otherwise ``n_points``
        points uniformly distributed over each contact surface (circle of
        radius ``size``, square of half side ``size``, rectangle of half
        sides ``size``), drawn with ``numpy.random.default_rng(seed)``, so
        the same placement always gives the same points.

        Parameters
        ----------
        probe : Probe

        Returns
        -------
        points : ndarray, shape (n_contacts, n_points, 3)
            Coordinates (µm).
        """
        centres, normals, axes = self.place_contacts(probe)
        if self.n_points == 1:
            return centres[:, None, :]

        # in-plane unit vectors of each contact: u along the first probe axis
        u = axes[0][None, :] - np.einsum("ij,j->i", normals, axes[0])[:, None] * normals
        u_norm = np.linalg.norm(u, axis=1, keepdims=True)
        fallback = np.cross(normals, axes[1][None, :])
        u = np.where(u_norm > 1e-9, u / np.maximum(u_norm, 1e-12), fallback)
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        v = np.cross(normals, u)

        # one draw of shape (n_contacts, n_points, 2) keeps results reproducible
        rng = np.random.default_rng(self.seed)
        draw = rng.random((probe.n_contacts, self.n_points, 2))
        if probe.shape == "circle":
            radius = float(probe.size) * np.sqrt(draw[..., 0])
            phi = 2 * np.pi * draw[..., 1]
            a, b = radius * np.cos(phi), radius * np.sin(phi)
        elif probe.shape == "square":
            a = (2 * draw[..., 0] - 1) * float(probe.size)
            b = (2 * draw[..., 1] - 1) * float(probe.size)
        else:  # rect
            half_w, half_h = probe.size
            a = (2 * draw[..., 0] - 1) * half_w
            b = (2 * draw[..., 1] - 1) * half_h
        return (
            centres[:, None, :] + a[..., None] * u[:, None] + b[..., None] * v[:, None]
        )


def contacts_inside_cell(geometry, points) -> np.ndarray:
    """Which points lie inside a segment's membrane cylinder.

    A point is inside when its distance to a segment's axis (the line
    between its end points) is less than the segment radius ``d / 2``.

    Parameters
    ----------
    geometry : CellGeometry
        The placed cell.
    points : ndarray, shape (n_points, 3)
        Coordinates (µm).

    Returns
    -------
    inside : ndarray of bool, shape (n_points,)
    """
    start, end = segment_ends(geometry)
    dist = point_segment_distance(np.asarray(points, float).reshape(-1, 3), start, end)
    return np.any(dist < geometry.d[None, :] / 2, axis=1)


def check_contacts_outside(geometry, points, *, policy: str, label: str) -> None:
    """Apply the inside-the-membrane ``policy`` (raise, warn or ignore)."""
    check_option(policy, INSIDE_POLICIES, "inside")
    if policy == "ignore":
        return
    inside = contacts_inside_cell(geometry, points)
    if not inside.any():
        return
    idx = np.flatnonzero(inside)
    msg = (
        f"probe {label!r}: {idx.size} contact(s) lie inside the cell's membrane "
        f"(contacts {idx[:10].tolist()}{' ...' if idx.size > 10 else ''}); the "
        f"line-source potential there is not physical. Move the probe "
        f"(position, µm) or pass inside='ignore'"
    )
    if policy == "raise":
        raise ValueError(msg)
    logger.warning(msg)
    warnings.warn(msg, ContactInsideCellWarning, stacklevel=3)
