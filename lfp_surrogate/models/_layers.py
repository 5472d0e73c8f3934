"""Layers of the causal temporal convolutional backbone."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_option, check_positive


class CausalConv1d(nn.Module):
    """Dilated 1-D convolution padded on the left only.

    Output bin ``t`` depends on input bins ``t - (kernel_size - 1) * dilation
    .. t``; bins before the start are zeros.

    Parameters
    ----------
    in_channels, out_channels : int
        Channels of input and output.
    kernel_size : int
        Taps of the kernel (bins).
    dilation : int
        Spacing of the taps (bins).
    groups : int
        Channel groups (``nn.Conv1d``'s): output group g reads input group g
        only; ``groups = in_channels`` filters every channel on its own.
    bias : bool
        Whether the convolution adds a learned bias.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        dilation: int = 1,
        *,
        groups: int = 1,
        bias: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv1d(
            in_channels,
            out_channels,
            kernel_size,
            dilation=dilation,
            groups=groups,
            bias=bias,
        )
        self.pad = (kernel_size - 1) * dilation

    def forward(self, x: Tensor) -> Tensor:
        """Convolve a whole window.

        Parameters
        ----------
        x : Tensor, shape (n_batch, in_channels, n_times)

        Returns
        -------
        y : Tensor, shape (n_batch, out_channels, n_times)
        """
        return self.conv(F.pad(x, (self.pad, 0)))

    def step(self, x: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """Convolve the next chunk, continuing from the cached past input.

        Parameters
        ----------
        x : Tensor, shape (n_batch, in_channels, n_times)
            The next bins.
        cache : Tensor, shape (n_batch, in_channels, pad)
            The last ``pad = (kernel_size - 1) * dilation`` input bins before
            ``x`` (zeros at the start, which equals the left padding).

        Returns
        -------
        y : Tensor, shape (n_batch, out_channels, n_times)
        cache : Tensor, shape (n_batch, in_channels, pad)
            The cache for the next chunk.
        """
        full = torch.cat([cache, x], dim=-1)  # (n_batch, in_channels, pad + n_times)
        return self.conv(full), full[..., full.shape[-1] - self.pad :]

    def init_cache(
        self, n_batch: int, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """Zeros of shape (n_batch, in_channels, pad): the state at time 0."""
        return torch.zeros(
            n_batch, self.conv.in_channels, self.pad, device=device, dtype=dtype
        )


class ChannelNorm(nn.Module):
    """Layer normalisation over channels, separately at every time step.

    Unlike ``GroupNorm`` (which also averages over time) it keeps the network
    causal.

    Parameters
    ----------
    n_channels : int
        Channels normalised.
    eps : float
        Added to the variance.
    """

    def __init__(self, n_channels: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(n_channels))
        self.bias = nn.Parameter(torch.zeros(n_channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        """Normalise.

        Parameters
        ----------
        x : Tensor, shape (n_batch, n_channels, n_times)

        Returns
        -------
        y : Tensor, shape (n_batch, n_channels, n_times)
        """
        mean = x.mean(dim=1, keepdim=True)
        var = x.var(dim=1, keepdim=True, unbiased=False)
        y = (x - mean) * torch.rsqrt(var + self.eps)
        return y * self.weight[:, None] + self.bias[:, None]


class InputProjection(nn.Module):
    r"""Linear map of the ``2 * n_seg`` input channels to ``width`` features.

    .. math:: h_{b,c,t} = \sum_{k,s} W_{k n_{seg} + s,\,c}\, x_{b,k,s,t} + b_c

    Synaptic counts are sparse (about 0.4 % of the bins of the default inputs
    hold a spike), so the map has two paths with the same result:

    - sparse: :func:`torch.nn.functional.embedding_bag` gathers and sums only
      the rows of ``W`` of the channels with spikes; its cost scales with the
      number of spikes, not with ``n_seg``. Taken for sparse COO input (see
      :func:`sparse_counts`) and, on the CPU, for dense input whose density
      (estimated on every 16th bin) is below ``sparse_below``, after
      ``to_sparse()``.
    - dense: one GEMM, for denser input and on GPUs (where the GEMM is
      cheap).

    Parameters
    ----------
    n_seg : int
        Number of segments.
    width : int
        Output features.
    sparse_below : float
        Density (fraction of non-zero counts) below which dense CPU input
        takes the sparse path; 0 disables the conversion.

    Notes
    -----
    Measured on one (shared) CPU thread, torch 2.13, n_seg = 913, width =
    128, 8 x 1000 bins at 0.4 % density: dense GEMM 170-280 ms forward
    (240-380 ms with backward); sparse path 2.6 ms from a COO tensor (12 ms
    with backward), 56 ms including ``to_sparse()`` of a dense tensor (104
    ms with backward). The two break even near 5 % density, hence the
    default threshold of 2 %. A low-rank factorisation of ``W`` would not
    help: the cost is the ``2 * n_seg`` input channels, not ``width``.

    The paths sum in different orders, so they agree to float rounding
    (about 1e-7 relative), not bit for bit; each is exactly causal.
    """

    def __init__(self, n_seg: int, width: int, sparse_below: float = 0.02) -> None:
        super().__init__()
        check_positive(sparse_below, "sparse_below", strict=False)
        self.n_seg = n_seg
        self.width = width
        self.sparse_below = float(sparse_below)
        # (2 * n_seg, width): rows are gathered by channel in the sparse path
        self.weight = nn.Parameter(torch.empty(2 * n_seg, width))
        self.bias = nn.Parameter(torch.empty(width))
        bound = 1.0 / math.sqrt(2 * n_seg)
        nn.init.uniform_(self.weight, -bound, bound)
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, counts: Tensor) -> Tensor:
        """Project the counts.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            Spike counts, dense or sparse COO, in the weight's dtype or any
            real dtype (converted).

        Returns
        -------
        h : Tensor, shape (n_batch, width, n_times)
        """
        if counts.layout == torch.sparse_coo:
            return self._sparse(counts)
        if counts.device.type == "cpu" and self._density(counts) < self.sparse_below:
            return self._sparse(counts.to_sparse())
        n_batch, _, n_seg, n_times = counts.shape
        x = counts.to(self.weight.dtype).reshape(n_batch, 2 * n_seg, n_times)
        # (width, 2 n_seg) @ (n_batch, 2 n_seg, n_times) -> (n_batch, width, n_times)
        return torch.matmul(self.weight.t(), x) + self.bias[:, None]

    def _density(self, counts: Tensor) -> float:
        """Fraction of non-zero counts, estimated on every 16th bin."""
        if self.sparse_below <= 0:
            return 1.0
        sample = counts[..., ::16]
        return int(torch.count_nonzero(sample)) / max(1, sample.numel())

    def _sparse(self, counts: Tensor) -> Tensor:
        n_batch, _, n_seg, n_times = counts.shape
        counts = counts.coalesce()
        batch, kind, seg, t = counts.indices()  # each (nnz,)

        # one bag per (batch, time) row, bags contiguous for embedding_bag
        row, order = torch.sort(batch * n_times + t, stable=True)
        channel = (kind * n_seg + seg)[order]
        values = counts.values()[order].to(self.weight.dtype)
        per_row = torch.bincount(row, minlength=n_batch * n_times)
        offsets = torch.cumsum(per_row, 0) - per_row
        h = F.embedding_bag(
            channel, self.weight, offsets, mode="sum", per_sample_weights=values
        )  # (n_batch * n_times, width)
        h = h.reshape(n_batch, n_times, self.width)  # (n_batch, n_times, width)
        return h.transpose(1, 2) + self.bias[:, None]  # (n_batch, width, n_times)


class TemporalBlock(nn.Module):
    """Residual block of dilated causal convolutions (pre-activation).

    ``y = skip(x) + f(x)`` with ``f`` a stack of ``[norm ->] GELU -> causal
    conv -> dropout`` and ``skip`` the identity, or a 1 x 1 convolution when
    the width changes (He et al. 2016, doi:10.1007/978-3-319-46493-0_38; Bai
    et al. 2018, arXiv:1803.01271).

    Parameters
    ----------
    in_width, width : int
        Channels of input and output.
    kernel_size : int
        Kernel size (bins).
    dilation : int
        Dilation (bins).
    n_convs : int
        Convolutions in the residual branch.
    dropout : float
        Dropout probability after each convolution.
    norm : str
        ``"none"`` or ``"layer"`` (:class:`ChannelNorm` before each
        activation).
    """

    def __init__(
        self,
        in_width: int,
        width: int,
        kernel_size: int,
        dilation: int,
        n_convs: int = 2,
        dropout: float = 0.0,
        norm: str = "none",
    ) -> None:
        super().__init__()
        check_positive(n_convs, "n_convs", integer=True)
        check_option(norm, ("none", "layer"), "norm")
        widths = [in_width] + [width] * n_convs
        self.norms = nn.ModuleList(
            ChannelNorm(w) if norm == "layer" else nn.Identity() for w in widths[:-1]
        )
        self.convs = nn.ModuleList(
            CausalConv1d(w_in, w_out, kernel_size, dilation)
            for w_in, w_out in zip(widths[:-1], widths[1:])
        )
        self.dropout = nn.Dropout(dropout)
        self.skip = (
            nn.Identity() if in_width == width else nn.Conv1d(in_width, width, 1)
        )

    @property
    def receptive_field(self) -> int:
        """Receptive field of the block (bins)."""
        return 1 + sum(conv.pad for conv in self.convs)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the block to a whole window.

        Parameters
        ----------
        x : Tensor, shape (n_batch, in_width, n_times)

        Returns
        -------
        y : Tensor, shape (n_batch, width, n_times)
        """
        h = x
        for norm, conv in zip(self.norms, self.convs):
            h = self.dropout(conv(F.gelu(norm(h))))
        return self.skip(x) + h

    def step(self, x: Tensor, caches: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Apply the block to the next chunk (see :meth:`CausalConv1d.step`).

        Parameters
        ----------
        x : Tensor, shape (n_batch, in_width, n_times)
        caches : list of Tensor
            One cache per convolution.

        Returns
        -------
        y : Tensor, shape (n_batch, width, n_times)
        caches : list of Tensor
            The caches for the next chunk.
        """
        h = x
        new = []
        for norm, conv, cache in zip(self.norms, self.convs, caches):
            h, cache = conv.step(F.gelu(norm(h)), cache)
            h = self.dropout(h)
            new.append(cache)
        return self.skip(x) + h, new

    def init_caches(
        self, n_batch: int, device: torch.device, dtype: torch.dtype
    ) -> list[Tensor]:
        """Zero caches of every convolution (the state at time 0)."""
        return [conv.init_cache(n_batch, device, dtype) for conv in self.convs]


class LocalInputPath(nn.Module):
    r"""Each segment's linear response to its own synaptic input.

    .. math:: z_{b,s,t} = \sum_{c \in \{e, i\}} \sum_{k=0}^{K-1}
              w_{s,c,K-1-k}\, x_{b,c,s,t-k}

    (the last tap of ``weight`` multiplies the current bin, as in
    :func:`torch.nn.functional.conv1d` with left padding).

    A causal filter of ``K`` taps per segment and input kind, added to the
    normalised voltage the head predicts. The backbone sees the input
    through a ``width``-dimensional bottleneck and cannot tell which of the
    ``n_seg`` segments received a spike; this path gives every segment its
    own postsynaptic response, which dominates its transmembrane current.
    The weights start at zero, so the network starts as without it.

    Parameters
    ----------
    n_seg : int
        Number of segments.
    kernel_size : int
        Taps ``K`` of each filter (bins).

    Notes
    -----
    One grouped convolution (``groups = n_seg``); measured on 2 shared CPU
    threads, torch 2.13, n_seg = 913, K = 48, 8 x 400 bins: 0.12 s forward,
    0.12 s backward.
    """

    def __init__(self, n_seg: int, kernel_size: int) -> None:
        super().__init__()
        check_positive(n_seg, "n_seg", integer=True)
        check_positive(kernel_size, "kernel_size", integer=True)
        self.n_seg = n_seg
        self.kernel_size = kernel_size
        # (n_seg, 2, K): group s reads channels (2 s, 2 s + 1) = (exc, inh) of s
        self.weight = nn.Parameter(torch.zeros(n_seg, 2, kernel_size))

    @property
    def pad(self) -> int:
        """Past bins each output needs (``kernel_size - 1``)."""
        return self.kernel_size - 1

    def _interleave(self, counts: Tensor) -> Tensor:
        if counts.layout == torch.sparse_coo:
            counts = counts.to_dense()
        n_batch, _, n_seg, n_times = counts.shape
        x = counts.to(self.weight.dtype).transpose(1, 2)  # (n_batch, n_seg, 2, T)
        return x.reshape(n_batch, 2 * n_seg, n_times)  # (n_batch, 2 n_seg, T)

    def forward(self, counts: Tensor) -> Tensor:
        """Filter a whole window (silent input before it).

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            Spike counts, dense or sparse COO.

        Returns
        -------
        z : Tensor, shape (n_batch, n_seg, n_times)
            Contribution to the normalised voltage (dimensionless).
        """
        x = F.pad(self._interleave(counts), (self.pad, 0))
        return F.conv1d(x, self.weight, groups=self.n_seg)

    def step(self, counts: Tensor, cache: Tensor) -> tuple[Tensor, Tensor]:
        """Filter the next chunk, continuing from the cached past input.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
        cache : Tensor, shape (n_batch, 2 * n_seg, kernel_size - 1)

        Returns
        -------
        z : Tensor, shape (n_batch, n_seg, n_times)
        cache : Tensor, shape (n_batch, 2 * n_seg, kernel_size - 1)
        """
        full = torch.cat([cache, self._interleave(counts)], dim=-1)
        z = F.conv1d(full, self.weight, groups=self.n_seg)
        return z, full[..., full.shape[-1] - self.pad :]

    def init_cache(
        self, n_batch: int, device: torch.device, dtype: torch.dtype
    ) -> Tensor:
        """Zeros of shape (n_batch, 2 * n_seg, kernel_size - 1)."""
        return torch.zeros(
            n_batch, 2 * self.n_seg, self.pad, device=device, dtype=dtype
        )
