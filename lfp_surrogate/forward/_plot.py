"""Figures: probe and morphology, cell in the head, LFP and CSD heat maps.

Every function builds a :class:`matplotlib.figure.Figure` without pyplot,
so it works with any backend (Agg included), and returns it.
"""

from __future__ import annotations

import numpy as np

from .._validation import check_option, check_positive
from ._lfp import laminar_axis

_AXES = {"x": 0, "y": 1, "z": 2}
_PROJECTIONS = ("xy", "zy", "xz", "yz", "yx", "zx")


def _figure(figsize):
    from matplotlib.figure import Figure

    return Figure(figsize=figsize, layout="constrained")


def _draw_cell(ax, cell, proj: str, color="0.2"):
    from matplotlib.collections import LineCollection

    i, j = _AXES[proj[0]], _AXES[proj[1]]
    ends = np.stack([cell.x, cell.y, cell.z], axis=-1)  # (n_seg, 2, 3)
    lines = ends[..., [i, j]]
    widths = np.clip(cell.d, 0.5, 3.0)
    ax.add_collection(
        LineCollection(
            lines, linewidths=widths, colors=color, capstyle="round", zorder=1
        )
    )
    soma = np.flatnonzero(getattr(cell, "region", np.zeros(1)) == 0)[:1]
    if soma.size:
        mid = ends[soma[0]].mean(0)
        ax.plot(mid[i], mid[j], "o", color=color, ms=6, zorder=2)
    ax.autoscale_view()


