"""NEURON's node graph of a cell and the vmem -> imem operator built from it."""

from __future__ import annotations

import time
from collections.abc import Iterable

import numpy as np
import scipy.sparse as sp

from .._logging import logger, use_log_level
from ._kron import conductance_operator

#: Name of NEURON's integrator flag, for messages.
_SECONDORDER = "h.secondorder"


def check_integrator() -> None:
    """Refuse an integrator for which imem does not follow from vmem.

    With backward Euler (``h.secondorder = 0``, LFPy's default) or CVode,
    NEURON's ``i_membrane_`` equals the net axial current into each segment
    computed from the segment voltages. With Crank–Nicolson
    (``h.secondorder = 2``, or ``1``) the voltages NEURON reports are at a
    different time from the currents, and the identity breaks.

    Raises
    ------
    RuntimeError
        If ``h.secondorder`` is not 0.
    """
    from neuron import h

    order = h.secondorder
    if order != 0:
        raise RuntimeError(
            f"{_SECONDORDER} must be 0 (backward Euler) for imem to be derived "
            f"from vmem, got {_SECONDORDER} = {order:g} (Crank–Nicolson "
            f"breaks the identity); set {_SECONDORDER} = 0 before simulating "
            "and building the operator"
        )


def build_imem_operator(
    sections: Iterable, *, verbose: bool | str | int | None = None
) -> sp.csr_matrix:
    r"""Build the exact linear map from segment voltages to membrane currents.

    The returned matrix ``M`` gives, for every segment ``i``, the net axial
    current flowing into it from its neighbours::

        imem_i = sum_j g_ij (vmem_j - vmem_i),    g_ij = 1 / r_ij

    where ``r_ij`` (MΩ) are NEURON's axial resistances between nodes
    (``seg.ri()``) and the sum runs over the neighbours of ``i`` *after* the
    zero-area nodes (section ends, the root section's 0-end, any segment of
    zero area) have been eliminated by Kron reduction. No membrane current
    flows at those nodes, so each is a star of resistors that the star-mesh
    transform replaces exactly by a mesh among its neighbours. By Kirchhoff's
    current law this axial inflow equals NEURON's ``i_membrane_`` (nA,
    positive outward) plus any electrode current injected into the segment.

    Parameters
    ----------
    sections : iterable of nrn.Section
        Every section of the cell(s), in the order that defines the segment
        order: sections as given, and inside each its segments from the
        0-end to the 1-end (``for seg in sec``). Must be closed under
        parent and child connections (whole trees).
    verbose : bool | str | int | None
        Log level for this call: a bool, a level name or number; ``None``
        keeps the level of the ``lfp_surrogate`` logger.

    Returns
    -------
    operator : scipy.sparse.csr_matrix, shape (n_seg, n_seg)
        Float64, in nA/mV (= µS), symmetric, rows summing to zero, such that
        ``imem = operator @ vmem`` with ``vmem`` of shape (n_seg, n_times) in
        mV and ``imem`` in nA. Rows and columns of zero-area segments are
        zero.

    Raises
    ------
    RuntimeError
        If ``h.secondorder`` is not 0 (see :func:`check_integrator`).
    TypeError
        If an element of ``sections`` is not a NEURON section.
    ValueError
        If ``sections`` is empty, holds a section twice, or misses the
        parent or a child of one of its sections.
    NotImplementedError
        If a section has the ``extracellular`` mechanism.

    Notes
    -----
    The graph is NEURON's own: each section of ``nseg`` segments owns
    ``nseg`` segment nodes and one zero-area node at its far (distal) end;
    its near (proximal) end is the node of its parent it attaches to, which
    for a child connected at its parent's proximal end is an ancestor's node,
    and for a root section is an extra zero-area root node. A child attached
    at an interior point ``x`` of its parent joins the node of the parent
    segment containing ``x`` (at a segment boundary, the more distal one in
    arc length, NEURON's ``node_index`` rule). A child attached by its 1-end
    (``child.connect(parent(x), 1)``) has its nodes ordered from ``x = 1``.
    Resistances come from ``seg.ri()``: the resistance between a node and
    the node before it towards the root, so geometry from 3-D points,
    ``Ra`` and ``rallbranch`` are included as NEURON uses them.

    Assumptions: backward Euler or CVode; no ``extracellular`` mechanism,
    ``LinearMechanism`` or gap junction couples nodes outside the tree
    (currents through them would appear in ``i_membrane_`` but not here).

    References
    ----------
    .. [1] Hines M (1984). Efficient computation of branched nerve equations.
       Int J Bio-Med Comput 15(1):69-76. doi:10.1016/0020-7101(84)90008-4
    .. [2] Dörfler F, Bullo F (2013). Kron reduction of graphs with
       applications to electrical networks. IEEE Trans Circuits Syst I
       60(1):150-163. doi:10.1109/TCSI.2012.2215780
    """
    with use_log_level(verbose):
        check_integrator()
        sections = _check_sections(sections)
        start = time.perf_counter()
        logger.info(
            "Building the vmem -> imem operator for %d section(s)", len(sections)
        )

        graph = _node_graph(sections)
        operator = conductance_operator(
            graph.n_nodes, graph.node_i, graph.node_j, graph.g, graph.keep
        )
        n_seg = graph.n_seg
        operator = operator[:n_seg][:, :n_seg].tocsr()

        logger.info(
            "Built the imem operator: %d segments, %d zero-area nodes "
            "eliminated, %d non-zeros, in %.2f s",
            n_seg,
            int((~graph.keep).sum()),
            operator.nnz,
            time.perf_counter() - start,
        )
    return operator


