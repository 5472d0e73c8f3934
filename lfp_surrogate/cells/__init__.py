"""Named detailed cell models: catalogue, mechanisms, geometry and regions.

Regions
-------
Every segment belongs to one region of :data:`REGIONS`:

- ``soma``, ``axon``: the template's somatic and axonal sections (the Blue
  Brain models have their axon replaced by a 60 µm stub).
- ``basal``: the basal dendrites.
- ``apical_trunk``: from the apical root, follow at each branch point the child
  with the largest total dendritic length downstream; the *main bifurcation* is
  the first branch point whose second-largest child subtree holds at least
  ``MAIN_BIFURCATION_RATIO`` (25 %) of the largest one's length. The trunk is
  the path up to and including the section that ends there.
- ``oblique``: every subtree leaving the trunk before the main bifurcation.
- ``tuft``: everything beyond the main bifurcation.
- ``dend``: all dendrites of cells without an apical tree (interneurons).
"""

from ._build import MAIN_BIFURCATION_RATIO, NeuronCell, build_cell
from ._cache import cell_geometry, cell_imem_operator
from ._catalogue import DEFAULT_CELL, CellSpec, get_cell_spec, list_cells
from ._geometry import REGIONS, CellGeometry
from ._mechanisms import compile_mechanisms, load_mechanisms

__all__ = [
    "DEFAULT_CELL",
    "MAIN_BIFURCATION_RATIO",
    "REGIONS",
    "CellGeometry",
    "CellSpec",
    "NeuronCell",
    "build_cell",
    "cell_geometry",
    "cell_imem_operator",
    "compile_mechanisms",
    "get_cell_spec",
    "list_cells",
    "load_mechanisms",
]
