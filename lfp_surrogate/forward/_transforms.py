"""Rotations and rigid transforms of cell geometries and points (µm, degrees)."""

from __future__ import annotations

import dataclasses

import numpy as np


def _unit(vector, name: str) -> np.ndarray:
    """Return ``vector`` (3,) divided by its norm; a zero vector is an error."""
    vector = np.asarray(vector, dtype=float).reshape(-1)
    if vector.shape != (3,) or not np.all(np.isfinite(vector)):
        raise ValueError(
            f"{name} must be 3 finite numbers (x, y, z), got {vector.tolist()}"
        )
    norm = np.linalg.norm(vector)
    if norm == 0:
        raise ValueError(f"{name} must be a non-zero vector, got {vector.tolist()}")
    return vector / norm


def axis_rotation(axis, angle: float) -> np.ndarray:
    """Rotation matrix, shape (3, 3), by ``angle`` degrees about ``axis``.

    Right-handed: a positive angle turns counter-clockwise when looking down
    the axis towards the origin (Rodrigues' formula).
    """
    k = _unit(axis, "axis")
    theta = np.deg2rad(angle)
    kx = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + np.sin(theta) * kx + (1.0 - np.cos(theta)) * kx @ kx


def rotation_matrix(angles) -> np.ndarray:
    """Rotation matrix, shape (3, 3), from angles about the fixed x, y, z axes.

    Parameters
    ----------
    angles : sequence of 3 float
        Rotation (degrees) about x, then y, then z, each right-handed and
        about the fixed (world) axes, as ``LFPy.Cell.set_rotation``:
        ``R = Rz @ Ry @ Rx``.

    Returns
    -------
    R : ndarray, shape (3, 3)
        Rotation acting on column vectors.
    """
    ax, ay, az = (float(a) for a in angles)
    return (
        axis_rotation((0, 0, 1), az)
        @ axis_rotation((0, 1, 0), ay)
        @ axis_rotation((1, 0, 0), ax)
    )


def rotation_between(a, b) -> np.ndarray:
    """The smallest rotation, shape (3, 3), that turns direction ``a`` onto ``b``.

    For opposite directions the rotation is a half turn about an axis
    perpendicular to ``a`` (about z when ``a`` is along ±y, which keeps a
    cell's x-axis in the x-y plane).
    """
    a = _unit(a, "a")
    b = _unit(b, "b")
    cross = np.cross(a, b)
    sin = np.linalg.norm(cross)
    cos = float(np.dot(a, b))
    if sin < 1e-12:
        if cos > 0:
            return np.eye(3)
        helper = np.array([0.0, 0.0, 1.0])
        if abs(np.dot(helper, a)) > 0.9:
            helper = np.array([1.0, 0.0, 0.0])
        return axis_rotation(np.cross(a, helper), 180.0)
    return axis_rotation(cross, np.rad2deg(np.arctan2(sin, cos)))


def transform_points(points, rotation, translation=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Rotate ``points`` (..., 3) about the origin, then translate them (µm)."""
    points = np.asarray(points, dtype=float)
    return points @ np.asarray(rotation, float).T + np.asarray(translation, float)


def transform_geometry(geometry, rotation, translation=(0.0, 0.0, 0.0)):
    """A copy of a :class:`~lfp_surrogate.cells._geometry.CellGeometry` moved rigidly.

    Parameters
    ----------
    geometry : CellGeometry
        The cell (soma at the origin).
    rotation : ndarray, shape (3, 3)
        Rotation about the origin (the soma), applied first.
    translation : sequence of 3 float
        Shift (µm) applied after the rotation.

    Returns
    -------
    CellGeometry
        Same segments, diameters, areas and regions; new x, y, z.
    """
    # (n_seg, 2, 3) start and end points of every segment
    ends = np.stack([geometry.x, geometry.y, geometry.z], axis=-1)
    moved = transform_points(ends, rotation, translation)
    return dataclasses.replace(
        geometry,
        x=np.ascontiguousarray(moved[..., 0]),
        y=np.ascontiguousarray(moved[..., 1]),
        z=np.ascontiguousarray(moved[..., 2]),
    )


def segment_ends(geometry) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points of every segment, each shape (n_seg, 3) in µm."""
    start = np.stack([geometry.x[:, 0], geometry.y[:, 0], geometry.z[:, 0]], axis=1)
    end = np.stack([geometry.x[:, 1], geometry.y[:, 1], geometry.z[:, 1]], axis=1)
    return start, end


def point_segment_distance(points, start, end) -> np.ndarray:
    """Distance (µm) from each point to each line segment.

    Parameters
    ----------
    points : ndarray, shape (n_points, 3)
    start, end : ndarray, shape (n_seg, 3)

    Returns
    -------
    distance : ndarray, shape (n_points, n_seg)
    """
    points = np.asarray(points, dtype=float)
    seg = end - start  # (n_seg, 3)
    seg_len2 = np.einsum("ij,ij->i", seg, seg)
    rel = points[:, None, :] - start[None, :, :]  # (n_points, n_seg, 3)
    with np.errstate(invalid="ignore", divide="ignore"):
        t = np.einsum("psk,sk->ps", rel, seg) / seg_len2
    t = np.where(seg_len2 > 0, np.clip(np.nan_to_num(t), 0.0, 1.0), 0.0)
    closest = start[None] + t[..., None] * seg[None]
    return np.linalg.norm(points[:, None, :] - closest, axis=-1)
