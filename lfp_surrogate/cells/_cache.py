"""Geometry and current operator of a named cell, without NEURON when cached.

The first call for a cell builds it in a fresh Python process (so that the
caller's NEURON state is untouched) and stores ``geometry.npz`` and
``imem_operator.npz`` in ``<cache>/cells/<name>-<key>/``, where ``<key>``
hashes every file the model is built from and the NEURON version. Later calls
read those files and need no NEURON.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from pathlib import Path

from .._io import cache_dir
from ._catalogue import get_cell_spec, synapse_mod_files
from ._geometry import CellGeometry

_BUILD = """
import sys
from lfp_surrogate.cells import build_cell
cell = build_cell(sys.argv[1])
cell.geometry.save(sys.argv[2] + "/geometry.npz")
cell.imem_operator().save(sys.argv[2] + "/imem_operator.npz", overwrite=True)
"""


def _spec_key(spec) -> str:
    digest = hashlib.sha256(spec.name.encode())
    try:
        from importlib.metadata import version

        digest.update(version("neuron").encode())
    except Exception:  # noqa: BLE001 - NEURON absent: key without it
        digest.update(b"no-neuron")
    files = list(synapse_mod_files()) + [Path(__file__).with_name("_build.py")]
    if spec.kind == "bbp":
        folder = Path(spec.folder)
        files += sorted(folder.glob("*.hoc")) + sorted(folder.glob("morphology/*"))
        files += list(spec.mod_files)
    for path in files:
        digest.update(path.name.encode() + Path(path).read_bytes())
    return digest.hexdigest()[:12]


def _folder(cell) -> Path:
    spec = get_cell_spec(cell)
    folder = cache_dir("cells", f"{spec.name}-{_spec_key(spec)}")
    if not (folder / "imem_operator.npz").exists():
        proc = subprocess.run(
            [sys.executable, "-c", _BUILD, spec.name, str(folder)],
            capture_output=True,
            text=True,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"building cell {spec.name!r} to cache its geometry failed:\n"
                f"{proc.stderr.strip()[-2000:]}"
            )
    return folder


def cell_geometry(cell="l5_ttpc1") -> CellGeometry:
    """Geometry of a named cell (cached; built once in a subprocess).

    Parameters
    ----------
    cell : str
        Catalogue name.

    Returns
    -------
    geometry : CellGeometry
    """
    return CellGeometry.load(_folder(cell) / "geometry.npz")


def cell_imem_operator(cell="l5_ttpc1"):
    """The exact vmem -> imem operator of a named cell (cached, as above).

    Returns
    -------
    operator : lfp_surrogate.currents.ImemOperator
    """
    from ..currents import ImemOperator

    geometry = cell_geometry(cell)
    return ImemOperator.load(
        _folder(cell) / "imem_operator.npz", cell_hash=geometry.cell_hash
    )
