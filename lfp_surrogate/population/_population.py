"""A population of cells as plain data, and a cortical-column layout."""

from __future__ import annotations

import numbers
import os
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .._validation import check_array, check_positive, check_type

#: µm³ in one mm³ (1 mm = 1e3 µm, cubed).
UM3_PER_MM3 = 1e9


@dataclass(frozen=True, eq=False)
class Population:
    """Cells of one or several surrogate types placed in a common frame.

    The population frame has its origin on the pial (brain) surface above
    the column and its +y axis pointing out of the brain, along the apical
    axis of an unrotated cell; soma depths below the surface are ``-y``.
    Cell ``i`` is its type's geometry (soma at the origin, apical axis +y)
    rotated about its soma by ``rotations[i]`` and moved to
    ``positions[i]``.

    Parameters
    ----------
    cell_types : sequence of str, length n_cells
        Each cell's surrogate: the name of a shipped model (see
        :func:`lfp_surrogate.train.shipped_models`) or a model folder.
    positions : array-like, shape (n_cells, 3)
        Soma positions in the population frame (µm).
    rotations : array-like, shape (n_cells, 3)
        Rotations about x, then y, then z (degrees, right-handed, about the
        soma; ``LFPy.Cell.set_rotation``'s convention).
    seed : int
        Root seed of the inputs: cell ``i`` draws its input from child ``i``
        of ``numpy.random.SeedSequence(seed)`` (as simulation ``i`` of a
        dataset), so every cell has its own input.

    Notes
    -----
    Cells may overlap: nothing keeps somata or dendrites apart. A population
    is plain, picklable data; :meth:`to_dict` and :meth:`from_dict` turn it
    into lists for YAML or JSON.
    """

    cell_types: tuple
    positions: np.ndarray
    rotations: np.ndarray
    seed: int = 0

    def __post_init__(self):
        if isinstance(self.cell_types, (str, os.PathLike)):
            raise TypeError(
                "cell_types must be a sequence with one model name or folder per "
                f"cell, got the single value {self.cell_types!r}; repeat it "
                f"(e.g. [name] * n_cells)"
            )
        types = tuple(os.fspath(t) for t in self.cell_types)
        for t in types:
            check_type(t, str, "cell_types", "model names or folders (str)")
        if not types:
            raise ValueError("cell_types must name at least one cell, got none")
        n = len(types)
        positions = check_array(
            np.asarray(self.positions, dtype=float), "positions", shape=(n, 3)
        )
        rotations = check_array(
            np.asarray(self.rotations, dtype=float), "rotations", shape=(n, 3)
        )
        if isinstance(self.seed, bool) or not isinstance(self.seed, numbers.Integral):
            raise TypeError(f"seed must be an integer, got {self.seed!r}")
        check_positive(int(self.seed), "seed", integer=True, strict=False)
        positions.flags.writeable = False
        rotations.flags.writeable = False
        set_ = object.__setattr__
        set_(self, "cell_types", types)
        set_(self, "positions", positions)
        set_(self, "rotations", rotations)
        set_(self, "seed", int(self.seed))

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return len(self.cell_types)

    @property
    def types(self) -> list[str]:
        """The distinct surrogate types, in order of first appearance."""
        return list(dict.fromkeys(self.cell_types))

    def cells_of(self, cell_type: str) -> np.ndarray:
        """Indices of the cells of one type, shape (n_type_cells,)."""
        return np.flatnonzero(np.asarray(self.cell_types) == cell_type)

    def subset(self, cells) -> Population:
        """The population of the cells ``cells`` only (same seed, same inputs).

        Parameters
        ----------
        cells : sequence of int
            Cell indices.

        Returns
        -------
        Population
            With the same seed, so its inputs drawn afresh differ from the
            full population's: pass those (``[inputs[i] for i in cells]``)
            to keep them.
        """
        idx = np.asarray(cells, dtype=int).reshape(-1)
        if idx.size and (idx.min() < 0 or idx.max() >= self.n_cells):
            raise ValueError(
                f"cells must be indices in [0, {self.n_cells - 1}], got {idx.tolist()}"
            )
        return Population(
            [self.cell_types[i] for i in idx],
            self.positions[idx],
            self.rotations[idx],
            seed=self.seed,
        )

    def to_dict(self) -> dict:
        """Plain dict of lists (µm, degrees) for YAML or JSON."""
        return dict(
            cell_types=list(self.cell_types),
            positions=self.positions.tolist(),
            rotations=self.rotations.tolist(),
            seed=self.seed,
        )

    @classmethod
    def from_dict(cls, data) -> Population:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        check_type(data, dict, "population", "a mapping")
        allowed = {"cell_types", "positions", "rotations", "seed"}
        unknown = sorted(set(data) - allowed)
        if unknown:
            raise ValueError(
                f"population has unknown key(s) {unknown}; allowed: {sorted(allowed)}"
            )
        return cls(**data)


