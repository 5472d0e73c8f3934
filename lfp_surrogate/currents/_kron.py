"""Kron reduction of a resistor network (pure scipy, no NEURON)."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components


def conductance_operator(
    n_nodes: int,
    node_i: np.ndarray,
    node_j: np.ndarray,
    g: np.ndarray,
    keep: np.ndarray,
) -> sp.csr_matrix:
    """Net axial current into each kept node, after eliminating the others.

    Builds the weighted graph Laplacian of a resistor network and removes the
    nodes that carry no membrane current by Kron reduction (the Schur
    complement, or star-mesh transform)::

        L_red = L_KK - L_KE L_EE^-1 L_EK

    and returns ``M = -L_red`` so that ``(M @ v)[i] = sum_j g_ij (v_j - v_i)``,
    the current flowing into kept node ``i`` from its (reduced) neighbours.

    Parameters
    ----------
    n_nodes : int
        Number of nodes in the network.
    node_i, node_j : ndarray of int, shape (n_edges,)
        End nodes of each resistor.
    g : ndarray, shape (n_edges,)
        Conductance of each resistor (µS); parallel resistors are summed.
    keep : ndarray of bool, shape (n_nodes,)
        Nodes to keep; the others (zero-area nodes) are eliminated.

    Returns
    -------
    operator : scipy.sparse.csr_matrix, shape (n_nodes, n_nodes)
        Symmetric, float64 (µS). Rows and columns of eliminated nodes are
        zero; every row sums to zero (the diagonal is minus the sum of the
        off-diagonal conductances of its row).

    Notes
    -----
    The eliminated nodes are handled per connected component of the
    subgraph they form, so the work stays linear in the number of nodes for
    trees (almost every component is a single section-end node). A component
    that touches no kept node carries no current to them and is dropped.

    References
    ----------
    .. [1] Dörfler F, Bullo F (2013). Kron reduction of graphs with
       applications to electrical networks. IEEE Trans Circuits Syst I
       60(1):150-163. doi:10.1109/TCSI.2012.2215780
    """
    keep = np.asarray(keep, dtype=bool)
    adjacency = sp.coo_matrix(
        (np.asarray(g, dtype=np.float64), (node_i, node_j)), shape=(n_nodes, n_nodes)
    ).tocsr()
    adjacency = (adjacency + adjacency.T).tocsr()
    adjacency.setdiag(0.0)
    adjacency.eliminate_zeros()
    degree = np.asarray(adjacency.sum(axis=1)).ravel()
    # the (positive semi-definite) graph Laplacian; the operator is -L
    laplacian = (sp.diags(degree) - adjacency).tocsr()

    kept = np.flatnonzero(keep)
    gone = np.flatnonzero(~keep)
    l_kk = laplacian[kept][:, kept]
    if gone.size:
        l_ke = laplacian[kept][:, gone]
        l_ee = laplacian[gone][:, gone].tocsr()
        l_kk = l_kk - l_ke @ _block_inverse(l_ee, l_ke) @ l_ke.T

    # rebuild the diagonal from the off-diagonal conductances: rows sum to 0
    off = -sp.csr_matrix(l_kk)
    off.setdiag(0.0)
    off.eliminate_zeros()
    off = ((off + off.T) * 0.5).tocsr()
    reduced = (off - sp.diags(np.asarray(off.sum(axis=1)).ravel())).tocoo()

    operator = sp.coo_matrix(
        (reduced.data, (kept[reduced.row], kept[reduced.col])),
        shape=(n_nodes, n_nodes),
    ).tocsr()
    operator.sum_duplicates()
    operator.sort_indices()
    return operator


def _block_inverse(l_ee: sp.csr_matrix, l_ke: sp.csr_matrix) -> sp.csr_matrix:
    """Inverse of the eliminated block, one connected component at a time.

    Components with no conductance to a kept node are singular and carry no
    current to the kept nodes; their block of the inverse is left at zero.
    """
    n_gone = l_ee.shape[0]
    off = l_ee.copy()
    off.setdiag(0.0)
    off.eliminate_zeros()
    n_comp, labels = connected_components(off, directed=False)
    to_kept = np.asarray(abs(l_ke).sum(axis=0)).ravel()
    comp_to_kept = np.bincount(labels, weights=to_kept, minlength=n_comp)
    sizes = np.bincount(labels, minlength=n_comp)
    diag = l_ee.diagonal()

    rows, cols, vals = [], [], []
    # single nodes (section ends): the inverse is 1 / (sum of conductances)
    single = (sizes[labels] == 1) & (comp_to_kept[labels] > 0)
    idx = np.flatnonzero(single)
    rows.append(idx)
    cols.append(idx)
    vals.append(1.0 / diag[idx])
    # larger components (chains of zero-area nodes): small dense inverses
    for comp in np.flatnonzero((sizes > 1) & (comp_to_kept > 0)):
        members = np.flatnonzero(labels == comp)
        block = l_ee[members][:, members].toarray()
        inverse = np.linalg.inv(block)
        inverse = 0.5 * (inverse + inverse.T)
        rows.append(np.repeat(members, members.size))
        cols.append(np.tile(members, members.size))
        vals.append(inverse.ravel())
    return sp.coo_matrix(
        (np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))),
        shape=(n_gone, n_gone),
    ).tocsr()