class _Graph:
    """NEURON's nodes and axial resistors; segment nodes come first."""

    def __init__(self, n_seg, n_nodes, node_i, node_j, g, keep):
        self.n_seg = n_seg
        self.n_nodes = n_nodes
        self.node_i = node_i
        self.node_j = node_j
        self.g = g
        self.keep = keep


def _check_sections(sections) -> list:
    """Return ``sections`` as a list after checking it holds whole trees."""
    from neuron import nrn

    if not isinstance(sections, Iterable):
        raise TypeError(
            "sections must be an iterable of NEURON sections (e.g. "
            f"list(h.allsec())), got {type(sections).__name__}"
        )
    sections = list(sections)
    if not sections:
        raise ValueError(
            "sections must hold at least one NEURON section, got none; pass "
            "every section of the cell"
        )
    seen = set()
    for k, sec in enumerate(sections):
        if not isinstance(sec, nrn.Section):
            raise TypeError(
                f"sections[{k}] must be a NEURON section (nrn.Section), got "
                f"{type(sec).__name__} ({sec!r})"
            )
        if sec in seen:
            raise ValueError(
                f"sections must hold each section once, got {sec.name()} twice "
                f"(again at position {k}); remove the duplicate"
            )
        seen.add(sec)
    for sec in sections:
        if sec.has_membrane("extracellular"):
            raise NotImplementedError(
                f"sections with the extracellular mechanism are not supported "
                f"(found in {sec.name()}): i_membrane_ then depends on vext; "
                "build the operator for a cell without extracellular"
            )
        parent = sec.parentseg()
        if parent is not None and parent.sec not in seen:
            raise ValueError(
                f"sections must hold whole trees, but {sec.name()} is attached "
                f"to {parent.sec.name()}, which is not in sections; pass every "
                "section of the cell (e.g. list(cell.all))"
            )
        for child in sec.children():
            if child not in seen:
                raise ValueError(
                    f"sections must hold whole trees, but {child.name()} "
                    f"(a child of {sec.name()}) is not in sections; pass every "
                    "section of the cell (e.g. list(cell.all))"
                )
    return sections


def _segment_index(nseg: int, x: float) -> int:
    """Arc-order index of the segment holding interior point ``x``.

    Mirrors NEURON's ``node_index``: ``floor(nseg * x)`` in double precision,
    so a point on a segment boundary belongs to the segment beyond it.
    """
    return min(int(nseg * x), nseg - 1)


def _node_graph(sections: list) -> _Graph:
    """Nodes and axial resistors of the cell as NEURON connects them."""
    sec_index = {sec: k for k, sec in enumerate(sections)}
    first_seg = np.cumsum([0] + [sec.nseg for sec in sections])
    n_seg = int(first_seg[-1])

    # segment nodes are 0..n_seg-1 (output order); then one distal-end node
    # per section, then one root node per root section
    end_node = n_seg + np.arange(len(sections))
    root_node = {}
    for sec in sections:
        if sec.parentseg() is None:
            root_node[sec] = n_seg + len(sections) + len(root_node)
    n_nodes = n_seg + len(sections) + len(root_node)

    def seg_node(sec, k):
        return int(first_seg[sec_index[sec]] + k)

    def proximal_node(sec):
        # the node a section's connected end joins (NEURON's parentnode)
        child = sec
        while True:
            parent = child.parentseg()
            if parent is None:
                return root_node[child]
            psec, x = parent.sec, parent.x
            if x != psec.orientation():
                if x in (0.0, 1.0):
                    return int(end_node[sec_index[psec]])
                return seg_node(psec, _segment_index(psec.nseg, x))
            # attached at the parent's own connected end: that node is the
            # parent's parent node, so climb
            child = psec

    node_i, node_j, g = [], [], []
    keep = np.ones(n_nodes, dtype=bool)
    keep[n_seg:] = False
    for sec in sections:
        nseg = sec.nseg
        reversed_ = sec.orientation() != 0
        segs = list(sec)
        for k, seg in enumerate(segs):
            keep[seg_node(sec, k)] = seg.area() > 0
            # each segment's ri is to the node before it towards the root
            if reversed_:
                towards_root = seg_node(sec, k + 1) if k < nseg - 1 else None
            else:
                towards_root = seg_node(sec, k - 1) if k > 0 else None
            if towards_root is None:
                towards_root = proximal_node(sec)
            node_i.append(seg_node(sec, k))
            node_j.append(towards_root)
            g.append(1.0 / seg.ri())
        # the half segment between the distal segment and the distal end
        distal_x = 0.0 if reversed_ else 1.0
        distal_k = 0 if reversed_ else nseg - 1
        node_i.append(int(end_node[sec_index[sec]]))
        node_j.append(seg_node(sec, distal_k))
        g.append(1.0 / sec(distal_x).ri())

    return _Graph(
        n_seg=n_seg,
        n_nodes=n_nodes,
        node_i=np.asarray(node_i, dtype=np.int64),
        node_j=np.asarray(node_j, dtype=np.int64),
        g=np.asarray(g, dtype=np.float64),
        keep=keep,
    )