class ColumnLayout(NamedTuple):
    """Positions and rotations of cells in a cylindrical column.

    Attributes
    ----------
    positions : ndarray, shape (n_cells, 3)
        Soma positions (µm), population frame (pial surface at y = 0).
    rotations : ndarray, shape (n_cells, 3)
        Rotations about x, y, z (degrees): about the column axis (y) only.
    radius : float
        Column radius (µm).
    density : float
        Soma density (cells/mm³) in the cylinder of the depth range.
    """

    positions: np.ndarray
    rotations: np.ndarray
    radius: float
    density: float


def column_layout(
    n_cells: int,
    depth: tuple[float, float],
    *,
    radius: float | None = None,
    density: float | None = None,
    seed: int = 0,
) -> ColumnLayout:
    r"""Somata drawn uniformly in a cylindrical cortical column.

    The column's axis is the population frame's y axis (normal to the pial
    surface at y = 0); somata are uniform in the cylinder of ``radius``
    between the two depths, every cell upright (apical axis +y) and turned
    by a uniform random angle about its own apical axis. Give the column's
    ``radius`` or the soma ``density`` (the other follows from
    :math:`n = \rho \pi r^2 (d_1 - d_0)`):

    .. math:: r = \sqrt{\frac{n}{\pi \rho (d_1 - d_0)}}

    Parameters
    ----------
    n_cells : int
        Number of cells.
    depth : tuple of 2 float
        Soma depths below the pial surface (µm), shallowest first; the somata
        lie at ``y`` in ``[-depth[1], -depth[0]]``.
    radius : float | None
        Column radius (µm).
    density : float | None
        Soma density (cells/mm³). For scale: the reconstructed rat
        somatosensory microcircuit holds about 31,000 neurons of all types in
        0.29 mm³, about 1.1e5 neurons/mm³ over all layers (Markram et al.
        2015, doi:10.1016/j.cell.2015.09.029); one cell type in one layer is
        a fraction of that.
    seed : int
        Seed of ``numpy.random.default_rng`` drawing positions and angles.

    Returns
    -------
    layout : ColumnLayout
        Positions, rotations, and the radius and density (one given, one
        derived).

    Raises
    ------
    ValueError
        Unless exactly one of ``radius`` and ``density`` is given, or for
        depths that are not increasing and non-negative.

    Examples
    --------
    >>> layout = column_layout(10, depth=(1000, 1200), density=5000, seed=1)
    >>> pop = Population(["l5_ttpc1"] * 10, layout.positions, layout.rotations)
    """
    check_positive(n_cells, "n_cells", integer=True)
    check_positive(seed, "seed", integer=True, strict=False)
    d0, d1 = check_array(np.asarray(depth, dtype=float), "depth", shape=(2,))
    if not 0 <= d0 < d1:
        raise ValueError(
            f"depth must be two depths (µm) with 0 <= shallow < deep, got "
            f"{tuple(depth)}; e.g. depth=(1000, 1200)"
        )
    if (radius is None) == (density is None):
        raise ValueError(
            f"give exactly one of radius (µm) and density (cells/mm³), got "
            f"radius={radius!r} and density={density!r}"
        )
    height = d1 - d0
    if radius is None:
        check_positive(density, "density")
        radius = float(np.sqrt(n_cells * UM3_PER_MM3 / (np.pi * density * height)))
    else:
        check_positive(radius, "radius")
        density = n_cells * UM3_PER_MM3 / (np.pi * radius**2 * height)

    rng = np.random.default_rng(seed)
    r = radius * np.sqrt(rng.random(n_cells))  # uniform over the disc
    phi = 2 * np.pi * rng.random(n_cells)
    y = -rng.uniform(d0, d1, n_cells)
    positions = np.column_stack([r * np.cos(phi), y, r * np.sin(phi)])
    rotations = np.zeros((n_cells, 3))
    rotations[:, 1] = rng.uniform(0.0, 360.0, n_cells)
    return ColumnLayout(positions, rotations, float(radius), float(density))


def population_inputs(
    population: Population, geometries: dict, duration: float, statistics=None
):
    """Each cell's own input spike trains.

    Parameters
    ----------
    population : Population
    geometries : dict of str to CellGeometry
        The geometry of each cell type.
    duration : float
        Duration (ms), a whole number of ms.
    statistics : InputStatistics | None
        Input statistics (default: the calibrated defaults).

    Returns
    -------
    inputs : list of SpikeTrains
        One per cell, cell ``i`` from child ``i`` of
        ``SeedSequence(population.seed)``.
    """
    from ..inputs import generate_inputs, simulation_seeds

    seeds = simulation_seeds(population.seed, population.n_cells)
    return [
        generate_inputs(geometries[t], duration, seed, statistics)
        for t, seed in zip(population.cell_types, seeds)
    ]
