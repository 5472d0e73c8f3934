"""Causal temporal convolutional backbone (TCN)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_positive
from ._config import ModelConfig
from ._layers import ChannelNorm, InputProjection, TemporalBlock


class TCNBackbone(nn.Module):
    """Causal temporal convolutional network from input counts to features.

    An :class:`InputProjection` of the ``2 * n_seg`` count channels, then one
    :class:`TemporalBlock` per dilation, then ``[norm ->] GELU``. Every layer
    is causal, so output bin k depends on input bins ``k - receptive_field + 1
    .. k`` only; whole windows are processed at once.

    Parameters
    ----------
    n_seg : int
        Number of segments.
    widths : sequence of int
        Channels of each block.
    kernel_sizes : sequence of int
        Kernel size of each block (bins).
    dilations : sequence of int
        Dilation of each block (bins).
    convs_per_block : int
        Convolutions per block.
    dropout : float
        Dropout probability after each convolution.
    norm : str
        ``"none"`` or ``"layer"``.
    interval : float
        Bin width (ms), for :attr:`receptive_field_ms`.
    """

    def __init__(
        self,
        n_seg: int,
        widths: Sequence[int],
        kernel_sizes: Sequence[int],
        dilations: Sequence[int],
        convs_per_block: int = 2,
        dropout: float = 0.0,
        norm: str = "none",
        interval: float = 1.0,
    ) -> None:
        super().__init__()
        check_positive(n_seg, "n_seg", integer=True)
        check_positive(interval, "interval")
        if not len(widths) == len(kernel_sizes) == len(dilations) >= 1:
            raise ValueError(
                f"widths, kernel_sizes and dilations must have the same length "
                f">= 1 (one entry per block), got {len(widths)}, "
                f"{len(kernel_sizes)} and {len(dilations)}"
            )
        self.n_seg = n_seg
        self.interval = float(interval)
        self.input = InputProjection(n_seg, widths[0])
        in_widths = [widths[0], *widths[:-1]]
        self.blocks = nn.ModuleList(
            TemporalBlock(w_in, w, k, d, convs_per_block, dropout, norm)
            for w_in, w, k, d in zip(in_widths, widths, kernel_sizes, dilations)
        )
        self.out_norm = ChannelNorm(widths[-1]) if norm == "layer" else nn.Identity()
        self.out_width = int(widths[-1])

    @classmethod
    def from_config(cls, config: ModelConfig) -> TCNBackbone:
        """Build from a :class:`ModelConfig`."""
        return cls(
            config.n_seg,
            config.widths,
            config.kernel_sizes,
            config.dilations,
            config.convs_per_block,
            config.dropout,
            config.norm,
            config.interval,
        )

    @property
    def receptive_field(self) -> int:
        """Receptive field (bins): output bin k sees input bins > k - this."""
        return 1 + sum(block.receptive_field - 1 for block in self.blocks)

    @property
    def receptive_field_ms(self) -> float:
        """Receptive field (ms): :attr:`receptive_field` times the interval."""
        return self.receptive_field * self.interval

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def forward(self, counts: Tensor) -> Tensor:
        """Features of a whole window.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            Excitatory (0) and inhibitory (1) spike counts per bin, dense or
            sparse COO.

        Returns
        -------
        features : Tensor, shape (n_batch, out_width, n_times)
        """
        h = self.input(counts)
        for block in self.blocks:
            h = block(h)
        return F.gelu(self.out_norm(h))

    def step(self, counts: Tensor, caches: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Features of the next chunk, continuing from cached past inputs.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            The next bins.
        caches : list of Tensor
            One cache per convolution, from :meth:`init_caches` or the
            previous call.

        Returns
        -------
        features : Tensor, shape (n_batch, out_width, n_times)
        caches : list of Tensor
            The caches for the next chunk; their size does not grow with time.
        """
        h = self.input(counts)
        new: list[Tensor] = []
        i = 0
        for block in self.blocks:
            n = len(block.convs)
            h, block_caches = block.step(h, caches[i : i + n])
            new.extend(block_caches)
            i += n
        return F.gelu(self.out_norm(h)), new

    def init_caches(
        self, n_batch: int, device: torch.device, dtype: torch.dtype
    ) -> list[Tensor]:
        """Zero caches of every convolution (the state at time 0).

        Returns
        -------
        caches : list of Tensor
            Shapes (n_batch, channels, (kernel_size - 1) * dilation).
        """
        return [
            c
            for block in self.blocks
            for c in block.init_caches(n_batch, device, dtype)
        ]