def plot_probe_morphology(
    geometry, placements=(), *, projections=("xy", "zy"), figsize=None
):
    """The cell and the probe contacts in 2-D projections.

    Parameters
    ----------
    geometry : CellGeometry
        The cell in its own frame.
    placements : sequence of ProbePlacement or LFPOperator
        One row per placement (the cell as that placement puts it); an empty
        sequence draws the cell alone.
    projections : sequence of str
        Axis pairs (horizontal, vertical), e.g. ``"xy"``, ``"zy"``.
    figsize : tuple of float | None
        Figure size (inches).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from ._lfp import LFPOperator
    from ._probes import load_probe

    for proj in projections:
        check_option(proj, _PROJECTIONS, "projections")
    rows = list(placements) or [None]
    n_rows, n_cols = len(rows), len(projections)
    fig = _figure(figsize or (3.2 * n_cols, 4.0 * n_rows))
    axes = np.atleast_2d(fig.subplots(n_rows, n_cols, squeeze=False))
    for r, item in enumerate(rows):
        if item is None:
            cell, contacts, label = geometry, None, geometry.name
        elif isinstance(item, LFPOperator):
            cell, contacts, label = item.cell, item.contacts, item.label
        else:
            probe = load_probe(item.probe)
            cell = item.place_cell(geometry)
            contacts, label = item.place_contacts(probe)[0], item.label
        for c, proj in enumerate(projections):
            ax = axes[r, c]
            _draw_cell(ax, cell, proj)
            if contacts is not None:
                i, j = _AXES[proj[0]], _AXES[proj[1]]
                ax.scatter(
                    contacts[:, i],
                    contacts[:, j],
                    s=10,
                    marker="s",
                    color="tab:red",
                    zorder=3,
                    label=f"{label} contacts",
                )
            ax.set_aspect("equal", adjustable="datalim")
            ax.set_xlabel(f"{proj[0]} (µm)")
            ax.set_ylabel(f"{proj[1]} (µm)")
            ax.set_title(f"{label}: {proj[0]}-{proj[1]}", fontsize=9)
    return fig


def plot_cell_in_head(operator, *, projection="xz", zoom=1500.0, figsize=(9, 4.5)):
    """The head (shells, electrodes or sensors) and the cell in it.

    Parameters
    ----------
    operator : EEGOperator | MEGOperator
        A built head operator (holds the placed cell).
    projection : str
        Axis pair for both panels, e.g. ``"xz"`` (coronal) or ``"yz"``.
    zoom : float
        Half width of the close-up around the soma (µm).
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
        Left: the whole head in mm; right: the cell and the brain surface in
        µm.
    """
    from matplotlib.patches import Circle

    check_option(projection, _PROJECTIONS, "projection")
    check_positive(zoom, "zoom")
    i, j = _AXES[projection[0]], _AXES[projection[1]]
    in_head = operator.in_head
    head = getattr(operator, "head", None)
    radii = head.radii if head is not None and head.radii is not None else ()
    names = ("brain", "CSF", "skull", "scalp")
    if hasattr(operator, "electrodes"):
        points, what = operator.electrodes.positions, "EEG electrodes"
    else:
        points, what = operator.sensors.positions, "MEG sensors"

    fig = _figure(figsize)
    ax_head, ax_cell = fig.subplots(1, 2)
    for radius, name in zip(radii, names):
        ax_head.add_patch(
            Circle(
                (0, 0),
                radius / 1e3,
                fill=False,
                lw=1,
                color="0.5",
                label=f"{name} {radius / 1e3:g} mm",
            )
        )
    ax_head.scatter(
        points[:, i] / 1e3, points[:, j] / 1e3, s=8, color="tab:blue", label=what
    )
    ax_head.plot(
        in_head.soma[i] / 1e3,
        in_head.soma[j] / 1e3,
        "*",
        ms=12,
        color="tab:red",
        label="cell",
    )
    ax_head.set_aspect("equal", adjustable="datalim")
    ax_head.set_xlabel(f"{projection[0]} (mm)")
    ax_head.set_ylabel(f"{projection[1]} (mm)")
    ax_head.legend(fontsize=7, loc="lower left")
    ax_head.set_title(f"{operator.label}: head", fontsize=9)

    # close-up: the cell and the brain surface (µm, centred on the soma)
    soma = in_head.soma
    _draw_cell(ax_cell, in_head.cell, projection)
    if radii:
        theta = np.linspace(0, 2 * np.pi, 4000)
        ax_cell.plot(
            radii[0] * np.cos(theta),
            radii[0] * np.sin(theta),
            color="0.5",
            lw=1,
            label="brain surface",
        )
        ax_cell.legend(fontsize=7, loc="lower left")
    ax_cell.set_xlim(soma[i] - zoom, soma[i] + zoom)
    ax_cell.set_ylim(soma[j] - zoom, soma[j] + zoom)
    ax_cell.set_aspect("equal")
    ax_cell.set_xlabel(f"{projection[0]} (µm)")
    ax_cell.set_ylabel(f"{projection[1]} (µm)")
    ax_cell.set_title("cell (close-up)", fontsize=9)
    return fig


def _depths(operator, n_contacts: int):
    if operator is None:
        return np.arange(n_contacts, dtype=float), "contact"
    try:
        center, axis, s = laminar_axis(operator.contacts)
    except NotImplementedError:
        return np.arange(n_contacts, dtype=float), "contact"
    # position along the probe axis, measured in the world frame (µm)
    return s + center @ axis, "position along probe (µm)"


def _heatmap(data, operator, dt, t0, unit_label, title, figsize):
    check_positive(dt, "dt")
    data = np.asarray(data, dtype=float)
    if data.ndim != 2:
        raise ValueError(
            f"data must have shape (n_contacts, n_times), got {data.shape}; pick one "
            f"batch element first"
        )
    n_contacts, n_times = data.shape
    pos, pos_label = _depths(operator, n_contacts)
    order = np.argsort(pos)
    pos, data = pos[order], data[order]
    edges_pos = np.r_[
        pos[0] - (pos[1] - pos[0]) / 2 if n_contacts > 1 else pos[0] - 0.5,
        (pos[1:] + pos[:-1]) / 2,
        pos[-1] + (pos[-1] - pos[-2]) / 2 if n_contacts > 1 else pos[0] + 0.5,
    ]
    edges_t = t0 + dt * np.arange(n_times + 1)
    vmax = float(np.max(np.abs(data))) or 1.0
    fig = _figure(figsize)
    ax = fig.subplots()
    mesh = ax.pcolormesh(
        edges_t, edges_pos, data, cmap="RdBu_r", vmin=-vmax, vmax=vmax, shading="flat"
    )
    fig.colorbar(mesh, ax=ax, label=unit_label)
    ax.set_xlabel("t (ms)")
    ax.set_ylabel(pos_label)
    ax.set_title(title, fontsize=9)
    return fig


def plot_lfp(lfp, operator=None, *, dt: float = 1.0, t0: float = 0.0, figsize=(6, 4)):
    """Heat map of the LFP across contacts and time.

    Parameters
    ----------
    lfp : ndarray, shape (n_contacts, n_times)
        Potentials (mV).
    operator : LFPOperator | None
        Gives contact positions along a laminar probe (else contact index).
    dt : float
        Time step (ms).
    t0 : float
        Time of the first sample (ms).
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    title = f"LFP {operator.label}" if operator is not None else "LFP"
    return _heatmap(lfp, operator, dt, t0, "LFP (mV)", title, figsize)


def plot_csd(csd, operator=None, *, dt: float = 1.0, t0: float = 0.0, figsize=(6, 4)):
    """Heat map of the CSD along a laminar probe.

    Parameters
    ----------
    csd : ndarray, shape (n_contacts, n_times)
        CSD (nA/µm³).
    operator : CSDOperator | None
        Gives contact positions along the probe.
    dt : float
        Time step (ms).
    t0 : float
        Time of the first sample (ms).
    figsize : tuple of float

    Returns
    -------
    matplotlib.figure.Figure
    """
    title = f"CSD {operator.label}" if operator is not None else "CSD"
    return _heatmap(csd, operator, dt, t0, "CSD (nA/µm³)", title, figsize)
