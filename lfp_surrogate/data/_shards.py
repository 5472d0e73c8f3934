"""HDF5 shards of simulated data: writing (atomic) and reading (validated).

Layout of one shard (n = simulations in the shard)::

    vmem              float32 (n, n_seg, n_times)   mV
    imem              float32 (n, n_seg, n_times)   nA     (optional)
    t                 float64 (n_times,)            ms     bin centres
    sim_index         int64   (n,)                         index in the dataset
    input_hash        bytes   (n,)                         hash of each input
    soma_spikes/t     float64 (n_spikes,)           ms     all sims, concatenated
    soma_spikes/ptr   int64   (n + 1,)                     offsets per sim
    inputs/exc/seg    int32   (n_exc,)                     segment of each spike
    inputs/exc/t      float64 (n_exc,)              ms
    inputs/exc/ptr    int64   (n + 1,)
    inputs/inh/...    the same for inhibition
    geometry/...      x, y, z (n_seg, 2), d, area, length (n_seg,) µm; region

and, when asked for, ground-truth extracellular signals next to vmem
(``lfp/<label>``, ``csd/<label>``, ``dipole``, ``eeg/<head>``, ``meg``), each
with a ``units`` attribute. File attributes: ``kind``, ``format_version``,
``cell``, ``cell_hash``, ``dt``, ``interval``, ``duration``, ``reduce``,
``seed``, ``shard``, ``complete`` and JSON strings ``simulation``,
``input_statistics``, ``versions``.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

from ..inputs import SpikeTrains

#: Value of the ``kind`` attribute of a shard.
SHARD_KIND = "lfp_surrogate.dataset_shard"
FORMAT_VERSION = 1

_REQUIRED_ATTRS = ("kind", "format_version", "cell", "cell_hash", "dt", "interval")
_REQUIRED_DATASETS = ("vmem", "t", "sim_index", "input_hash", "inputs/exc/ptr")
_GEOMETRY_FIELDS = ("x", "y", "z", "d", "area", "length", "region")


class ShardWriter:
    """Write one shard simulation by simulation, chunk by chunk.

    Parameters
    ----------
    path : Path
        Temporary path to write (the caller renames it when complete).
    n_sims : int
        Simulations in this shard.
    geometry : CellGeometry
        The cell.
    attrs : dict
        File attributes (JSON-serialisable values are stored as they are;
        dicts as JSON strings).
    n_times : int
        Output bins per simulation.
    t : ndarray, shape (n_times,)
        Bin centres (ms).
    record_imem : bool
        Whether to create the ``imem`` dataset.
    signals : dict
        Extra signals: name -> (n_channels_shape tuple, units, attrs dict).
    imem_operator : ImemOperator | None
        Stored with the geometry so that currents and extracellular signals
        can be derived from the file without NEURON.
    kind : str
        Value of the ``kind`` attribute (a prediction file shares the layout).
    """

    def __init__(
        self,
        path,
        n_sims,
        geometry,
        attrs,
        n_times,
        t,
        *,
        record_imem=True,
        signals=None,
        imem_operator=None,
        kind=SHARD_KIND,
    ):
        self.path = Path(path)
        self.n_sims = n_sims
        self.n_times = n_times
        n_seg = geometry.n_seg
        self.f = h5py.File(self.path, "w", track_order=True)
        f = self.f
        for key, value in attrs.items():
            f.attrs[key] = json.dumps(value) if isinstance(value, dict) else value
        f.attrs["kind"] = kind
        f.attrs["format_version"] = FORMAT_VERSION
        f.attrs["complete"] = False
        chunks = (1, n_seg, min(1000, n_times))
        opts = dict(chunks=chunks, track_times=False)
        self.vmem = f.create_dataset(
            "vmem", (n_sims, n_seg, n_times), np.float32, **opts
        )
        self.vmem.attrs["units"] = "mV"
        self.imem = None
        if record_imem:
            self.imem = f.create_dataset(
                "imem", (n_sims, n_seg, n_times), np.float32, **opts
            )
            self.imem.attrs["units"] = "nA"
        dset = f.create_dataset("t", data=np.asarray(t, np.float64), track_times=False)
        dset.attrs["units"] = "ms"
        self.signals = {}
        for name, (shape, units, sig_attrs) in (signals or {}).items():
            dset = f.create_dataset(
                name,
                (n_sims, *shape, n_times),
                np.float32,
                chunks=(1, *shape, min(1000, n_times)),
                track_times=False,
            )
            dset.attrs["units"] = units
            for key, value in sig_attrs.items():
                dset.attrs[key] = value
            self.signals[name] = dset
        write_cell(f, geometry, imem_operator)
        self._ragged = {
            "soma_spikes": ([], ["t"]),
            "inputs/exc": ([], ["seg", "t"]),
            "inputs/inh": ([], ["seg", "t"]),
        }
        self.sim_index = np.zeros(n_sims, np.int64)
        self.input_hash = np.zeros(n_sims, "S16")

    def write_input(self, j: int, sim_index: int, spikes: SpikeTrains):
        """Store the input of the ``j``-th simulation of the shard."""
        self.sim_index[j] = sim_index
        self.input_hash[j] = spikes.input_hash().encode()
        self._ragged["inputs/exc"][0].append((spikes.exc_seg, spikes.exc_t))
        self._ragged["inputs/inh"][0].append((spikes.inh_seg, spikes.inh_t))

    def write_bins(self, j, k0, vmem, imem, signals=None):
        """Store bins ``k0 ...`` of simulation ``j`` (arrays (n, n_bins))."""
        k1 = k0 + vmem.shape[1]
        self.vmem[j, :, k0:k1] = vmem.astype(np.float32)
        if self.imem is not None and imem is not None:
            self.imem[j, :, k0:k1] = imem.astype(np.float32)
        for name, value in (signals or {}).items():
            self.signals[name][j, ..., k0:k1] = value.astype(np.float32)

    def write_spikes(self, j, soma_spikes):
        """Store the somatic spike times (ms) of simulation ``j``."""
        self._ragged["soma_spikes"][0].append((np.asarray(soma_spikes, float),))

    def close(self):
        """Write the ragged arrays and mark the shard complete."""
        f = self.f
        f.create_dataset("sim_index", data=self.sim_index, track_times=False)
        f.create_dataset("input_hash", data=self.input_hash, track_times=False)
        units = {"t": "ms", "seg": "index"}
        for group, (items, names) in self._ragged.items():
            grp = f.require_group(group)
            ptr = np.zeros(len(items) + 1, np.int64)
            ptr[1:] = np.cumsum([len(item[-1]) for item in items])
            for pos, name in enumerate(names):
                dtype = np.int32 if name == "seg" else np.float64
                data = (
                    np.concatenate([item[pos] for item in items])
                    if items
                    else np.zeros(0)
                )
                dset = grp.create_dataset(
                    name, data=data.astype(dtype), track_times=False
                )
                dset.attrs["units"] = units[name]
            grp.create_dataset("ptr", data=ptr, track_times=False)
        f.attrs["complete"] = True
        f.close()

    def abort(self):
        """Close without marking complete."""
        try:
            self.f.close()
        except Exception:  # noqa: BLE001 - already closed or broken
            pass


def write_cell(f: h5py.Group, geometry, imem_operator=None):
    """Store a cell's geometry (and its vmem -> imem operator) in ``f``."""
    geo = f.create_group("geometry")
    for key in _GEOMETRY_FIELDS:
        geo.create_dataset(key, data=getattr(geometry, key), track_times=False)
    geo.attrs["units"] = "um"
    geo.attrs["name"] = geometry.name
    geo.attrs["cell_hash"] = geometry.cell_hash
    geo.attrs["sec_names"] = json.dumps(list(geometry.sec_names))
    geo.create_dataset("sec_index", data=geometry.sec_index, track_times=False)
    geo.create_dataset("seg_x", data=geometry.seg_x, track_times=False)
    if imem_operator is not None:
        m = imem_operator.matrix.tocsr()
        grp = f.create_group("imem_operator")
        grp.attrs["units"] = "uS"
        grp.attrs["shape"] = m.shape
        grp.attrs["cell_hash"] = imem_operator.cell_hash
        for key in ("data", "indices", "indptr"):
            grp.create_dataset(key, data=getattr(m, key), track_times=False)


