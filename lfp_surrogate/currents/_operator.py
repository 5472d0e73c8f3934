"""The vmem -> imem operator as plain data, applied to numpy arrays or tensors."""

from __future__ import annotations

import numbers
import os
import sys
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from .._io import atomic_path, open_npz
from .._logging import logger
from .._validation import check_path, check_type
from ._build import build_imem_operator

if TYPE_CHECKING:  # torch stays an optional, lazily used dependency
    import torch

#: Value of the ``format`` field that marks a saved operator.
_FORMAT = "lfp_surrogate.ImemOperator/1"
_FIELDS = ("format", "cell_hash", "shape", "data", "indices", "indptr")


class ImemOperator:
    r"""Exact map from segment voltages to transmembrane currents of one cell.

    Applies ``imem = M @ vmem + stim``, where ``M`` (nA/mV = µS) gives the
    net axial current into every segment from its neighbours::

        I_i = sum_j g_ij (V_j - V_i)

    with ``g_ij`` the axial conductances after Kron reduction of the
    zero-area nodes (see :func:`build_imem_operator`), and ``stim`` the
    known electrode currents injected into segments (IClamp, SEClamp, ...),
    which NEURON keeps out of ``i_membrane_``. Plain data: it pickles, and
    needs no NEURON once built.

    Parameters
    ----------
    matrix : scipy.sparse matrix, shape (n_seg, n_seg)
        The operator ``M`` in nA/mV, as returned by
        :func:`build_imem_operator`; stored as float64 CSR.
    cell_hash : str
        Content hash of the cell the operator was built for.

    Notes
    -----
    The result equals NEURON's ``i_membrane_`` (with
    ``h.cvode.use_fast_imem(1)``) to floating-point precision (about 1e-12
    of max |imem| in float64) under these conditions:

    - **Integrator**: backward Euler (``h.secondorder = 0``) or CVode.
      Crank–Nicolson (``h.secondorder = 2``) breaks the identity and is
      refused when the operator is built.
    - **Warm-up**: the sample at ``t = 0`` right after ``h.finitialize``
      need not obey it; drop the first sample(s) of a recording when
      comparing.
    - **Clamps**: electrode currents (IClamp, SEClamp, VClamp) are not part
      of ``i_membrane_``: pass them as ``stim`` (positive = current injected
      into the cell, as in ``IClamp.i``); otherwise the result is the
      membrane current plus the electrode current.
    - **Precision**: the Laplacian amplifies voltage error. Rounding vmem to
      float32 alone costs up to 3e-4 of max |imem| on a 913-segment L5
      pyramidal cell; store vmem in float64 where currents must be exact.
      Torch float32 inputs are centred on their mean over segments before
      the product (exact, since rows sum to zero) to limit cancellation.

    References
    ----------
    .. [1] Hines M (1984). Efficient computation of branched nerve equations.
       Int J Bio-Med Comput 15(1):69-76. doi:10.1016/0020-7101(84)90008-4
    .. [2] Dörfler F, Bullo F (2013). Kron reduction of graphs with
       applications to electrical networks. IEEE Trans Circuits Syst I
       60(1):150-163. doi:10.1109/TCSI.2012.2215780
    """

    def __init__(self, matrix: sp.spmatrix | sp.sparray, cell_hash: str):
        check_type(cell_hash, str, "cell_hash")
        if not sp.issparse(matrix):
            raise TypeError(
                "matrix must be a scipy.sparse matrix of shape (n_seg, n_seg) "
                f"(from build_imem_operator), got {type(matrix).__name__}"
            )
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise ValueError(
                f"matrix must be square, shape (n_seg, n_seg), got {matrix.shape}"
            )
        self._matrix = sp.csr_matrix(matrix, dtype=np.float64)
        self._cell_hash = cell_hash
        self._torch_cache = {}

    @classmethod
    def from_sections(
        cls, sections, cell_hash: str, *, verbose: bool | str | int | None = None
    ) -> ImemOperator:
        """Build the operator of a NEURON cell.

        Parameters
        ----------
        sections : iterable of nrn.Section
            Every section of the cell, in segment order (see
            :func:`build_imem_operator`).
        cell_hash : str
            Content hash of the cell, stored with the operator.
        verbose : bool | str | int | None
            Log level for this call; ``None`` keeps the current level.

        Returns
        -------
        operator : ImemOperator
            The operator for ``n_seg`` segments.
        """
        check_type(cell_hash, str, "cell_hash")
        return cls(build_imem_operator(sections, verbose=verbose), cell_hash)

    @property
    def matrix(self) -> sp.csr_matrix:
        """The operator, scipy CSR, shape (n_seg, n_seg), float64 (nA/mV)."""
        return self._matrix

    @property
    def cell_hash(self) -> str:
        """Content hash of the cell the operator was built for."""
        return self._cell_hash

    @property
    def n_seg(self) -> int:
        """Number of segments."""
        return int(self._matrix.shape[0])

    def __repr__(self) -> str:
        return (
            f"<ImemOperator | {self.n_seg} segments, {self._matrix.nnz} "
            f"non-zeros, cell_hash={self._cell_hash!r}>"
        )

    def __getstate__(self) -> dict:
        # the torch cache holds device tensors: rebuild it after unpickling
        return {"matrix": self._matrix, "cell_hash": self._cell_hash}

    def __setstate__(self, state: dict) -> None:
        self._matrix = state["matrix"]
        self._cell_hash = state["cell_hash"]
        self._torch_cache = {}

    # -- applying ---------------------------------------------------------

    def apply(
        self,
        vmem: np.ndarray | torch.Tensor,
        stim: np.ndarray | torch.Tensor | dict | None = None,
    ) -> np.ndarray | torch.Tensor:
        """Transmembrane currents from membrane potentials.

        Parameters
        ----------
        vmem : ndarray | torch.Tensor, shape (n_seg, n_times) or \
(n_batch, n_seg, n_times)
            Membrane potential of every segment (mV), in the operator's
            segment order. A tensor must be float32 or float64 and may live
            on any device; the result is differentiable with respect to it.
        stim : ndarray | torch.Tensor | dict | None
            Electrode currents injected into segments (nA, positive into the
            cell, as ``IClamp.i``), added to the result. Either an array of
            the shape of ``vmem`` (or (n_seg, n_times) for a batched
            ``vmem``, shared by the batch), or a dict mapping a segment index
            to its current, shape (n_times,) or (n_batch, n_times).

        Returns
        -------
        imem : ndarray | torch.Tensor, same shape as ``vmem``
            Transmembrane current of every segment (nA, positive outward),
            as NEURON's ``i_membrane_``. Numpy inputs give float64; tensors
            keep their dtype and device.

        Raises
        ------
        ValueError
            If the segment axis of ``vmem`` is not ``n_seg`` long, or
            ``stim`` does not fit ``vmem``.
        TypeError
            If ``vmem`` is neither a numpy array nor a float tensor.
        """
        torch = sys.modules.get("torch")
        if torch is not None and isinstance(vmem, torch.Tensor):
            return self._apply_torch(torch, vmem, stim)
        vmem = np.asarray(vmem)
        if vmem.dtype.kind not in "fiu":
            raise TypeError(
                f"vmem must hold real numbers (mV), got an array of dtype {vmem.dtype}"
            )
        self._check_vmem_shape(vmem.shape)

        if vmem.ndim == 2:
            imem = np.asarray(self._matrix @ vmem.astype(np.float64, copy=False))
        else:
            n_batch, n_seg, n_times = vmem.shape
            # (n_batch, n_seg, n_times) -> (n_seg, n_batch * n_times)
            flat = vmem.transpose(1, 0, 2).reshape(n_seg, n_batch * n_times)
            imem = np.asarray(self._matrix @ flat.astype(np.float64, copy=False))
            # (n_seg, n_batch * n_times) -> (n_batch, n_seg, n_times)
            imem = imem.reshape(n_seg, n_batch, n_times).transpose(1, 0, 2)
            imem = np.ascontiguousarray(imem)
        if stim is not None:
            imem = self._add_stim_numpy(imem, stim)
        return imem

    __call__ = apply

    def _check_vmem_shape(self, shape) -> None:
        if len(shape) not in (2, 3) or shape[-2] != self.n_seg:
            raise ValueError(
                "vmem must have shape (n_seg, n_times) or (n_batch, n_seg, "
                f"n_times) with n_seg = {self.n_seg} (the segments of cell "
                f"{self._cell_hash!r}), got shape {tuple(shape)}; pass the "
                "voltage of every segment, in the order the operator was built"
            )

    def _check_stim_keys(self, stim, shape) -> list:
        """Check the keys of a dict ``stim``; return the allowed value shapes."""
        for key in stim:
            if isinstance(key, bool) or not isinstance(key, numbers.Integral):
                raise TypeError(f"stim keys must be segment indices (int), got {key!r}")
            if not 0 <= key < self.n_seg:
                raise ValueError(
                    f"stim keys must be segment indices in [0, {self.n_seg}), got {key}"
                )
        allowed = [(shape[-1],)]
        if len(shape) == 3:
            allowed.append((shape[0], shape[-1]))
        return allowed

    def _check_stim_value(self, name, value_shape, allowed) -> None:
        if tuple(value_shape) not in allowed:
            raise ValueError(
                f"{name} must have shape "
                f"{' or '.join(str(a) for a in allowed)} (nA per time "
                f"step), got {tuple(value_shape)}"
            )

    def _check_stim_array(self, stim_shape, vmem_shape) -> None:
        stim_shape = tuple(stim_shape)
        allowed = [tuple(vmem_shape)]
        if len(vmem_shape) == 3:
            allowed.append(tuple(vmem_shape[1:]))
        if stim_shape not in allowed:
            raise ValueError(
                f"stim must have shape {' or '.join(str(a) for a in allowed)} "
                f"(nA, like vmem), got {stim_shape}; or pass a dict "
                "{segment index: current}"
            )

    def _add_stim_numpy(self, imem: np.ndarray, stim) -> np.ndarray:
        if isinstance(stim, dict):
            allowed = self._check_stim_keys(stim, imem.shape)
            for key, value in stim.items():
                value = np.asarray(value, dtype=np.float64)
                self._check_stim_value(f"stim[{key}]", value.shape, allowed)
                imem[..., key, :] += value
            return imem
        stim = np.asarray(stim, dtype=np.float64)
        self._check_stim_array(stim.shape, imem.shape)
        imem += stim
        return imem

    def _torch_matrix(self, torch, device, dtype):
        """The operator as a coalesced sparse COO tensor, cached."""
        key = (device, dtype)
        matrix = self._torch_cache.get(key)
        if matrix is None:
            coo = self._matrix.tocoo()
            indices = torch.as_tensor(np.vstack([coo.row, coo.col]).astype(np.int64))
            values = torch.as_tensor(coo.data, dtype=torch.float64)
            matrix = torch.sparse_coo_tensor(
                indices, values, coo.shape, check_invariants=True
            )
            matrix = matrix.coalesce().to(device=device, dtype=dtype)
            self._torch_cache[key] = matrix
            logger.debug("Cached the imem operator on %s as %s", device, dtype)
        return matrix

    def _apply_torch(self, torch, vmem, stim):
        if vmem.dtype not in (torch.float32, torch.float64):
            raise TypeError(
                f"vmem must be a float32 or float64 tensor, got {vmem.dtype}; "
                "convert it with vmem.float() or vmem.double()"
            )
        self._check_vmem_shape(tuple(vmem.shape))
        matrix = self._torch_matrix(torch, vmem.device, vmem.dtype)

        batched = vmem.dim() == 3
        if batched:
            n_batch, n_seg, n_times = vmem.shape
            # (n_batch, n_seg, n_times) -> (n_seg, n_batch * n_times)
            flat = vmem.transpose(0, 1).reshape(n_seg, n_batch * n_times)
        else:
            flat = vmem
        if vmem.dtype == torch.float32:
            # rows sum to zero: centring is exact and limits cancellation
            flat = flat - flat.mean(dim=0, keepdim=True)
        imem = torch.sparse.mm(matrix, flat)
        if batched:
            # (n_seg, n_batch * n_times) -> (n_batch, n_seg, n_times)
            imem = imem.reshape(n_seg, n_batch, n_times).transpose(0, 1)

        if stim is None:
            return imem
        as_tensor = _tensor_converter(torch, vmem)
        if isinstance(stim, dict):
            allowed = self._check_stim_keys(stim, tuple(imem.shape))
            for key, value in stim.items():
                value = as_tensor(value)
                self._check_stim_value(f"stim[{key}]", value.shape, allowed)
                # out of place, so autograd sees it
                imem = imem.index_add(
                    -2,
                    torch.tensor([key], device=vmem.device),
                    value.expand(*imem.shape[:-2], imem.shape[-1]).unsqueeze(-2),
                )
            return imem
        stim = as_tensor(stim)
        self._check_stim_array(stim.shape, tuple(imem.shape))
        return imem + stim

    # -- files ------------------------------------------------------------

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the operator to a ``.npz`` file, atomically.

        Parameters
        ----------
        path : str | os.PathLike
            Destination file (``.npz`` by convention).
        overwrite : bool
            Replace an existing file. Default False.

        Raises
        ------
        FileExistsError
            If ``path`` exists and ``overwrite`` is False.
        """
        path = check_path(path, "path", must_exist=False)
        if path.exists() and not overwrite:
            raise FileExistsError(
                f"path {path} exists; pass overwrite=True to replace it"
            )
        with atomic_path(path) as tmp, open(tmp, "wb") as fid:
            # a file object keeps np.savez from appending ".npz" to the name
            np.savez(
                fid,
                format=np.array(_FORMAT),
                cell_hash=np.array(self._cell_hash),
                shape=np.asarray(self._matrix.shape, dtype=np.int64),
                data=self._matrix.data,
                indices=self._matrix.indices,
                indptr=self._matrix.indptr,
            )
        logger.info("Saved the imem operator (%d segments) to %s", self.n_seg, path)

    @classmethod
    def load(
        cls, path: str | os.PathLike, *, cell_hash: str | None = None
    ) -> ImemOperator:
        """Read an operator written by :meth:`save`.

        Parameters
        ----------
        path : str | os.PathLike
            The ``.npz`` file.
        cell_hash : str | None
            When given, the content hash the operator must have been built
            for.

        Returns
        -------
        operator : ImemOperator
            The stored operator.

        Raises
        ------
        FileNotFoundError
            If ``path`` does not exist.
        ValueError
            If the file is not a saved operator (names the missing or bad
            field), or was built for another cell than ``cell_hash``.
        """
        path = check_path(path, "path")
        if cell_hash is not None:
            check_type(cell_hash, str, "cell_hash")
        npz = open_npz(path, what="a saved ImemOperator", writer="ImemOperator.save")
        with npz:
            missing = [field for field in _FIELDS if field not in npz.files]
            if missing:
                raise ValueError(
                    f"{path} is not a saved ImemOperator: field(s) "
                    f"{', '.join(missing)} missing; write it with "
                    "ImemOperator.save"
                )
            try:
                fields = {field: npz[field] for field in _FIELDS}
            except ValueError:
                # object arrays (pickles) are never loaded
                raise ValueError(
                    f"{path} is not a saved ImemOperator: its fields are not "
                    "plain arrays; write it with ImemOperator.save"
                ) from None

        if str(fields["format"]) != _FORMAT:
            raise ValueError(
                f"{path}: field format must be {_FORMAT!r}, got "
                f"{str(fields['format'])!r}; rebuild the operator"
            )
        stored_hash = str(fields["cell_hash"])
        if cell_hash is not None and stored_hash != cell_hash:
            raise ValueError(
                f"{path} holds the imem operator of cell_hash {stored_hash!r}, "
                f"not of the requested cell_hash {cell_hash!r}; rebuild it "
                "for this cell with ImemOperator.from_sections"
            )
        shape = tuple(int(s) for s in np.ravel(fields["shape"]))
        try:
            matrix = sp.csr_matrix(
                (fields["data"], fields["indices"], fields["indptr"]), shape=shape
            )
            matrix.check_format(full_check=True)
        except (ValueError, TypeError) as err:
            raise ValueError(
                f"{path}: fields data, indices, indptr and shape do not form a "
                f"valid sparse matrix ({err}); rebuild the operator"
            ) from err
        logger.debug("Loaded the imem operator from %s", os.fspath(path))
        return cls(matrix, stored_hash)


def _tensor_converter(torch, like):
    """A function moving arrays or tensors to ``like``'s device and dtype."""

    def convert(value):
        return torch.as_tensor(value, dtype=like.dtype, device=like.device)

    return convert
