"""Extracellular potential, current source density and current dipole moment."""

from __future__ import annotations

import contextlib
import io
import time
import warnings

import numpy as np

from .._logging import logger, use_log_level
from .._validation import check_option, check_positive
from ._operator import LinearForward
from ._placement import ProbePlacement, check_contacts_outside
from ._probes import Probe, load_probe
from ._transforms import rotation_between, transform_geometry

#: Ways to represent each segment as a current source (LFPykit's names).
METHODS = ("linesource", "pointsource", "root_as_point")
#: Accepted aliases of :data:`METHODS` (LFPy's older name).
METHOD_ALIASES = {"soma_as_point": "root_as_point"}


def check_method(method: str) -> str:
    """Return the LFPykit name of a source ``method`` (aliases resolved)."""
    method = METHOD_ALIASES.get(method, method)
    check_option(
        method, METHODS, "method", "('soma_as_point' is accepted for 'root_as_point')"
    )
    return method


def check_sigma(sigma):
    """Return ``sigma`` as a float or as an ndarray of 3 floats (S/m)."""
    if np.ndim(sigma) == 0:
        if isinstance(sigma, bool):
            raise TypeError(f"sigma must be a number or 3 numbers (S/m), got {sigma!r}")
        return float(check_positive(float(sigma), "sigma"))
    arr = np.asarray(sigma, dtype=float).reshape(-1)
    if arr.shape != (3,) or not np.all(np.isfinite(arr)) or np.any(arr <= 0):
        raise ValueError(
            f"sigma must be a positive number or 3 positive numbers "
            f"[sigma_x, sigma_y, sigma_z] (S/m), got {sigma!r}"
        )
    return arr


def _soma_indices(geometry) -> np.ndarray:
    try:
        idx = np.flatnonzero(geometry.region_mask("soma"))
    except (AttributeError, ValueError):
        idx = np.array([], dtype=int)
    if idx.size == 0:
        logger.debug("no soma region: segment 0 is the root for root_as_point")
        idx = np.array([0])
    return idx


def potential_matrix(
    cell, points, *, sigma=0.3, method="linesource", rootinds=None
) -> np.ndarray:
    """Point-contact potential matrix from LFPykit.

    Parameters
    ----------
    cell : lfpykit.CellGeometry
        The placed cell.
    points : ndarray, shape (n_points, 3)
        Measurement sites (µm).
    sigma : float or ndarray of 3 float
        Extracellular conductivity (S/m), scalar or ``[σx, σy, σz]``.
    method : {"linesource", "pointsource", "root_as_point"}
        Source model of each segment.
    rootinds : ndarray of int | None
        Segments treated as point sources for ``root_as_point`` (LFPykit's
        default: segment 0). With anisotropic ``sigma`` LFPykit always uses
        segment 0, so other values raise NotImplementedError.

    Returns
    -------
    M : ndarray, shape (n_points, n_seg)
        Potential (mV) per unit transmembrane current (nA).
    """
    import lfpykit

    points = np.asarray(points, dtype=float).reshape(-1, 3)
    x, y, z = (np.ascontiguousarray(points[:, k]) for k in range(3))
    # LFPykit prints (e.g. "Adjusting r-distance to root segments")
    with contextlib.redirect_stdout(io.StringIO()) as out:
        if np.ndim(sigma) == 0 and method == "linesource":
            model = lfpykit.LineSourcePotential(cell, x=x, y=y, z=z, sigma=float(sigma))
        elif np.ndim(sigma) == 0 and method == "pointsource":
            model = lfpykit.PointSourcePotential(
                cell, x=x, y=y, z=z, sigma=float(sigma)
            )
        else:
            kwargs = {}
            if method == "root_as_point" and rootinds is not None:
                rootinds = np.asarray(rootinds, dtype=int)
                if np.ndim(sigma) == 0:
                    kwargs["rootinds"] = rootinds
                elif rootinds.tolist() != [0]:
                    raise NotImplementedError(
                        f"method 'root_as_point' with anisotropic sigma treats "
                        f"segment 0 as the soma (LFPykit), but the soma is "
                        f"segment(s) {rootinds.tolist()}; use a scalar sigma or "
                        f"method 'linesource'"
                    )
            model = lfpykit.RecExtElectrode(
                cell,
                sigma=sigma if np.ndim(sigma) == 0 else np.asarray(sigma),
                x=x,
                y=y,
                z=z,
                method=method,
                **kwargs,
            )
        M = model.get_transformation_matrix()
    if out.getvalue():
        logger.debug("LFPykit: %s", out.getvalue().strip())
    return M


