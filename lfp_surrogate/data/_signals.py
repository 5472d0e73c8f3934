"""Extracellular signals stored next to vmem: names, shapes, units, attributes.

Every forward operator of a :class:`~lfp_surrogate.forward.ForwardModel` maps
to one HDF5 dataset of shape (n_sims, channels..., n_times):

=================  ==========================================  =========
name               channels                                    units
=================  ==========================================  =========
``lfp/<label>``    (n_contacts,)                               mV
``csd/<label>``    (n_contacts,)                               nA/um**3
``dipole``         (3,) x, y, z in the cell's frame            nA*um
``eeg/<head>``     (n_electrodes,)                             mV
``meg/<model>``    (n_sensors, 3) full field B                 fT
=================  ==========================================  =========

The placement of each probe, the electrodes and the sensors are written as
attributes of their dataset.
"""

from __future__ import annotations

import json

import numpy as np

_UNITS = {"lfp": "mV", "csd": "nA/um**3", "dipole": "nA*um", "eeg": "mV", "meg": "fT"}


def _name(key: str) -> str:
    return "dipole" if key == "dipole/dipole" else key


def signal_specs(fwd) -> dict:
    """Dataset specs of every operator of ``fwd``.

    Returns
    -------
    specs : dict of str to (tuple, str, dict)
        Name -> (channel shape, units, attributes).
    """
    specs = {}
    for key, op in fwd.operators.items():
        kind = key.split("/", 1)[0]
        attrs = {}
        if kind in ("lfp", "csd"):
            attrs.update(op.placement.attrs())
            attrs["contacts"] = np.asarray(op.contacts, float)
            attrs["contacts_units"] = "um"
            attrs["sigma"] = json.dumps(np.asarray(getattr(op, "sigma", 0.3)).tolist())
        elif kind == "eeg":
            attrs["head"] = op.head.name
            attrs["reference"] = str(op.reference)
            pos = np.asarray(getattr(op.electrodes, "positions", op.electrodes))
            attrs["electrodes"] = pos.astype(float)
            names = getattr(op.electrodes, "names", None)
            if names is not None:
                attrs["electrode_names"] = json.dumps(list(names))
        elif kind == "meg":
            attrs["model"] = op.model
            attrs["sensor_positions"] = np.asarray(op.sensors.positions, float)
            attrs["sensor_normals"] = np.asarray(op.sensors.normals, float)
        elif kind == "dipole":
            attrs["axes"] = "x, y, z in the cell's frame (apical axis +y)"
        if kind in ("eeg", "meg"):
            attrs["head_placement"] = json.dumps(op.placement.to_dict())
        specs[_name(key)] = (tuple(op.out_shape), _UNITS[kind], attrs)
    return specs


def compute_signals(fwd, imem) -> dict:
    """Every signal of ``fwd`` from transmembrane currents.

    Parameters
    ----------
    imem : ndarray, shape (n_seg, n_times) or (n_batch, n_seg, n_times)
        Transmembrane currents (nA).

    Returns
    -------
    signals : dict of str to ndarray
        By dataset name (see :func:`signal_specs`), shape
        ([n_batch,] channels..., n_times).
    """
    return {_name(key): op.apply(imem) for key, op in fwd.operators.items()}
