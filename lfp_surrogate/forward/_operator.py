"""A precomputed linear map from transmembrane currents to a measurement."""

from __future__ import annotations

import numpy as np


def _is_tensor(x) -> bool:
    # avoid importing torch for numpy inputs
    return type(x).__module__.startswith("torch") and hasattr(x, "device")


class LinearForward:
    """Measurement = ``matrix @ imem``, applied to numpy arrays or torch tensors.

    The matrix is computed once (float64) per cell placement; applying it is
    a batched matrix product, on the device and in the dtype of ``imem``,
    and differentiable in torch.

    Parameters
    ----------
    matrix : ndarray, shape (n_out, n_seg)
        The linear map; ``n_out`` is the product of ``out_shape``.
    out_shape : tuple of int
        Shape of one output sample, e.g. ``(n_contacts,)`` or
        ``(n_sensors, 3)``.
    label : str
        Name of the measurement (a probe label, a head-model name, ...).
    kind : str
        ``"lfp"``, ``"csd"``, ``"dipole"``, ``"eeg"`` or ``"meg"``.
    unit : str
        Unit of the output for imem in nA.
    factors : tuple of 2 ndarray | None
        ``(A, B)`` with ``matrix = A @ B``, shapes (n_out, k) and (k, n_seg),
        for a low-rank map (EEG and MEG pass through the 3-component dipole);
        then :meth:`apply` computes ``A @ (B @ imem)``, which is cheaper.
    """

    def __init__(
        self, matrix, out_shape, *, label: str, kind: str, unit: str, factors=None
    ):
        matrix = np.array(matrix, dtype=np.float64, copy=True)
        out_shape = tuple(int(s) for s in out_shape)
        if matrix.ndim != 2 or matrix.shape[0] != int(np.prod(out_shape)):
            raise ValueError(
                f"matrix must have shape (prod(out_shape)={int(np.prod(out_shape))}"
                f", n_seg), got {matrix.shape}"
            )
        matrix.setflags(write=False)
        self._matrix = matrix
        self._factors = None
        if factors is not None:
            A, B = (np.array(f, dtype=np.float64, copy=True) for f in factors)
            if (
                A.shape[0] != matrix.shape[0]
                or B.shape[1] != matrix.shape[1]
                or (A.shape[1] != B.shape[0])
            ):
                raise ValueError(
                    f"factors must have shapes ({matrix.shape[0]}, k) and (k, "
                    f"{matrix.shape[1]}), got {A.shape} and {B.shape}"
                )
            for f in (A, B):
                f.setflags(write=False)
            # worth it only when the inner size is small
            if A.shape[1] * (A.shape[0] + B.shape[1]) < A.shape[0] * B.shape[1]:
                self._factors = (A, B)
        self.out_shape = out_shape
        self.label = label
        self.kind = kind
        self.unit = unit
        self._tensors: dict = {}

    # -- properties ------------------------------------------------------

    @property
    def matrix(self) -> np.ndarray:
        """The read-only float64 matrix, shape (n_out, n_seg)."""
        return self._matrix

    @property
    def n_seg(self) -> int:
        """Number of segments the operator expects."""
        return int(self._matrix.shape[1])

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__} {self.label!r}: {self.kind} "
            f"{self.out_shape} x n_seg={self.n_seg}, unit {self.unit}>"
        )

    # -- application -----------------------------------------------------

    def _check_imem(self, shape) -> None:
        if len(shape) not in (2, 3) or shape[-2] != self.n_seg:
            raise ValueError(
                f"imem must have shape (n_seg, n_times) or (n_batch, n_seg, "
                f"n_times) with n_seg={self.n_seg}, got {tuple(shape)}"
                + (
                    "; it looks transposed: put segments before time"
                    if len(shape) in (2, 3) and shape[-1] == self.n_seg
                    else ""
                )
            )

    def apply(self, imem):
        """Apply the operator to transmembrane currents.

        Parameters
        ----------
        imem : ndarray or torch.Tensor, shape (n_seg, n_times) or (n_batch, n_seg, n_times)
            Transmembrane currents (nA). A tensor is multiplied on its own
            device and in its own floating dtype; a numpy array in float64.

        Returns
        -------
        out : ndarray or torch.Tensor, shape (*out_shape, n_times) or (n_batch, *out_shape, n_times)
            The measurement in :attr:`unit`, same type as ``imem``.
        """  # noqa: E501
        shape = tuple(imem.shape)
        self._check_imem(shape)
        batch = shape[:-2]
        n_times = shape[-1]
        if _is_tensor(imem):
            if not imem.is_floating_point():
                raise TypeError(
                    f"imem must be a floating-point tensor, got {imem.dtype}; "
                    f"convert it with imem.float() or imem.double()"
                )
            if self._factors is not None:
                A, B = self._factor_tensors(imem.device, imem.dtype)
                out = A @ (B @ imem)
            else:
                out = self.tensor(imem.device, imem.dtype) @ imem
        else:
            imem = np.asarray(imem)
            if imem.dtype.kind not in "fiu":
                raise TypeError(f"imem must be a real array, got dtype {imem.dtype}")
            if self._factors is not None:
                A, B = self._factors
                out = A @ (B @ imem)
            else:
                out = self._matrix @ imem
        # (..., n_out, n_times) -> (..., *out_shape, n_times)
        return out.reshape(*batch, *self.out_shape, n_times)

    __call__ = apply

    def tensor(self, device=None, dtype=None):
        """The matrix as a torch tensor, cached per device and dtype.

        Parameters
        ----------
        device : torch.device | str | None
            Default CPU.
        dtype : torch.dtype | None
            Default ``torch.float32``.

        Returns
        -------
        torch.Tensor, shape (n_out, n_seg)
        """
        import torch

        device = torch.device("cpu" if device is None else device)
        dtype = torch.float32 if dtype is None else dtype
        key = (str(device), dtype)
        if key not in self._tensors:
            # copy: torch refuses to share the read-only numpy buffer
            self._tensors[key] = torch.from_numpy(self._matrix.copy()).to(
                device=device, dtype=dtype
            )
        return self._tensors[key]

    def _factor_tensors(self, device, dtype):
        import torch

        key = ("factors", str(device), dtype)
        if key not in self._tensors:
            self._tensors[key] = tuple(
                torch.from_numpy(f.copy()).to(device=device, dtype=dtype)
                for f in self._factors
            )
        return self._tensors[key]

    def to(self, device=None, dtype=None) -> LinearForward:
        """Copy the matrix (or its factors) to ``device`` as ``dtype`` ahead of use.

        Parameters
        ----------
        device : torch.device | str | None
            Default CPU.
        dtype : torch.dtype | None
            Default ``torch.float32``.

        Returns
        -------
        LinearForward
            ``self``.
        """
        import torch

        if self._factors is not None:
            device = torch.device("cpu" if device is None else device)
            self._factor_tensors(device, torch.float32 if dtype is None else dtype)
        else:
            self.tensor(device, dtype)
        return self