class LFPOperator(LinearForward):
    r"""Extracellular potential at the contacts of one placed probe.

    .. math:: V_j(t) = \frac{1}{n_p} \sum_{k=1}^{n_p} \sum_i M_i(\mathbf{r}_{jk})
              \, I_i(t)

    where :math:`I_i` is the transmembrane current of segment :math:`i`,
    :math:`\mathbf{r}_{jk}` the :math:`k`-th of :math:`n_p` points on contact
    :math:`j`, and for the default line source

    .. math:: M_i(\mathbf{r}) = \frac{1}{4\pi\sigma L_i}
              \log\left|\frac{\sqrt{h^2+\rho^2}-h}{\sqrt{l^2+\rho^2}-l}\right|

    with segment length :math:`L_i`, perpendicular distance :math:`\rho`
    and longitudinal distances :math:`h, l = h + L_i` (LFPykit's
    ``LineSourcePotential``; ``PointSourcePotential`` uses
    :math:`1/(4\pi\sigma|\mathbf{r}-\mathbf{r}_i|)`; ``root_as_point``
    treats the soma segments as points and the rest as lines).

    *Assumptions*: an infinite, homogeneous, linear (frequency-independent)
    volume conductor, isotropic (scalar ``sigma``) or anisotropic with
    diagonal conductivity along x, y, z; current density uniform along each
    segment; distances clipped at the segment radius. A contact's potential
    is the mean over points drawn on its surface (disc-electrode averaging),
    with no shunting by the probe.

    Parameters
    ----------
    geometry : CellGeometry
        The cell, soma at the origin.
    placement : ProbePlacement
        Probe and cell placement, ``n_points`` and ``seed``.
    sigma : float or sequence of 3 float
        Extracellular conductivity (S/m).
    method : {"linesource", "pointsource", "root_as_point", "soma_as_point"}
        Source model of each segment.
    inside : {"warn", "raise", "ignore"}
        What to do when a contact point lies inside the membrane.
    probe : Probe | None
        An already loaded probe (default: load ``placement.probe``).
    verbose : bool | str | int | None
        Logging level for this call.

    Attributes
    ----------
    matrix : ndarray, shape (n_contacts, n_seg)
        mV per nA.
    contacts : ndarray, shape (n_contacts, 3)
        Contact centres (µm).
    points : ndarray, shape (n_contacts, n_points, 3)
        The averaged points (µm).
    cell : CellGeometry
        The placed cell.

    Notes
    -----
    LFPykit's own ``seedvalue`` is not used: the contact points are drawn by
    :meth:`ProbePlacement.contact_points` and the point matrices averaged
    here, so results depend only on ``placement.seed``. Slice recordings with
    a planar MEA under saline/glass (method of images, LFPykit's
    ``RecMEAElectrode``) are not supported.

    References
    ----------
    .. [1] Lindén H, Hagen E, Łęski S, Norheim ES, Pettersen KH, Einevoll GT
       (2014) LFPy: a tool for biophysical simulation of extracellular
       potentials generated by detailed model neurons. Front. Neuroinform.
       7:41. doi:10.3389/fninf.2013.00041
    .. [2] Ness TV et al. (2015) Modelling and analysis of electrical
       potentials recorded in microelectrode arrays (MEAs).
       Neuroinformatics 13:403-426. doi:10.1007/s12021-015-9265-6
    """

    def __init__(
        self,
        geometry,
        placement: ProbePlacement,
        *,
        sigma=0.3,
        method: str = "linesource",
        inside: str = "warn",
        probe: Probe | None = None,
        verbose=None,
    ):
        with use_log_level(verbose):
            t0 = time.perf_counter()
            method = check_method(method)
            sigma = check_sigma(sigma)
            probe = load_probe(placement.probe) if probe is None else probe
            cell = placement.place_cell(geometry)
            points = placement.contact_points(probe)  # (n_contacts, n_points, 3)
            n_contacts, n_points = points.shape[:2]
            check_contacts_outside(
                cell, points.reshape(-1, 3), policy=inside, label=placement.label
            )

            # average the point-contact matrices over each contact's points
            M = (
                potential_matrix(
                    cell.to_lfpykit(),
                    points.reshape(-1, 3),
                    sigma=sigma,
                    method=method,
                    rootinds=_soma_indices(cell),
                )
                .reshape(n_contacts, n_points, -1)
                .mean(axis=1)
            )
            super().__init__(
                M, (n_contacts,), label=placement.label, kind="lfp", unit="mV"
            )
            self.placement = placement
            self.probe = probe
            self.sigma = sigma
            self.method = method
            self.cell = cell
            self.contacts, self.normals, self.main_axes = placement.place_contacts(
                probe
            )
            self.points = points
            logger.debug(
                "LFP %s: %d contacts x %d points x %d segments (%s) in %.3f s",
                placement.label,
                n_contacts,
                n_points,
                self.n_seg,
                method,
                time.perf_counter() - t0,
            )


