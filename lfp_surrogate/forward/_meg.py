"""MEG: magnetic field of the cell's current dipole (fT)."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._logging import logger, use_log_level
from .._validation import check_option, check_positive, check_type
from ._heads import HeadPlacement, place_in_head
from ._lfp import dipole_matrix
from ._operator import LinearForward, _is_tensor

#: MEG volume-conductor models.
MEG_MODELS = ("infinite", "spherical")

#: LFPykit returns H in nA/µm. 1 nA/µm = 1e-9 A / 1e-6 m = 1e-3 A/m, and
#: B = µ0 H with µ0 = 4π·1e-7 T·m/A (LFPykit's value), so 1 nA/µm of H is
#: 4π·1e-7 · 1e-3 T = 4π·1e-10 T = 4π·1e5 fT (about 1.2566e6 fT).
FT_PER_NA_PER_UM = 4 * np.pi * 1e-7 * 1e-3 * 1e15


@dataclass(frozen=True, eq=False)
class MEGSensors:
    """Point magnetometers: positions and pick-up normals (head frame).

    Parameters
    ----------
    positions : ndarray, shape (n_sensors, 3)
        Sensor positions (µm), head centre at the origin.
    normals : ndarray, shape (n_sensors, 3)
        Unit normals of the pick-up loops (stored, e.g. for the normal
        component and MNE export; the forward model returns the full field).
    radius : float | None
        Radius of the sphere the sensors sit on (µm), if any.
    names : tuple of str | None
        Channel names; default ``MEG001``, ``MEG002``, ...
    """

    positions: np.ndarray
    normals: np.ndarray
    radius: float | None = None
    names: tuple | None = None

    def __post_init__(self):
        pos = np.array(self.positions, dtype=float)
        nrm = np.array(self.normals, dtype=float)
        if pos.ndim != 2 or pos.shape[1] != 3 or pos.shape[0] < 1:
            raise ValueError(
                f"sensor positions must have shape (n_sensors, 3) in µm, got "
                f"{np.shape(self.positions)}"
            )
        if nrm.shape != pos.shape:
            raise ValueError(
                f"sensor normals must have the shape of the positions {pos.shape}, "
                f"got {nrm.shape}"
            )
        norm = np.linalg.norm(nrm, axis=1, keepdims=True)
        if not np.all(np.isfinite(pos)) or not np.all(norm > 0):
            raise ValueError("sensor positions must be finite and normals non-zero")
        nrm = nrm / norm
        pos.setflags(write=False)
        nrm.setflags(write=False)
        object.__setattr__(self, "positions", pos)
        object.__setattr__(self, "normals", nrm)
        names = self.names or tuple(f"MEG{i + 1:03d}" for i in range(pos.shape[0]))
        if len(names) != pos.shape[0]:
            raise ValueError(
                f"sensor names must be {pos.shape[0]} strings, got {len(names)}"
            )
        object.__setattr__(self, "names", tuple(str(n) for n in names))

    @property
    def n_sensors(self) -> int:
        """Number of sensors."""
        return int(self.positions.shape[0])

    @classmethod
    def on_sphere(
        cls, n_sensors: int = 100, radius: float = 110000.0, max_polar: float = 100.0
    ) -> MEGSensors:
        """Sensors spread evenly over a helmet-like cap of a sphere.

        Parameters
        ----------
        n_sensors : int
            Number of sensors.
        radius : float
            Sphere radius (µm); the default 110 mm is about 2 cm outside a
            90-mm scalp, a typical helmet distance.
        max_polar : float
            The cap reaches this polar angle from +z (degrees).

        Returns
        -------
        MEGSensors
            Positions on a Fibonacci lattice of the cap, radial normals.
        """
        check_positive(n_sensors, "n_sensors", integer=True)
        check_positive(radius, "radius")
        check_positive(max_polar, "max_polar")
        k = np.arange(n_sensors) + 0.5
        # equal-area spacing in cos(polar) between 1 and cos(max_polar)
        cos_min = np.cos(np.deg2rad(min(max_polar, 180.0)))
        cos_t = 1 - (1 - cos_min) * k / n_sensors
        sin_t = np.sqrt(1 - cos_t**2)
        phi = np.pi * (3 - np.sqrt(5)) * k
        normals = np.c_[sin_t * np.cos(phi), sin_t * np.sin(phi), cos_t]
        return cls(positions=radius * normals, normals=normals, radius=float(radius))

    def normal_component(self, field):
        """Component of a field along each sensor normal.

        Parameters
        ----------
        field : ndarray or torch.Tensor, shape (..., n_sensors, 3, n_times)
            Magnetic field (fT).

        Returns
        -------
        ndarray or torch.Tensor, shape (..., n_sensors, n_times)
        """
        if _is_tensor(field):
            import torch

            normals = torch.as_tensor(
                self.normals, dtype=field.dtype, device=field.device
            )
            return torch.einsum("...skt,sk->...st", field, normals)
        return np.einsum("...skt,sk->...st", field, self.normals)


class MEGOperator(LinearForward):
    r"""Magnetic field of the cell's current dipole at MEG sensors (fT).

    Infinite homogeneous conductor (Biot-Savart for the primary current
    dipole; in an infinite homogeneous medium the volume currents add no
    field):

    .. math:: \mathbf{B} = \frac{\mu_0}{4\pi}
              \frac{\mathbf{p}\times\mathbf{R}}{R^3},
              \quad \mathbf{R} = \mathbf{r} - \mathbf{r}_p

    Spherically symmetric conductor (Sarvas' formula, volume currents
    included):

    .. math:: \mathbf{B} = \frac{\mu_0}{4\pi F^2}
              \left(F\,\mathbf{p}\times\mathbf{r}_p
              - (\mathbf{p}\times\mathbf{r}_p\cdot\mathbf{r})\nabla F\right)

    with :math:`F = a(ra + r^2 - \mathbf{r}_p\cdot\mathbf{r})`,
    :math:`\mathbf{a} = \mathbf{r} - \mathbf{r}_p`. A radial dipole gives no
    field outside the sphere. LFPykit's ``InfiniteHomogeneousVolCondMEG`` and
    ``SphericallySymmetricVolCondMEG`` give :math:`\mathbf{H}` (nA/µm),
    converted here with :data:`FT_PER_NA_PER_UM`.

    *Assumptions*: quasi-static, no magnetic induction, tissue permeability
    µ0; the current-dipole approximation; sensors outside the conductor
    (spherical model: farther from the centre than the dipole).

    Parameters
    ----------
    geometry : CellGeometry
        The cell in its own frame.
    model : {"spherical", "infinite"}
        Volume-conductor model.
    sensors : MEGSensors | None
        Default :meth:`MEGSensors.on_sphere` (100 sensors, 110 mm).
    placement : HeadPlacement | None
        The cell's place in the head (same convention as EEG).
    brain_radius : float
        Brain-sphere radius used to place the cell (µm).
    verbose : bool | str | int | None
        Logging level for this call.

    Attributes
    ----------
    matrix : ndarray, shape (n_sensors * 3, n_seg)
        fT per nA; :meth:`apply` returns (n_batch, n_sensors, 3, n_times).

    References
    ----------
    .. [1] Sarvas J (1987) Basic mathematical and electromagnetic concepts of
       the biomagnetic inverse problem. Phys Med Biol 32:11-22.
       doi:10.1088/0031-9155/32/1/004
    .. [2] Hämäläinen M et al. (1993) Magnetoencephalography - theory,
       instrumentation, and applications to noninvasive studies of the
       working human brain. Rev Mod Phys 65:413-497.
       doi:10.1103/RevModPhys.65.413
    .. [3] Hagen E, Næss S, Ness TV, Einevoll GT (2018) Front. Neuroinform.
       12:92. doi:10.3389/fninf.2018.00092
    """

    def __init__(
        self,
        geometry,
        model: str = "spherical",
        sensors: MEGSensors | None = None,
        placement: HeadPlacement | None = None,
        *,
        brain_radius: float = 79000.0,
        electrodes=None,
        verbose=None,
    ):
        from lfpykit.eegmegcalc import (
            InfiniteHomogeneousVolCondMEG,
            SphericallySymmetricVolCondMEG,
        )

        with use_log_level(verbose):
            t0 = time.perf_counter()
            check_option(model, MEG_MODELS, "model")
            sensors = MEGSensors.on_sphere() if sensors is None else sensors
            check_type(sensors, MEGSensors, "sensors")
            placement = HeadPlacement() if placement is None else placement
            in_head = place_in_head(
                geometry, placement, brain_radius, electrodes=electrodes
            )
            r_p = np.asarray(in_head.dipole_location, dtype=float)

            dist = np.linalg.norm(sensors.positions, axis=1)
            if model == "spherical" and np.any(dist <= np.linalg.norm(r_p)):
                raise ValueError(
                    f"sensors must be farther from the head centre than the dipole "
                    f"({np.linalg.norm(r_p):g} µm) for the spherical model; the "
                    f"nearest is at {dist.min():g} µm"
                )
            if np.any(np.linalg.norm(sensors.positions - r_p, axis=1) == 0):
                raise ValueError("a sensor sits exactly on the dipole")

            if model == "infinite":
                H = InfiniteHomogeneousVolCondMEG(np.array(sensors.positions))
                T = H.get_transformation_matrix(r_p)
            else:
                H = SphericallySymmetricVolCondMEG(r=np.array(sensors.positions))
                T = H.get_transformation_matrix(r_p)
            # T: (n_sensors, 3, 3) H per dipole; dipole in the head frame
            dipole = in_head.rotation @ dipole_matrix(geometry)
            # rank 3: (n_sensors * 3, 3) field per dipole times the dipole
            A = FT_PER_NA_PER_UM * T.reshape(-1, 3)
            super().__init__(
                A @ dipole,
                (sensors.n_sensors, 3),
                label=model,
                kind="meg",
                unit="fT",
                factors=(A, dipole),
            )
            self.model = model
            self.sensors = sensors
            self.placement = placement
            self.in_head = in_head
            self.dipole_to_field = FT_PER_NA_PER_UM * T
            logger.debug(
                "MEG %s: %d sensors in %.3f s",
                model,
                sensors.n_sensors,
                time.perf_counter() - t0,
            )
