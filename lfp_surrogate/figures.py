"""Figures of the files the package writes (probe, head, LFP, CSD, dipole)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._io import atomic_path, open_hdf5
from ._validation import check_positive

__all__ = ["plot_dipole", "save_figures"]


def plot_dipole(dipole, t, *, figsize=(7, 3)):
    """Traces of the three dipole components.

    Parameters
    ----------
    dipole : ndarray, shape (3, n_times)
        Current dipole moment (nA·µm).
    t : ndarray, shape (n_times,)
        Times (ms).

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize, layout="constrained")
    ax = fig.add_subplot()
    for k, name in enumerate("xyz"):
        ax.plot(t, dipole[k], lw=0.8, label=f"$p_{name}$")
    ax.set_xlabel("time (ms)")
    ax.set_ylabel("dipole moment (nA·µm)")
    ax.legend(loc="upper right", ncol=3, frameon=False)
    ax.set_title("Current dipole moment (cell frame, apical axis +y)")
    return fig


def save_figures(path, out, *, sim: int = 0, force: bool = False) -> list[Path]:
    """Save the figures of one simulation of a shard or signals file.

    Parameters
    ----------
    path : path-like
        HDF5 file with ``geometry``, a ``forward`` attribute and signals: a
        shard simulated with probes, heads or MEG, or a file written by
        :func:`~lfp_surrogate.data.forward_file`.
    out : path-like
        Folder for the PNG files (created if needed).
    sim : int
        Which simulation (first axis) to show.
    force : bool
        Replace existing figures of the same names; without it, no figure is
        written when any of them exists.

    Returns
    -------
    paths : list of Path
        The files written.
    """
    from .data import read_cell
    from .forward import (
        ForwardConfig,
        ForwardModel,
        plot_cell_in_head,
        plot_csd,
        plot_lfp,
        plot_probe_morphology,
    )

    check_positive(sim, "sim", integer=True, strict=False)
    path, out = Path(path), Path(out)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(
            f"out must be a folder for the PNG files, got the file {out}; give "
            f"a folder (new or existing)"
        )
    with open_hdf5(path, "path", what="a dataset shard or signals file") as f:
        if "forward" not in f.attrs or not json.loads(f.attrs["forward"]):
            raise ValueError(
                f"{path} holds no extracellular signals (attribute 'forward' is "
                f"empty); simulate with --probe/--head/--meg or run "
                f"`lfp-surrogate forward` first"
            )
        geometry, _ = read_cell(f, source=str(path))
        fwd = ForwardModel(
            geometry, ForwardConfig.from_dict(json.loads(f.attrs["forward"]))
        )
        n_sims = f["vmem" if "vmem" in f else "imem"].shape[0]
        if sim >= n_sims:
            raise ValueError(
                f"sim must be < {n_sims} (simulations in {path}), got {sim}"
            )
        dt = float(f.attrs.get("interval", 1.0))
        t = f["t"][:] if "t" in f else np.arange(f["dipole"].shape[-1]) * dt
        figs = {}
        if fwd.lfp_operators:
            figs["probes"] = plot_probe_morphology(
                geometry, list(fwd.lfp_operators.values())
            )
        for label, op in fwd.lfp_operators.items():
            figs[f"lfp_{label}"] = plot_lfp(f[f"lfp/{label}"][sim], op, dt=dt)
        for label, op in fwd.csd_operators.items():
            figs[f"csd_{label}"] = plot_csd(f[f"csd/{label}"][sim], op, dt=dt)
        for head, op in fwd.eeg_operators.items():
            figs[f"head_{head}"] = plot_cell_in_head(op)
        for model, op in fwd.meg_operators.items():
            figs[f"meg_{model}"] = plot_cell_in_head(op)
        if "dipole" in f:
            figs["dipole"] = plot_dipole(f["dipole"][sim], t)
    targets = {name: out / f"{name}.png" for name in figs}
    taken = [p.name for p in targets.values() if p.exists()]
    if taken and not force:
        # checked for every figure before the first is written
        raise FileExistsError(
            f"out ({out}) already holds {', '.join(taken)}; pass --force to "
            f"replace them or choose another folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, fig in figs.items():
        target = targets[name]
        with atomic_path(target, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=130, format="png")
        written.append(target)
    return written