def laminar_axis(contacts, *, tol: float = 1e-3):
    """Axis of a laminar probe.

    Parameters
    ----------
    contacts : ndarray, shape (n_contacts, 3)
        Contact centres (µm), at least 2, all distinct.
    tol : float
        Largest distance (µm) of a contact from the fitted line.

    Returns
    -------
    center : ndarray, shape (3,)
        Mean contact position (µm).
    axis : ndarray, shape (3,)
        Unit direction, pointing from contact 0 towards the last contact.
    s : ndarray, shape (n_contacts,)
        Contact positions along the axis relative to ``center`` (µm).

    Raises
    ------
    NotImplementedError
        When the contacts are not on one line.
    """
    contacts = np.asarray(contacts, dtype=float)
    if contacts.shape[0] < 2:
        raise NotImplementedError(
            "CSD needs a laminar probe with at least 2 contacts on one line, got "
            f"{contacts.shape[0]} contact(s)"
        )
    center = contacts.mean(axis=0)
    rel = contacts - center
    axis = np.linalg.svd(rel, full_matrices=False)[2][0]
    if np.dot(rel[-1] - rel[0], axis) < 0:
        axis = -axis
    s = rel @ axis
    off = np.linalg.norm(rel - s[:, None] * axis, axis=1).max()
    if off > tol:
        raise NotImplementedError(
            f"CSD needs a laminar probe (all contacts on one line); these contacts "
            f"lie up to {off:.3g} µm off their common axis. Use a linear probe "
            f"such as 'Laminar-16-100' or 'Linear-32-50'"
        )
    if np.min(np.diff(np.sort(s))) <= 0:
        raise ValueError("CSD needs distinct contact positions along the probe axis")
    return center, axis, s


