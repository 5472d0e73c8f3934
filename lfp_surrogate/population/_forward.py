"""Forward matrices of every cell of a population: LFP, CSD, dipole, EEG, MEG."""

from __future__ import annotations

import dataclasses
import time

import numpy as np

from .._logging import logger, use_log_level
from .._validation import check_type
from ..forward import (
    FT_PER_NA_PER_UM,
    EEGElectrodes,
    ForwardConfig,
    LFPOperator,
    MEGSensors,
    load_head_model,
    load_probe,
    rotation_matrix,
)
from ..forward._eeg import EEGOperator, _as_electrodes, _reference
from ..forward._heads import cell_rotation_in_head, resolve_direction
from ..forward._lfp import CSDOperator, dipole_matrix
from ..forward._transforms import segment_ends
from ._population import Population


class PopulationForward:
    r"""Linear maps from each cell's currents to the population's signals.

    Every signal of the population is a sum over cells of a matrix times the
    cell's transmembrane currents,

    .. math:: \mathbf{y}(t) = \sum_{i=1}^{N} \mathbf{M}_i\, \mathbf{I}_i(t),

    with :math:`\mathbf{M}_i` built for cell :math:`i`'s own position and
    rotation:

    - ``lfp/<label>`` (mV) and ``csd/<label>`` (nA/µm³): the probe, placed in
      the population frame, seen from cell :math:`i` placed at its position
      and rotation (:class:`~lfp_surrogate.forward.LFPOperator`,
      :class:`~lfp_surrogate.forward.CSDOperator` with the cell's
      ``cell_position`` and ``cell_rotation``);
    - ``dipole`` (nA·µm): :math:`\mathbf{R}_i \mathbf{M}_P`, each cell's
      dipole moment about its soma turned into the population frame;
    - ``eeg/<head>`` (mV) and ``meg/<model>`` (fT): each cell's dipole,
      turned into the head, at its own location,
      :math:`\mathbf{T}(\mathbf{r}_i)\mathbf{R}_h\mathbf{R}_i\mathbf{M}_P`.

    The population frame's origin sits on the brain surface at
    ``config.head_placement.direction``, its +y axis along the local radial
    direction, turned by ``roll`` and ``tilt`` as one cell is
    (:math:`\mathbf{R}_h`), so cell :math:`i`'s soma lies at
    :math:`\mathbf{r}_0 + \mathbf{R}_h \mathbf{p}_i` with
    :math:`\mathbf{r}_0` on the brain sphere. A tilted population turns as
    a whole about :math:`\mathbf{r}_0` (a patch of a sulcal wall), where one
    cell turns about its soma; without tilt, a one-cell population at
    ``(0, -depth, 0)`` gives exactly the single-cell EEG and MEG.

    *Assumptions*: those of the single-cell models (infinite homogeneous
    medium for the LFP, the current-dipole approximation and concentric
    spheres for EEG and MEG); cells do not shunt or shadow one another. Each
    cell's dipole keeps its own location, so no assumption is made that the
    cells are close together; the sphere's curvature across the column is
    ignored for the cells' orientation (all share :math:`\mathbf{R}_h`), an
    angle of about column width / brain radius (0.4° for 0.5 mm).

    Parameters
    ----------
    population : Population
    geometries : dict of str to CellGeometry
        Each cell type's geometry (soma at the origin, apical axis +y).
    config : ForwardConfig | None
        Probes (``position``: probe centre in the population frame, µm;
        ``cell_position`` and ``cell_rotation`` must be zero, they come from
        the population), ``sigma``, ``method``, ``inside``, ``csd_radius``,
        ``heads`` (four-sphere or infinite), ``head_placement``
        (``direction``, ``tilt``, ``roll``, ``dipole_location``; ``depth``
        and ``margin`` are not used: the cells' depths are their positions),
        ``meg`` and its settings.
    electrodes : EEGElectrodes | ndarray, shape (n_electrodes, 3) | None
        EEG electrodes on the scalp (µm); default ``config.eeg_montage``.
    meg_sensors : MEGSensors | None
        Default ``config.meg_n_sensors`` on a sphere of ``config.meg_radius``.
    verbose : bool | str | int | None
        Logging level for this call.
    **overrides
        Fields of :class:`~lfp_surrogate.forward.ForwardConfig`.

    Attributes
    ----------
    matrices : dict of str to dict of str to ndarray
        Signal key -> cell type -> matrices of that type's cells, shape
        (n_type_cells, n_out, n_seg), float64.
    out_shapes : dict of str to tuple of int
        Shape of one sample of each signal, e.g. ``(n_contacts,)`` or
        ``(n_sensors, 3)``.
    units : dict of str to str
        Unit of each signal.
    head_locations : dict of str to ndarray, shape (n_cells, 3)
        Where each cell's dipole sits in each head (µm, head frame).

    Raises
    ------
    NotImplementedError
        For the New York head (its lead field is given at one cortical
        vertex, not at each cell's location).
    ValueError
        For a probe placement with a cell position or rotation, or a cell
        that reaches outside the brain sphere.
    """

    def __init__(
        self,
        population: Population,
        geometries: dict,
        config: ForwardConfig | None = None,
        *,
        electrodes=None,
        meg_sensors: MEGSensors | None = None,
        verbose=None,
        **overrides,
    ):
        with use_log_level(verbose):
            t0 = time.perf_counter()
            check_type(population, Population, "population")
            config = ForwardConfig() if config is None else config
            check_type(config, ForwardConfig, "config")
            if overrides:
                config = dataclasses.replace(config, **overrides)
            missing = [t for t in population.types if t not in geometries]
            if missing:
                raise ValueError(
                    f"geometries must hold every cell type of the population; "
                    f"missing {missing}"
                )
            self.population = population
            self.geometries = dict(geometries)
            self.config = config
            self.matrices: dict = {}
            self.out_shapes: dict = {}
            self.units: dict = {}
            self.head_locations: dict = {}
            self._torch: dict = {}
            # row of each cell in its type's stack of matrices
            self._row = np.empty(population.n_cells, dtype=int)
            for t in population.types:
                idx = population.cells_of(t)
                self._row[idx] = np.arange(idx.size)
            self._rot = np.stack([rotation_matrix(r) for r in population.rotations])
            self._dipole = {t: dipole_matrix(g) for t, g in geometries.items()}
            logger.info(
                "Building forward models of %d cells (%d type(s)): %d probe(s), "
                "head(s) %s, MEG %s",
                population.n_cells,
                len(population.types),
                len(config.probes),
                list(config.heads) or "none",
                list(config.meg) or "none",
            )
            self._build_probes()
            self._add("dipole", (3,), "nA·µm", lambda i, t: self._cell_dipole(i, t))
            eeg_electrodes = self._build_eeg(electrodes)
            self._build_meg(meg_sensors, electrodes or eeg_electrodes)
            logger.info(
                "Population forward models built in %.2f s: %s",
                time.perf_counter() - t0,
                ", ".join(self.keys),
            )

    # -- building ----------------------------------------------------------

    @property
    def keys(self) -> list[str]:
        """The signals: ``lfp/<label>``, ``csd/<label>``, ``dipole``, ..."""
        return list(self.matrices)

    def _add(self, key, out_shape, unit, build) -> None:
        """Build ``key``'s matrix for every cell with ``build(i, type)``."""
        per_type = {}
        for t in self.population.types:
            idx = self.population.cells_of(t)
            per_type[t] = np.stack([build(int(i), t) for i in idx])
        self.matrices[key] = per_type
        self.out_shapes[key] = tuple(out_shape)
        self.units[key] = unit

    def _cell_dipole(self, i: int, t: str) -> np.ndarray:
        """Cell ``i``'s dipole map in the population frame, shape (3, n_seg)."""
        return self._rot[i] @ self._dipole[t]

    def _build_probes(self) -> None:
        pop, cfg = self.population, self.config
        for placement in cfg.probes:
            if any(placement.cell_position) or any(placement.cell_rotation):
                raise ValueError(
                    f"probes: placement {placement.label!r} has cell_position "
                    f"{placement.cell_position} and cell_rotation "
                    f"{placement.cell_rotation}; in a population these come from "
                    f"the cells: give only the probe centre (position, µm, in "
                    f"the population frame) and its rotation"
                )
            probe = load_probe(placement.probe)

            def placed(i, placement=placement):
                # the probe stays put; cell i sits at its own place
                return dataclasses.replace(
                    placement,
                    position=tuple(np.subtract(placement.position, pop.positions[i])),
                    cell_position=tuple(pop.positions[i]),
                    cell_rotation=tuple(pop.rotations[i]),
                )

            def lfp(i, t, placed=placed, probe=probe):
                return LFPOperator(
                    self.geometries[t],
                    placed(i),
                    sigma=cfg.sigma,
                    method=cfg.method,
                    inside=cfg.inside,
                    probe=probe,
                    verbose="WARNING",
                ).matrix

            self._add(f"lfp/{placement.label}", (probe.n_contacts,), "mV", lfp)

            def csd(i, t, placed=placed, probe=probe):
                return CSDOperator(
                    self.geometries[t],
                    placed(i),
                    radius=cfg.csd_radius,
                    probe=probe,
                    verbose="WARNING",
                ).matrix

            try:
                self._add(f"csd/{placement.label}", (probe.n_contacts,), "nA/µm³", csd)
            except NotImplementedError as err:
                logger.debug("no CSD for %s: %s", placement.label, err)

    def _locations(self, radial, rot_head, brain_radius: float, what: str):
        """Each cell's dipole location in the head (µm), shape (n_cells, 3).

        Checks that every cell lies inside the brain sphere.
        """
        pop = self.population
        origin = brain_radius * radial
        out = np.empty((pop.n_cells, 3))
        for i, t in enumerate(pop.cell_types):
            g = self.geometries[t]
            start, end = segment_ends(g)
            pts = np.concatenate([start, end]) @ (rot_head @ self._rot[i]).T
            soma = origin + rot_head @ pop.positions[i]
            reach = np.linalg.norm(pts + soma, axis=1) + np.r_[g.d, g.d] / 2
            if reach.max() >= brain_radius:
                raise ValueError(
                    f"cell {i} ({t}) reaches {reach.max() - brain_radius:.1f} µm "
                    f"outside the brain sphere ({what}, radius {brain_radius:g} "
                    f"µm) at soma depth {-pop.positions[i, 1]:g} µm; the pial "
                    f"surface is y = 0 in the population frame: place the cell "
                    f"deeper (more negative y)"
                )
            if self.config.head_placement.dipole_location == "centroid":
                centroid = (g.area[:, None] * g.mid).sum(0) / g.area.sum()
                out[i] = soma + rot_head @ self._rot[i] @ centroid
            else:
                out[i] = soma
        return out

    def _build_eeg(self, electrodes):
        cfg = self.config
        placement = cfg.head_placement
        if cfg.heads and placement.depth is not None:
            logger.warning(
                "head_placement.depth (%g µm) is not used for a population: each "
                "cell's depth is -y of its position",
                placement.depth,
            )
        first = None
        for name in cfg.heads:
            head = load_head_model(name)
            if head.kind == "nyhead":
                raise NotImplementedError(
                    f"heads: population EEG in the New York head ({head.name}) "
                    f"is not supported (its lead field is given at one cortical "
                    f"vertex, not at each cell); use a four-sphere or infinite "
                    f"head model"
                )
            elec = electrodes
            if elec is None:
                elec = EEGElectrodes.from_montage(cfg.eeg_montage, head.scalp_radius)
            elec = _as_electrodes(elec)
            elec.check_on_scalp(head.scalp_radius)
            first = elec if first is None else first
            radial = resolve_direction(placement, elec)
            rot_head = cell_rotation_in_head(radial, placement)
            where = self._locations(radial, rot_head, head.brain_radius, head.name)
            self.head_locations[head.name] = where

            def eeg(i, t, head=head, elec=elec, rot_head=rot_head, where=where):
                T = EEGOperator._sphere_matrix(head, elec, where[i])
                T_ref = _reference(T, cfg.eeg_reference, elec.names)
                return T_ref @ rot_head @ self._cell_dipole(i, t)

            self._add(f"eeg/{head.name}", (elec.n_electrodes,), "mV", eeg)
        return first

    def _build_meg(self, sensors, electrodes) -> None:
        from lfpykit.eegmegcalc import (
            InfiniteHomogeneousVolCondMEG,
            SphericallySymmetricVolCondMEG,
        )

        cfg = self.config
        if not cfg.meg:
            return
        sensors = sensors or MEGSensors.on_sphere(cfg.meg_n_sensors, cfg.meg_radius)
        brain_radius = load_head_model(cfg.meg_head_model).brain_radius
        if electrodes is not None:
            electrodes = _as_electrodes(electrodes)
        radial = resolve_direction(cfg.head_placement, electrodes)
        rot_head = cell_rotation_in_head(radial, cfg.head_placement)
        where = self._locations(radial, rot_head, brain_radius, cfg.meg_head_model)
        positions = np.array(sensors.positions)
        if (
            np.linalg.norm(positions, axis=1).min()
            <= np.linalg.norm(where, axis=1).max()
        ):
            raise ValueError(
                "meg sensors must all lie farther from the head centre than every "
                "cell's dipole; increase meg_radius"
            )
        for model in cfg.meg:
            if model == "infinite":
                H = InfiniteHomogeneousVolCondMEG(positions)
            else:
                H = SphericallySymmetricVolCondMEG(r=positions)
            self.head_locations[f"meg/{model}"] = where

            def meg(i, t, H=H, rot_head=rot_head, where=where):
                # (n_sensors, 3, 3) field per dipole component, in fT per nA·µm
                A = FT_PER_NA_PER_UM * H.get_transformation_matrix(where[i])
                return A.reshape(-1, 3) @ rot_head @ self._cell_dipole(i, t)

            self._add(f"meg/{model}", (sensors.n_sensors, 3), "fT", meg)

    # -- applying ----------------------------------------------------------

    def apply(self, cell_type: str, cells, imem) -> dict:
        """Summed signals of some cells of one type.

        Parameters
        ----------
        cell_type : str
            Their type (a key of ``geometries``).
        cells : sequence of int, length n_batch
            Their indices in the population.
        imem : ndarray | torch.Tensor, shape (n_batch, n_seg, n_times)
            Their transmembrane currents (nA). A tensor keeps its device and
            dtype.

        Returns
        -------
        signals : dict of str to ndarray | torch.Tensor
            Signal key -> the sum over ``cells``, shape (*out_shape, n_times).
        """
        cells = np.asarray(cells, dtype=int).reshape(-1)
        wrong = [int(i) for i in cells if self.population.cell_types[i] != cell_type]
        if wrong:
            raise ValueError(
                f"cells must all be of type {cell_type!r}; cells {wrong[:10]} are not"
            )
        if imem.shape[0] != cells.size or imem.ndim != 3:
            raise ValueError(
                f"imem must have shape (n_batch={cells.size}, n_seg, n_times), got "
                f"{tuple(imem.shape)}"
            )
        rows = self._row[cells]
        out = {}
        for key in self.matrices:
            M = self._matrix(key, cell_type, imem)[rows]  # (n_batch, n_out, n_seg)
            if isinstance(imem, np.ndarray):
                y = np.einsum("bos,bst->ot", M, imem)
            else:
                import torch

                y = torch.einsum("bos,bst->ot", M, imem)
            out[key] = y.reshape(*self.out_shapes[key], imem.shape[-1])
        return out

    def _matrix(self, key, cell_type, like):
        M = self.matrices[key][cell_type]
        if isinstance(like, np.ndarray):
            return M
        import torch

        cache = (key, cell_type, str(like.device), like.dtype)
        if cache not in self._torch:
            self._torch[cache] = torch.as_tensor(
                M, dtype=like.dtype, device=like.device
            )
        return self._torch[cache]
