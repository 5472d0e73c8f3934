"""Build a catalogue cell in NEURON and describe it as plain data."""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from pathlib import Path

import numpy as np

from .._logging import logger, use_log_level
from .._neuron import import_neuron, quiet_stdout
from ._catalogue import CellSpec, get_cell_spec, synapse_mod_files
from ._geometry import REGIONS, CellGeometry
from ._mechanisms import load_mechanisms, sources_hash

#: Fraction of the larger child subtree that the smaller one must reach for a
#: branch point on the apical path to count as the main bifurcation.
MAIN_BIFURCATION_RATIO = 0.25

# the one cell built in this process (Blue Brain templates delete all others)
_CURRENT: dict = {}


class NeuronCell:
    """A catalogue cell instantiated in NEURON.

    Only one cell lives in a process at a time: the Blue Brain templates
    delete every existing section when they are instantiated, so building a
    new cell invalidates the previous one; building the same cell again
    returns the existing one.

    Attributes
    ----------
    spec : CellSpec
        The description it was built from.
    geometry : CellGeometry
        Plain-data geometry, regions and content hash.
    """

    def __init__(self, spec: CellSpec, nrn_template, nrn_sections, groups):
        self.spec = spec
        self._nrn_template = nrn_template
        self._nrn_sections = list(nrn_sections)
        self._nrn_segments = [seg for sec in self._nrn_sections for seg in sec]
        self._groups = groups
        self.geometry = _extract_geometry(spec, self._nrn_sections, groups)

    @property
    def name(self) -> str:
        """Catalogue name."""
        return self.spec.name

    @property
    def n_seg(self) -> int:
        """Number of segments."""
        return len(self._nrn_segments)

    @property
    def cell_hash(self) -> str:
        """Content hash of morphology, biophysics and segmentation."""
        return self.geometry.cell_hash

    def imem_operator(self):
        """The exact vmem -> imem operator of this cell (built once, cached).

        Cached in memory and on disk (``<cache>/cells/<cell_hash>/``), so
        later processes load it without rebuilding.

        Returns
        -------
        operator : lfp_surrogate.currents.ImemOperator
        """
        if getattr(self, "_imem_operator", None) is None:
            from .._io import cache_dir
            from ..currents import ImemOperator

            path = cache_dir("cells", self.cell_hash) / "imem_operator.npz"
            if path.exists():
                op = ImemOperator.load(path, cell_hash=self.cell_hash)
            else:
                op = ImemOperator.from_sections(self._nrn_sections, self.cell_hash)
                op.save(path, overwrite=True)
            self._imem_operator = op
        return self._imem_operator

    def __repr__(self) -> str:
        return f"<NeuronCell {self.name!r}, {self.n_seg} segments>"


def build_cell(cell="l5_ttpc1", *, verbose=None) -> NeuronCell:
    """Compile the mechanisms of ``cell`` (once) and instantiate it in NEURON.

    Parameters
    ----------
    cell : str | CellSpec
        A catalogue name (see :func:`list_cells`) or a spec.
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    cell : NeuronCell
        The built cell, at ``celsius`` of its spec, soma centre at the origin.

    Notes
    -----
    The Blue Brain holding current is not applied. The default cell's apical
    dendrites carry no calcium channels: it has NMDA plateaus but no calcium
    hot zone and no BAC firing.
    """
    with use_log_level(verbose):
        spec = get_cell_spec(cell)
        current = _CURRENT.get("cell")
        if current is not None and current.spec == spec:
            return current  # one cell per process: reuse it
        t0 = time.perf_counter()
        h = import_neuron()
        with quiet_stdout():
            h.load_file("stdrun.hoc")
        load_mechanisms(synapse_mod_files())
        if spec.kind == "bbp":
            with quiet_stdout():
                template, sections, groups = _build_bbp(h, spec)
        else:
            template, sections, groups = _build_ball_and_stick(h)
        h.celsius = spec.celsius
        h.secondorder = 0  # backward Euler: keeps the vmem -> imem identity
        ncell = NeuronCell(spec, template, sections, groups)
        _CURRENT["cell"] = ncell
        logger.info(
            "Built cell %s: %d segments, hash %s (%.1f s)",
            spec.name,
            ncell.n_seg,
            ncell.cell_hash,
            time.perf_counter() - t0,
        )
        return ncell


@contextlib.contextmanager
def _chdir(path):
    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)