def read_cell(f: h5py.Group, source="file"):
    """The geometry and operator stored by :func:`write_cell`.

    Returns
    -------
    geometry : CellGeometry
    operator : ImemOperator | None
    """
    import scipy.sparse as sp

    from ..cells import CellGeometry
    from ..currents import ImemOperator

    if "geometry" not in f:
        raise ValueError(f"{source}: group 'geometry' is missing")
    geo = f["geometry"]
    fields = (*_GEOMETRY_FIELDS, "sec_index", "seg_x")
    missing = [k for k in fields if k not in geo]
    if missing:
        raise ValueError(f"{source}: geometry field(s) {missing} missing")
    geometry = CellGeometry(
        name=str(geo.attrs["name"]),
        cell_hash=str(geo.attrs["cell_hash"]),
        sec_names=tuple(json.loads(geo.attrs["sec_names"])),
        **{k: geo[k][:] for k in fields},
    )
    operator = None
    if "imem_operator" in f:
        grp = f["imem_operator"]
        m = sp.csr_matrix(
            (grp["data"][:], grp["indices"][:], grp["indptr"][:]),
            shape=tuple(grp.attrs["shape"]),
        )
        operator = ImemOperator(m, str(grp.attrs["cell_hash"]))
    return geometry, operator


def open_shard(path) -> h5py.File:
    """Open a shard read-only after checking that it is one of ours.

    Raises a ValueError naming the file and the missing or wrong field.
    """
    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as err:
        raise ValueError(
            f"{path} is not a readable HDF5 file (truncated or foreign?): {err}"
        ) from None
    try:
        for key in _REQUIRED_ATTRS:
            if key not in f.attrs:
                raise ValueError(
                    f"{path} is not an lfp_surrogate dataset shard: attribute "
                    f"{key!r} is missing"
                )
        if f.attrs["kind"] != SHARD_KIND:
            raise ValueError(
                f"{path}: attribute 'kind' is {f.attrs['kind']!r}, expected "
                f"{SHARD_KIND!r}"
            )
        if int(f.attrs["format_version"]) > FORMAT_VERSION:
            raise ValueError(
                f"{path}: format_version {f.attrs['format_version']} is newer than "
                f"this lfp_surrogate reads ({FORMAT_VERSION}); upgrade the package"
            )
        if not bool(f.attrs.get("complete", False)):
            raise ValueError(f"{path}: the shard is incomplete (attribute 'complete')")
        for key in _REQUIRED_DATASETS:
            if key not in f:
                raise ValueError(f"{path}: dataset {key!r} is missing")
    except Exception:
        f.close()
        raise
    return f


def read_spikes(f: h5py.File, j: int) -> SpikeTrains:
    """The input of the ``j``-th simulation of an open shard."""
    parts = {}
    for kind in ("exc", "inh"):
        grp = f[f"inputs/{kind}"]
        a, b = grp["ptr"][j], grp["ptr"][j + 1]
        parts[f"{kind}_seg"] = grp["seg"][a:b]
        parts[f"{kind}_t"] = grp["t"][a:b]
    return SpikeTrains(
        n_seg=f["vmem"].shape[1], duration=float(f.attrs["duration"]), **parts
    )


def read_soma_spikes(f: h5py.File, j: int) -> np.ndarray:
    """Somatic spike times (ms) of the ``j``-th simulation of an open shard."""
    grp = f["soma_spikes"]
    return grp["t"][grp["ptr"][j] : grp["ptr"][j + 1]]
