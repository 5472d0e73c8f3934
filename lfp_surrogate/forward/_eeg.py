"""EEG: four-sphere, infinite homogeneous and New York head forward models."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .._logging import logger, use_log_level
from .._validation import check_type
from ._heads import (
    CellInHead,
    HeadModel,
    HeadPlacement,
    cell_rotation_in_head,
    load_head_model,
    place_in_head,
)
from ._lfp import dipole_matrix
from ._operator import LinearForward
from ._transforms import transform_geometry

#: Environment variable with the path of the New York head file.
NYHEAD_ENV = "LFP_SURROGATE_NYHEAD"
#: Where the New York head file can be downloaded (about 710 MB).
NYHEAD_URL = "https://www.parralab.org/nyhead/sa_nyhead.mat"
#: Named cortex locations of the New York head (mm), as in LFPykit.
NYHEAD_LOCATIONS = {
    "calcarine_sulcus": (5.0, -86.0, 2.0),
    "motorsensory_cortex": (18.0, 8.0, 71.0),
    "parietal_lobe": (54.0, -48.0, 55.9),
    "occipital_lobe": (-24.7, -103.3, -1.46),
}
#: New York head lead field: V per (mA·m) -> mV per (nA·µm), i.e. 1e3 mV/V
#: times 1e-6 mA/nA times 1e-6 m/µm = 1e-9 (LFPykit's factor).
_NYHEAD_MV_PER_NA_UM = 1e-9
#: Relative tolerance on an electrode's distance from the head centre.
SCALP_RTOL = 1e-3


@dataclass(frozen=True, eq=False)
class EEGElectrodes:
    """EEG electrode positions in the head frame.

    Parameters
    ----------
    positions : ndarray, shape (n_electrodes, 3)
        Electrode positions (µm), head centre at the origin.
    names : tuple of str | None
        Channel names; default ``E1``, ``E2``, ...
    montage : str | None
        Name of the MNE montage they came from, if any.
    """

    positions: np.ndarray
    names: tuple | None = None
    montage: str | None = None

    def __post_init__(self):
        pos = np.array(self.positions, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 1:
            raise ValueError(
                f"electrode positions must have shape (n_electrodes, 3) in µm, got "
                f"{np.shape(self.positions)}"
            )
        if not np.all(np.isfinite(pos)):
            raise ValueError("electrode positions must be finite")
        pos.setflags(write=False)
        object.__setattr__(self, "positions", pos)
        names = self.names
        if names is None:
            names = tuple(f"E{i + 1}" for i in range(pos.shape[0]))
        names = tuple(str(n) for n in names)
        if len(names) != pos.shape[0] or len(set(names)) != len(names):
            raise ValueError(
                f"electrode names must be {pos.shape[0]} distinct strings, got "
                f"{len(names)} ({len(set(names))} distinct)"
            )
        object.__setattr__(self, "names", names)

    @property
    def n_electrodes(self) -> int:
        """Number of electrodes."""
        return int(self.positions.shape[0])

    @classmethod
    def from_montage(cls, name: str = "standard_1020", radius: float = 90000.0):
        """Electrodes of a standard MNE montage, projected onto a scalp sphere.

        A sphere is fitted (least squares) to the montage positions; each
        electrode is moved along the ray from the fitted centre onto the
        sphere of ``radius`` around the origin.

        Parameters
        ----------
        name : str
            An MNE built-in montage, e.g. ``"standard_1020"`` (10-20) or
            ``"standard_1005"`` (10-5, including 10-10); MNE >= 1.13 aliases
            are followed (``colin27_1020`` ...).
        radius : float
            Scalp radius (µm).

        Returns
        -------
        EEGElectrodes

        Notes
        -----
        Needs MNE-Python (an optional dependency).
        """
        from ._mne import montage_positions

        names, positions = montage_positions(name, radius)
        return cls(positions=positions, names=tuple(names), montage=name)

    def check_on_scalp(self, radius: float, *, rtol: float = SCALP_RTOL) -> None:
        """Raise ValueError unless every electrode is on the scalp sphere.

        Parameters
        ----------
        radius : float
            Scalp radius (µm).
        rtol : float
            Allowed relative deviation of each electrode's distance from the
            head centre.
        """
        dist = np.linalg.norm(self.positions, axis=1)
        off = np.abs(dist - radius) > rtol * radius
        if off.any():
            i = int(np.argmax(np.abs(dist - radius)))
            raise ValueError(
                f"electrodes off the scalp: {int(off.sum())} electrode(s) are not "
                f"on the scalp sphere of radius {radius:g} µm (e.g. "
                f"{self.names[i]!r} at {dist[i]:g} µm from the centre); give "
                f"positions in µm on the scalp, or project them with "
                f"project_to_sphere(positions, {radius:g})"
            )


def project_to_sphere(positions, radius: float, center=(0.0, 0.0, 0.0)) -> np.ndarray:
    """Move points along rays from ``center`` onto a sphere about the origin.

    Parameters
    ----------
    positions : ndarray, shape (n, 3)
    radius : float
        Sphere radius (same unit as ``positions``).
    center : sequence of 3 float
        Origin of the rays.

    Returns
    -------
    projected : ndarray, shape (n, 3)
    """
    rel = np.asarray(positions, float) - np.asarray(center, float)
    norm = np.linalg.norm(rel, axis=1, keepdims=True)
    if np.any(norm == 0):
        raise ValueError("positions must differ from the projection centre")
    return radius * rel / norm


def _as_electrodes(electrodes) -> EEGElectrodes:
    if isinstance(electrodes, EEGElectrodes):
        return electrodes
    if isinstance(electrodes, str):
        raise TypeError(
            "electrodes must be EEGElectrodes or an array (n_electrodes, 3) in µm; "
            f"for a montage use EEGElectrodes.from_montage({electrodes!r}, radius)"
        )
    return EEGElectrodes(positions=electrodes)


def nyhead_default_path() -> Path:
    """Where the New York head file is looked for when no path is given.

    ``$LFP_SURROGATE_NYHEAD`` if set, else ``sa_nyhead.mat`` in the
    ``head_models`` folder of the per-user cache
    (``$LFP_SURROGATE_CACHE`` or ``~/.cache/lfp_surrogate``).
    """
    env = os.environ.get(NYHEAD_ENV)
    if env:
        return Path(env).expanduser()
    from .._io import CACHE_ENV

    root = os.environ.get(CACHE_ENV)
    if not root:
        xdg = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        root = Path(xdg) / "lfp_surrogate"
    return Path(root) / "head_models" / "sa_nyhead.mat"


def _nyhead_path(path) -> Path:
    path = nyhead_default_path() if path is None else Path(os.fspath(path)).expanduser()
    if not path.is_file():
        raise FileNotFoundError(
            f"New York head model file not found: {path}. It is about 710 MB and "
            f"is never downloaded automatically: get sa_nyhead.mat from "
            f"{NYHEAD_URL} and pass its path (nyhead_path=...), set "
            f"${NYHEAD_ENV}, or put it at {nyhead_default_path()}"
        )
    return path


def read_nyhead(path, location) -> dict:
    """Read what one cortex location needs from the New York head file.

    Reads the layout LFPykit's ``NYHeadModel`` reads (MATLAB v7.3/HDF5):
    ``sa/cortex75K/vc`` (3, n_vertices) mm, ``sa/cortex75K/normals`` (3,
    n_vertices), ``sa/cortex75K/V_fem`` (3, n_vertices, n_electrodes) and
    ``sa/locs_3D`` (>= 3, n_electrodes) mm, but only the lead-field column of
    the chosen vertex.

    Parameters
    ----------
    path : str | os.PathLike | None
        The file (default :func:`nyhead_default_path`).
    location : str | sequence of 3 float
        A name of :data:`NYHEAD_LOCATIONS` or a position (mm); the nearest
        cortex vertex is used.

    Returns
    -------
    dict
        ``lead_field`` (n_electrodes, 3) mV per nA·µm, ``vertex`` (3,) mm,
        ``normal`` (3,), ``electrodes`` (n_electrodes, 3) mm, ``vertex_idx``.
    """
    import h5py

    path = _nyhead_path(path)
    if isinstance(location, str):
        if location not in NYHEAD_LOCATIONS:
            raise ValueError(
                f"nyhead_location must be 3 numbers (mm) or one of "
                f"{', '.join(NYHEAD_LOCATIONS)}, got {location!r}"
            )
        location = NYHEAD_LOCATIONS[location]
    location = np.asarray(location, dtype=float).reshape(-1)
    if location.shape != (3,):
        raise ValueError(f"nyhead_location must be 3 numbers (mm), got {location!r}")
    try:
        with h5py.File(path, "r") as f:
            cortex = f["sa"]["cortex75K"]
            vc = np.asarray(cortex["vc"], dtype=float)
            idx = int(np.argmin(((vc - location[:, None]) ** 2).sum(0)))
            normal = np.asarray(cortex["normals"][:, idx], dtype=float)
            lead = np.asarray(cortex["V_fem"][:, idx, :], dtype=float)
            elecs = np.asarray(f["sa"]["locs_3D"][:3, :], dtype=float)
    except (KeyError, OSError) as err:
        raise ValueError(
            f"New York head file {path}: not the expected layout (sa/cortex75K/vc, "
            f"normals, V_fem; sa/locs_3D): {err}"
        ) from None
    error = float(np.linalg.norm(vc[:, idx] - location))
    if error > 2.0:
        raise ValueError(
            f"nyhead_location {location.tolist()} mm is {error:.1f} mm from the "
            f"nearest cortex vertex {vc[:, idx].round(1).tolist()} mm (limit 2 mm); "
            f"choose a point on the cortex"
        )
    return {
        "lead_field": lead.T * _NYHEAD_MV_PER_NA_UM,
        "vertex": vc[:, idx],
        "normal": normal / np.linalg.norm(normal),
        "electrodes": elecs.T,
        "vertex_idx": idx,
    }


def _reference(M: np.ndarray, reference, names) -> np.ndarray:
    if reference is None or reference == "none":
        return M
    if reference == "average":
        return M - M.mean(axis=0, keepdims=True)
    if isinstance(reference, str) and reference in names:
        return M - M[list(names).index(reference)][None, :]
    raise ValueError(
        f"reference must be 'average', 'none' or an electrode name "
        f"({', '.join(list(names)[:10])}{' ...' if len(names) > 10 else ''}), "
        f"got {reference!r}"
    )


class EEGOperator(LinearForward):
    r"""EEG from the cell's current dipole in a head model.

    .. math:: \mathbf{V}(t) = \mathbf{T}(\mathbf{r}_p)\, \mathbf{R}\,
              \mathbf{M}_P\, \mathbf{I}(t)

    :math:`\mathbf{M}_P` maps transmembrane currents (nA) to the dipole
    moment (nA·µm) in the cell's frame, :math:`\mathbf{R}` turns the cell
    into the head (:class:`HeadPlacement`), and :math:`\mathbf{T}` (n_electrodes,
    3) maps a dipole at :math:`\mathbf{r}_p` to scalp potentials (mV): the
    corrected four-sphere series (LFPykit ``FourSphereVolumeConductor``),
    :math:`\mathbf{p}\cdot\mathbf{r}/(4\pi\sigma r^3)` in an infinite medium
    (``InfiniteVolumeConductor``), or the New York head's FEM lead field.
    The result is average-referenced by default.

    *Assumptions*: the current-dipole approximation (electrodes far from the
    cell compared with its size); four-sphere: concentric, homogeneous,
    isotropic, linear shells with air outside; the whole cell inside the
    brain sphere.

    Parameters
    ----------
    geometry : CellGeometry
        The cell in its own frame (soma at the origin, apical axis +y).
    head : str | HeadModel
        Head-model name (see :func:`list_head_models`) or YAML path.
    electrodes : EEGElectrodes | ndarray, shape (n_electrodes, 3) | None
        Electrodes on the scalp sphere (µm); ``None`` takes the 10-20 montage
        from MNE. Ignored for the New York head (its 231 electrodes are used).
    placement : HeadPlacement
        The cell's place in the head (for the New York head only ``tilt``,
        ``roll`` apply: the apical axis follows the cortex normal).
    reference : str | None
        ``"average"`` (default), ``"none"``/``None``, or an electrode name.
    nyhead_path : str | os.PathLike | None
        The New York head file (default :func:`nyhead_default_path`).
    nyhead_location : str | sequence of 3 float
        Cortex location in the New York head (name or mm).
    verbose : bool | str | int | None
        Logging level for this call.

    Attributes
    ----------
    matrix : ndarray, shape (n_electrodes, n_seg)
        mV per nA.
    electrodes : EEGElectrodes
    head : HeadModel
    in_head : CellInHead
        Rotation, soma, dipole location and placed cell (µm, head frame).

    References
    ----------
    .. [1] Næss S, Chintaluri C, Ness TV, Dale AM, Einevoll GT, Wójcik DK
       (2017) Corrected four-sphere head model for EEG signals. Front. Hum.
       Neurosci. 11:490. doi:10.3389/fnhum.2017.00490
    .. [2] Hagen E, Næss S, Ness TV, Einevoll GT (2018) Multimodal modeling of
       neural network activity: computing LFP, ECoG, EEG, and MEG signals with
       LFPy 2.0. Front. Neuroinform. 12:92. doi:10.3389/fninf.2018.00092
    .. [3] Huang Y, Parra LC, Haufe S (2016) The New York Head - a precise
       standardized volume conductor model for EEG source localization and
       tES targeting. NeuroImage 140:150-162.
       doi:10.1016/j.neuroimage.2015.12.019
    """

    def __init__(
        self,
        geometry,
        head="four_sphere_lfpy_default",
        electrodes=None,
        placement: HeadPlacement | None = None,
        *,
        reference="average",
        nyhead_path=None,
        nyhead_location="motorsensory_cortex",
        verbose=None,
    ):
        with use_log_level(verbose):
            t0 = time.perf_counter()
            head = load_head_model(head)
            placement = HeadPlacement() if placement is None else placement
            check_type(placement, HeadPlacement, "placement")
            dipole = dipole_matrix(geometry)  # (3, n_seg), cell frame

            if head.kind == "nyhead":
                T, in_head, electrodes = self._nyhead(
                    geometry, placement, nyhead_path, nyhead_location
                )
            else:
                if electrodes is None:
                    electrodes = EEGElectrodes.from_montage(
                        "standard_1020", head.scalp_radius
                    )
                electrodes = _as_electrodes(electrodes)
                electrodes.check_on_scalp(head.scalp_radius)
                in_head = place_in_head(
                    geometry, placement, head.brain_radius, electrodes=electrodes
                )
                T = self._sphere_matrix(head, electrodes, in_head.dipole_location)

            # rank 3: referenced dipole-to-EEG map times the dipole in the head
            T_ref = _reference(T, reference, electrodes.names)
            dipole_head = in_head.rotation @ dipole
            super().__init__(
                T_ref @ dipole_head,
                (electrodes.n_electrodes,),
                label=head.name,
                kind="eeg",
                unit="mV",
                factors=(T_ref, dipole_head),
            )
            self.head = head
            self.electrodes = electrodes
            self.reference = reference
            self.placement = placement
            self.in_head = in_head
            self.dipole_to_eeg = T
            logger.debug(
                "EEG %s: %d electrodes in %.3f s",
                head.name,
                electrodes.n_electrodes,
                time.perf_counter() - t0,
            )

    @staticmethod
    def _sphere_matrix(head: HeadModel, electrodes, dipole_location) -> np.ndarray:
        from lfpykit.eegmegcalc import (
            FourSphereVolumeConductor,
            InfiniteVolumeConductor,
        )

        if head.kind == "infinite":
            return InfiniteVolumeConductor(sigma=head.sigma).get_transformation_matrix(
                electrodes.positions - dipole_location
            )
        # electrodes on the scalp within rounding: pull those a hair outside in
        # (by < 1e-7 µm), as LFPykit rejects r > scalp radius
        pos = np.array(electrodes.positions)
        dist = np.linalg.norm(pos, axis=1)
        outside = dist > head.scalp_radius
        pos[outside] *= (head.scalp_radius * (1 - 1e-12) / dist[outside])[:, None]
        model = FourSphereVolumeConductor(
            pos, radii=list(head.radii), sigmas=list(head.sigmas)
        )
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            T = model.get_transformation_matrix(np.asarray(dipole_location, float))
        for w in caught:  # slow-convergence advice near the brain surface
            logger.warning("LFPykit (four-sphere %s): %s", head.name, w.message)
        return T

    @staticmethod
    def _nyhead(geometry, placement, path, location):
        data = read_nyhead(path, location)
        rot = cell_rotation_in_head(data["normal"], placement)
        vertex = data["vertex"] * 1e3  # mm -> µm
        cell = transform_geometry(geometry, rot, vertex)
        # XXX: the New York head has no brain sphere, so no inside-brain check
        in_head = CellInHead(rot, vertex, data["normal"], float("nan"), vertex, cell)
        electrodes = EEGElectrodes(positions=data["electrodes"] * 1e3)
        return data["lead_field"], in_head, electrodes