def _build_bbp(h, spec: CellSpec):
    load_mechanisms(spec.mod_files)
    h.load_file("import3d.hoc")
    name = spec.template_name
    folder = Path(spec.folder)
    if not hasattr(h, name):
        with _chdir(folder):
            # the template loads morphology.hoc, biophysics.hoc and
            # synapses/synapses.hoc relative to its folder; force re-reading
            # since another Blue Brain model may have loaded same-named files
            for fname in ("morphology.hoc", "biophysics.hoc"):
                h.load_file(1, fname)
            h.load_file(1, "synapses/synapses.hoc")
            h.load_file(1, "template.hoc")
    if not hasattr(h, name):
        raise RuntimeError(
            f"loading {folder / 'template.hoc'} did not define template {name}"
        )
    with _chdir(folder):
        template = getattr(h, name)(0)  # 0: template synapses disabled
    h.define_shape()  # 3-D points for the stub axon, which has none
    sections = list(template.all)
    groups = {
        "soma": {s.name() for s in template.somatic},
        "axon": {s.name() for s in template.axonal},
        "basal": {s.name() for s in template.basal},
        "apical": {s.name() for s in template.apical},
    }
    return template, sections, groups


def _build_ball_and_stick(h):
    """Soma with HH channels, passive trunk, two tuft branches, an oblique
    and two basal dendrites; 33 segments.
    """

    def section(name, points, diam, nseg, parent=None, x=1.0):
        sec = h.Section(name=name)
        for p in points:
            sec.pt3dadd(*p, diam)
        sec.nseg = nseg
        sec.Ra = 150.0
        sec.cm = 1.0
        if parent is not None:
            sec.connect(parent(x), 0)
        return sec

    soma = section("soma", [(0, -10, 0), (0, 10, 0)], 20.0, 1)
    soma.insert("hh")
    trunk = section("apic[0]", [(0, 10, 0), (0, 310, 0)], 3.0, 9, soma, 1.0)
    tuft1 = section("apic[1]", [(0, 310, 0), (-100, 480, 0)], 1.5, 5, trunk)
    tuft2 = section("apic[2]", [(0, 310, 0), (100, 480, 0)], 1.5, 5, trunk)
    obl = section("apic[3]", [(0, 160, 0), (80, 220, 0)], 1.0, 3, trunk, 0.5)
    bas1 = section("dend[0]", [(0, -10, 0), (-120, -150, 0)], 1.5, 5, soma, 0.0)
    bas2 = section("dend[1]", [(0, -10, 0), (120, -150, 0)], 1.5, 5, soma, 0.0)
    dends = [trunk, tuft1, tuft2, obl, bas1, bas2]
    for sec in dends:
        sec.insert("pas")
        for seg in sec:
            seg.pas.g = 5e-5
            seg.pas.e = -65.0
    sections = [soma, *dends]
    groups = {
        "soma": {soma.name()},
        "axon": set(),
        "basal": {bas1.name(), bas2.name()},
        "apical": {s.name() for s in (trunk, tuft1, tuft2, obl)},
    }
    return sections, sections, groups


# -- geometry -----------------------------------------------------------------


def _segment_points(sec) -> tuple[np.ndarray, np.ndarray]:
    """Start and end points (µm) of every segment of ``sec``, shape (nseg, 3)."""
    n3d = int(sec.n3d())
    arc = np.array([sec.arc3d(i) for i in range(n3d)])
    xyz = np.array([[sec.x3d(i), sec.y3d(i), sec.z3d(i)] for i in range(n3d)])
    bounds = np.linspace(0.0, 1.0, sec.nseg + 1) * arc[-1]
    pts = np.stack([np.interp(bounds, arc, xyz[:, k]) for k in range(3)], axis=1)
    return pts[:-1], pts[1:]


