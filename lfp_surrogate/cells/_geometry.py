"""Plain-data description of a cell's compartments (no NEURON needed)."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .._io import atomic_path, open_npz

#: Region names, indexed by the integer codes in :attr:`CellGeometry.region`.
REGIONS = ("soma", "axon", "basal", "apical_trunk", "oblique", "tuft", "dend")


@dataclass(frozen=True, eq=False)
class CellGeometry:
    """Geometry and regions of every segment of a cell, in LFPy's conventions.

    Segments are ordered as NEURON iterates them: sections in the cell's
    section list order, segments from the 0-end to the 1-end of each section.

    Parameters
    ----------
    name : str
        The cell's catalogue name.
    cell_hash : str
        Content hash of morphology, biophysics and segmentation.
    x, y, z : ndarray, shape (n_seg, 2)
        Start and end point of each segment (µm), soma centre at the origin,
        apical axis along +y for the Blue Brain pyramidal cells.
    d : ndarray, shape (n_seg,)
        Segment diameter (µm).
    area : ndarray, shape (n_seg,)
        Membrane area of each segment (µm²), as NEURON's ``area()``.
    length : ndarray, shape (n_seg,)
        Segment length (µm).
    region : ndarray of int, shape (n_seg,)
        Region code of each segment, an index into :data:`REGIONS`.
    sec_names : tuple of str
        Name of every section, in order.
    sec_index : ndarray of int, shape (n_seg,)
        Index into ``sec_names`` of each segment's section.
    seg_x : ndarray, shape (n_seg,)
        Normalised position of each segment centre along its section.
    """

    name: str
    cell_hash: str
    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    d: np.ndarray
    area: np.ndarray
    length: np.ndarray
    region: np.ndarray
    sec_names: tuple
    sec_index: np.ndarray
    seg_x: np.ndarray
    meta: dict = field(default_factory=dict)

    _ARRAYS = ("x", "y", "z", "d", "area", "length", "region", "sec_index", "seg_x")

    @property
    def n_seg(self) -> int:
        """Number of segments."""
        return int(self.d.shape[0])

    @property
    def mid(self) -> np.ndarray:
        """Segment midpoints, shape (n_seg, 3) in µm."""
        return np.stack([self.x.mean(1), self.y.mean(1), self.z.mean(1)], axis=1)

    def region_mask(self, region: str) -> np.ndarray:
        """Boolean mask, shape (n_seg,), of the segments in ``region``."""
        from .._validation import check_option

        check_option(region, REGIONS, "region")
        return self.region == REGIONS.index(region)

    def seg_name(self, idx: int) -> str:
        """``'sec(x)'`` name of segment ``idx``."""
        return f"{self.sec_names[self.sec_index[idx]]}({self.seg_x[idx]:.4g})"

    def to_lfpykit(self):
        """An :class:`lfpykit.CellGeometry` of this cell (copies the arrays)."""
        import lfpykit

        return lfpykit.CellGeometry(
            x=self.x.copy(), y=self.y.copy(), z=self.z.copy(), d=self.d.copy()
        )

    def save(self, fname) -> None:
        """Write the geometry to an ``.npz`` file atomically."""
        arrays = {k: getattr(self, k) for k in self._ARRAYS}
        header = dict(
            name=self.name,
            cell_hash=self.cell_hash,
            sec_names=list(self.sec_names),
            meta=self.meta,
        )
        with atomic_path(fname, suffix=".npz") as tmp:
            with open(tmp, "wb") as f:
                np.savez(f, header=json.dumps(header), **arrays)

    @classmethod
    def load(cls, fname) -> CellGeometry:
        """Read a geometry written by :meth:`save`.

        Raises
        ------
        FileNotFoundError
            If ``fname`` does not exist.
        ValueError
            If ``fname`` is not a geometry ``.npz`` written by :meth:`save`
            (naming the file and the missing or bad field).
        """
        fname = Path(fname)
        with open_npz(
            fname, what="a cell geometry", writer="CellGeometry.save", name="fname"
        ) as f:
            missing = [k for k in (*cls._ARRAYS, "header") if k not in f.files]
            if missing:
                raise ValueError(
                    f"{fname} is not a cell geometry file: missing field(s) "
                    f"{missing}; write it with CellGeometry.save"
                )
            try:
                header = json.loads(str(f["header"]))
                arrays = {k: f[k] for k in cls._ARRAYS}
            except ValueError:
                # object arrays (pickles) are never loaded
                raise ValueError(
                    f"{fname} is not a cell geometry file: its fields are not "
                    f"plain arrays; write it with CellGeometry.save"
                ) from None
        return cls(
            name=header["name"],
            cell_hash=header["cell_hash"],
            sec_names=tuple(header["sec_names"]),
            meta=header.get("meta", {}),
            **arrays,
        )