class CSDOperator(LinearForward):
    r"""Ground-truth current source density in cylinders along a laminar probe.

    .. math:: C_j(t) = \frac{1}{\pi r^2 h_j} \sum_i f_{ij} I_i(t)

    where :math:`f_{ij}` is the fraction of segment :math:`i`'s length inside
    cylinder :math:`j` (radius :math:`r`, height :math:`h_j`, coaxial with the
    probe, centred on contact :math:`j` and reaching half-way to the
    neighbouring contacts, so the cylinders tile the shank without overlap).

    *Assumptions*: current uniform along each segment (piecewise-linear line
    sources); cylinders coaxial with the probe. The cell is expressed in the
    probe's frame (its axis on z through the probe centre) and LFPykit's
    ``LaminarCurrentSourceDensity`` computes the fractions.

    Parameters
    ----------
    geometry : CellGeometry
        The cell, soma at the origin.
    placement : ProbePlacement
        A laminar probe (contacts on one line) and the cell placement.
    radius : float
        Cylinder radius (µm).
    probe : Probe | None
        An already loaded probe.
    verbose : bool | str | int | None
        Logging level for this call.

    Attributes
    ----------
    matrix : ndarray, shape (n_contacts, n_seg)
        nA/µm³ per nA.
    volumes : ndarray, shape (n_contacts, 2)
        Lower and upper cylinder edge along the probe axis, relative to the
        probe centre (µm).

    References
    ----------
    .. [1] Pettersen KH, Hagen E, Einevoll GT (2008) Estimation of population
       firing rates and current source densities from laminar electrode
       recordings. J Comput Neurosci 24:291-313.
       doi:10.1007/s10827-007-0056-4
    .. [2] Hagen E et al. (2017) Focal local field potential signature of the
       single-axon monosynaptic thalamocortical connection. J Neurosci
       37:5123-5143. doi:10.1523/JNEUROSCI.2715-16.2017
    """

    def __init__(
        self,
        geometry,
        placement: ProbePlacement,
        *,
        radius: float = 100.0,
        probe: Probe | None = None,
        verbose=None,
    ):
        import lfpykit

        with use_log_level(verbose):
            check_positive(radius, "radius")
            probe = load_probe(placement.probe) if probe is None else probe
            contacts = placement.place_contacts(probe)[0]
            center, axis, s = laminar_axis(contacts)

            # cylinders tiling the shank: edges half-way between neighbours
            order = np.argsort(s)
            s_sorted = s[order]
            mid = (s_sorted[1:] + s_sorted[:-1]) / 2
            lower = np.r_[2 * s_sorted[0] - mid[0], mid]
            upper = np.r_[mid, 2 * s_sorted[-1] - mid[-1]]
            volumes = np.empty((s.size, 2))
            volumes[order] = np.c_[lower, upper]

            # cell in the probe frame: probe axis on +z through the origin
            rot = rotation_between(axis, (0.0, 0.0, 1.0))
            cell = transform_geometry(
                placement.place_cell(geometry), rot, -rot @ center
            )
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                csd = lfpykit.LaminarCurrentSourceDensity(
                    cell=cell.to_lfpykit(), z=volumes, r=np.full(s.size, float(radius))
                )
                M = csd.get_transformation_matrix()
            for w in caught:  # LFPykit's resolution advice; not an error here
                logger.info("LFPykit (CSD %s): %s", placement.label, w.message)
            super().__init__(
                M, (s.size,), label=placement.label, kind="csd", unit="nA/µm³"
            )
            self.placement = placement
            self.probe = probe
            self.radius = float(radius)
            self.volumes = volumes
            self.axis = axis
            self.center = center
            self.contacts = contacts


def dipole_matrix(geometry) -> np.ndarray:
    """LFPykit's current-dipole-moment matrix, shape (3, n_seg), in µm.

    ``P = M @ imem`` in nA·µm, with ``M[:, i]`` the midpoint of segment ``i``.
    """
    import lfpykit

    return lfpykit.CurrentDipoleMoment(
        geometry.to_lfpykit()
    ).get_transformation_matrix()


class DipoleOperator(LinearForward):
    r"""Current dipole moment of the cell.

    .. math:: \mathbf{P}(t) = \sum_i \mathbf{r}_i \, I_i(t)

    with :math:`\mathbf{r}_i` the midpoint of segment :math:`i` (µm) and
    :math:`I_i` its transmembrane current (nA), giving nA·µm.

    *Assumptions*: each segment's current sits at its midpoint. Because the
    transmembrane currents of a cell sum to zero, :math:`\mathbf{P}` does not
    depend on where the cell is; it is computed in the cell's own frame
    (soma at the origin, apical axis along +y).

    Parameters
    ----------
    geometry : CellGeometry
        The cell.

    Attributes
    ----------
    matrix : ndarray, shape (3, n_seg)
        µm (nA·µm per nA).

    References
    ----------
    .. [1] Lindén H, Pettersen KH, Einevoll GT (2010) Intrinsic dendritic
       filtering gives low-pass power spectra of local field potentials.
       J Comput Neurosci 29:423-444. doi:10.1007/s10827-010-0245-4
    """

    def __init__(self, geometry):
        super().__init__(
            dipole_matrix(geometry), (3,), label="dipole", kind="dipole", unit="nA·µm"
        )