def _extract_geometry(spec, sections, groups) -> CellGeometry:
    starts, ends, d, area, length, sec_index, seg_x = [], [], [], [], [], [], []
    for i, sec in enumerate(sections):
        s, e = _segment_points(sec)
        starts.append(s)
        ends.append(e)
        for seg in sec:
            d.append(seg.diam)
            area.append(seg.area())
            length.append(sec.L / sec.nseg)
            sec_index.append(i)
            seg_x.append(seg.x)
    starts = np.concatenate(starts)
    ends = np.concatenate(ends)

    # soma centre at the origin
    soma = next(s for s in sections if s.name() in groups["soma"])
    s, e = _segment_points(soma)
    origin = (
        0.5 * (s[len(s) // 2] + e[len(e) // 2]) if soma.nseg % 2 else s[soma.nseg // 2]
    )
    starts = starts - origin
    ends = ends - origin

    region, main_bif = _regions(spec, sections, groups)
    sec_names = tuple(sec.name() for sec in sections)
    arrays = dict(
        x=np.stack([starts[:, 0], ends[:, 0]], axis=1),
        y=np.stack([starts[:, 1], ends[:, 1]], axis=1),
        z=np.stack([starts[:, 2], ends[:, 2]], axis=1),
        d=np.asarray(d, float),
        area=np.asarray(area, float),
        length=np.asarray(length, float),
        region=np.asarray(region, np.int8),
        sec_index=np.asarray(sec_index, np.int32),
        seg_x=np.asarray(seg_x, float),
    )
    cell_hash = _content_hash(spec, sections, arrays)
    meta = dict(celsius=spec.celsius, main_bifurcation=main_bif)
    return CellGeometry(
        name=spec.name, cell_hash=cell_hash, sec_names=sec_names, meta=meta, **arrays
    )


def _regions(spec, sections, groups):
    """Region code of every segment (see :func:`lfp_surrogate.cells.regions`)."""
    h = import_neuron()

    by_name = {sec.name(): sec for sec in sections}
    sec_region = {}
    for name in groups["soma"]:
        sec_region[name] = "soma"
    for name in groups["axon"]:
        sec_region[name] = "axon"
    dend_names = groups["basal"] | groups["apical"]
    main_bif = None
    if not spec.pyramidal or not groups["apical"]:
        for name in dend_names:
            sec_region[name] = "dend"
    else:
        for name in groups["basal"]:
            sec_region[name] = "basal"
        apical = groups["apical"]
        children = {name: [] for name in apical}
        roots = []
        for name in apical:
            ref = h.SectionRef(sec=by_name[name])
            parent = ref.trueparent.name() if ref.has_trueparent() else None
            if parent in apical:
                children[parent].append(name)
            else:
                roots.append(name)
        size = {}

        def subtree_length(name):
            if name not in size:
                size[name] = by_name[name].L + sum(
                    subtree_length(c) for c in children[name]
                )
            return size[name]

        for name in apical:
            subtree_length(name)
        root = max(roots, key=lambda n: size[n])
        trunk = []
        node = root
        while True:
            trunk.append(node)
            kids = sorted(children[node], key=lambda n: -size[n])
            if not kids:
                break
            if (
                len(kids) >= 2
                and size[kids[1]] >= MAIN_BIFURCATION_RATIO * size[kids[0]]
            ):
                main_bif = node
                break
            node = kids[0]

        def mark(name, region):
            sec_region[name] = region
            for c in children[name]:
                mark(c, region)

        for name in apical:
            sec_region.setdefault(name, None)
        for name in roots:
            if name != root:
                mark(name, "oblique")
        for name in trunk:
            for c in children[name]:
                if c not in trunk:
                    # only branches leaving at the end of the last trunk
                    # section form the tuft; earlier ones are obliques
                    at_end = by_name[c].parentseg().x == 1.0
                    beyond = name == main_bif and at_end
                    mark(c, "tuft" if beyond else "oblique")
            sec_region[name] = "apical_trunk"
    codes = []
    for sec in sections:
        code = REGIONS.index(sec_region.get(sec.name(), "dend"))
        codes.extend([code] * sec.nseg)
    return codes, main_bif


def _content_hash(spec, sections, arrays) -> str:
    """SHA-256 over segmentation, geometry, passive and channel parameters."""
    digest = hashlib.sha256()
    digest.update(f"celsius={spec.celsius!r}\n".encode())
    if spec.mod_files:
        digest.update(sources_hash(spec.mod_files).encode())
    for key in ("x", "y", "z", "d", "area", "length"):
        digest.update(np.ascontiguousarray(arrays[key], np.float64).tobytes())
    for sec in sections:
        digest.update(f"{sec.name()} nseg={sec.nseg} Ra={sec.Ra!r}\n".encode())
        for seg in sec:
            digest.update(f"cm={seg.cm!r}".encode())
            for mech in seg:
                for var in mech:
                    value = var[0] if hasattr(var, "__getitem__") else var
                    digest.update(f"{var.name()}={float(value)!r};".encode())
    return digest.hexdigest()[:16]
