"""The linear baseline: one causal convolution from synaptic input to voltage."""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn

from .._validation import check_positive, check_type
from ._config import ModelConfig
from ._heads import HeadOutput
from ._layers import CausalConv1d, InputProjection
from ._registry import register_model
from ._surrogate import Surrogate

#: Architecture name of the linear baseline in the registry.
LINEAR_ARCH = "linear"
#: Taps (bins) of the baseline's own-input kernels when the config sets none.
LINEAR_LOCAL_KERNEL = 64


class CausalLinearFilter(nn.Module):
    r"""The low-rank causal convolution of :class:`LinearBaseline`.

    Projects the ``2 n_seg`` input channels onto ``rank`` modes and filters
    each mode with its own causal kernel of ``kernel_size`` taps:

    .. math:: m_a(t) = \sum_{j=0}^{K-1} g_a[j]\, h_a(t - j), \qquad
              h_a(t) = \sum_{c, s} V_{a, c s}\, x_{c, s}(t) + \beta_a

    with :math:`x_{c, s}(t)` the count of synapse type :math:`c` on segment
    :math:`s` in bin :math:`t`.

    Parameters
    ----------
    n_seg : int
        Number of segments.
    rank : int
        Number of modes (rank of the input projection ``V``).
    kernel_size : int
        Taps ``K`` of every mode's kernel (bins); the receptive field.
    interval : float
        Bin width (ms), for :attr:`receptive_field_ms`.
    """

    def __init__(
        self, n_seg: int, rank: int, kernel_size: int, interval: float = 1.0
    ) -> None:
        super().__init__()
        for value, name in ((n_seg, "n_seg"), (rank, "rank")):
            check_positive(value, name, integer=True)
        check_positive(kernel_size, "kernel_size", integer=True)
        check_positive(interval, "interval")
        self.n_seg = int(n_seg)
        self.rank = int(rank)
        self.kernel_size = int(kernel_size)
        self.interval = float(interval)
        # V: (2 n_seg) -> rank, with the sparse path of the TCN's projection
        self.input = InputProjection(n_seg, rank)
        # g: one temporal kernel per mode
        self.modes = CausalConv1d(rank, rank, kernel_size, groups=rank, bias=False)
        self.out_width = self.rank

    @classmethod
    def from_config(cls, config: ModelConfig) -> CausalLinearFilter:
        """Build from a :class:`ModelConfig` (see :class:`LinearBaseline`)."""
        return cls(
            config.n_seg, config.widths[0], config.receptive_field, config.interval
        )

    @property
    def receptive_field(self) -> int:
        """Receptive field (bins): output bin k sees input bins > k - this."""
        return self.kernel_size

    @property
    def receptive_field_ms(self) -> float:
        """Receptive field (ms): :attr:`receptive_field` times the interval."""
        return self.receptive_field * self.interval

    def forward(self, counts: Tensor) -> Tensor:
        """Mode responses of a whole window.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            Excitatory (0) and inhibitory (1) spike counts per bin, dense or
            sparse COO.

        Returns
        -------
        modes : Tensor, shape (n_batch, rank, n_times)
            The mode responses ``m`` (normalised voltage units).
        """
        return self.modes(self.input(counts))

    def step(self, counts: Tensor, caches: list[Tensor]) -> tuple[Tensor, list[Tensor]]:
        """Mode responses of the next chunk, continuing from the cached past.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            The next bins.
        caches : list of 1 Tensor
            From :meth:`init_caches` or the previous call.

        Returns
        -------
        modes : Tensor, shape (n_batch, rank, n_times)
        caches : list of 1 Tensor
            The cache for the next chunk (fixed size).
        """
        modes, cache = self.modes.step(self.input(counts), caches[0])
        return modes, [cache]

    def init_caches(
        self, n_batch: int, device: torch.device, dtype: torch.dtype
    ) -> list[Tensor]:
        """Zero caches (the state at time 0).

        Returns
        -------
        caches : list of 1 Tensor
            Shape (n_batch, rank, kernel_size - 1).
        """
        return [self.modes.init_cache(n_batch, device, dtype)]


@register_model(LINEAR_ARCH)
class LinearReadout(nn.Module):
    r"""Readout of :class:`LinearBaseline`: modes to voltages and spike logit.

    .. math:: z_s(t) = \sum_a U_{s a}\, m_a(t) + b_s, \qquad
              \ell(t) = \sum_a w_a\, m_a(t) + b_\ell

    Parameters
    ----------
    n_seg : int
        Number of segments.
    rank : int
        Number of modes.
    spike_prior : float
        Initial spike probability per bin (sets :math:`b_\ell`).

    Notes
    -----
    Registered as ``"linear"``; its :attr:`backbone_class` tells
    :class:`Surrogate` to build a :class:`CausalLinearFilter` in place of the
    TCN.
    """

    #: The "backbone" a Surrogate builds for this head.
    backbone_class = CausalLinearFilter

    def __init__(self, n_seg: int, rank: int, spike_prior: float = 0.01) -> None:
        super().__init__()
        self.n_seg = int(n_seg)
        self.rank = int(rank)
        # rows 0 .. n_seg - 1: U and b; row n_seg: w and the spike bias
        self.mix = nn.Conv1d(rank, n_seg + 1, 1)
        with torch.no_grad():
            self.mix.bias[n_seg] = math.log(spike_prior / (1.0 - spike_prior))

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        in_width: int,
        generator: torch.Generator | None = None,
    ) -> LinearReadout:
        """Build from a :class:`ModelConfig` for features of ``in_width``.

        ``generator`` is unused (the readout has no random architecture).
        """
        rank = config.widths[0]
        if in_width != rank:
            raise ValueError(
                f"in_width must be the rank widths[0] = {rank} for the linear "
                f"readout, got {in_width}; build it with build_model(config)"
            )
        return cls(config.n_seg, rank, config.spike_prior)

    def forward(self, features: Tensor) -> HeadOutput:
        """Voltages and spike logit from the mode responses.

        Parameters
        ----------
        features : Tensor, shape (n_batch, rank, n_times)
            From :class:`CausalLinearFilter`.

        Returns
        -------
        out : HeadOutput
            ``vmem`` (n_batch, n_seg, n_times) normalised, ``spike_logit``
            (n_batch, n_times), no auxiliary losses, no gates.
        """
        out = self.mix(features)  # (n_batch, n_seg + 1, n_times)
        return HeadOutput(out[:, : self.n_seg], out[:, self.n_seg], {}, None)


class LinearBaseline(Surrogate):
    r"""A single causal convolution from synaptic input to every voltage.

    The whole network is linear (affine) in the input counts: the voltage
    of segment :math:`s` is one causal convolution of all ``2 n_seg`` input
    channels,

    .. math:: v_s(t) = \mu_s + \sigma_s \Big( b_s + \sum_{c, s'}
              \sum_{j \ge 0} H_{s, c s'}[j]\, x_{c, s'}(t - j) \Big)

    with a kernel that is low rank plus diagonal,

    .. math:: H_{s, c s'}[j] = \sum_{a=1}^{r} U_{s a}\, g_a[j]\, V_{a, c s'}
              + \delta_{s s'} D_{s, c}[j]

    (plus a constant from the projection's bias), :math:`\mu, \sigma` the
    per-segment voltage normalisation, :math:`g_a` of ``K`` taps
    (:class:`CausalLinearFilter`, readout :class:`LinearReadout`) and
    :math:`D` of ``local_kernel`` taps (the :class:`LocalInputPath` of every
    :class:`Surrogate`). The spike logit is a logistic regression on the
    same mode responses, :math:`\ell(t) = b_\ell + \sum_a w_a (g_a *
    h_a)(t)`.

    Why this structure: a full ``2 n_seg -> n_seg`` convolution has ``2
    n_seg^2 K`` weights (about 420 million for 913 segments and a 253-bin
    kernel). The low-rank term has the form of a passive cable's Green's
    function expanded in its eigenmodes (spatial mode :math:`U_{:, a}`, its
    input weights :math:`V_{a, :}`, a temporal kernel :math:`g_a`); the
    diagonal term gives each segment its own excitatory and inhibitory
    kernel, the fast local PSP that a few smooth modes cannot carry.
    Parameters: ``2 n_seg r + r + r K + (n_seg + 1)(r + 1) + 2 n_seg
    local_kernel``.

    Why gradient training, not a closed-form ridge fit: it is fitted by
    :func:`lfp_surrogate.train.train` (``arch="linear"``, CLI ``lfp-surrogate
    train --arch linear``) on the same windows, with the same spike
    balancing and the same loss (voltage, derived currents, dipole, LFP,
    spike cross-entropy) as the nonlinear surrogates, so that a comparison
    isolates the architecture. A ridge fit would minimise the voltage error
    alone, and its normal equations over ``2 n_seg K`` lagged inputs (half a
    million for this cell) do not fit in memory.

    Parameters
    ----------
    config : ModelConfig
        ``arch`` must be ``"linear"``. Read are ``n_seg``, ``widths[0]``
        (the rank ``r``), :attr:`ModelConfig.receptive_field` (the kernel
        length ``K``: the receptive field of the TCN that ``kernel_sizes``,
        ``dilations`` and ``convs_per_block`` describe, so that a baseline
        built from a surrogate's config sees the same past),
        ``local_kernel`` (the length of ``D``; 0, the default, is replaced
        by ``min(K, LINEAR_LOCAL_KERNEL)`` = 64 bins, since the own-input
        kernel is part of this model), ``spike_prior`` and ``interval``;
        the other fields are ignored.
    generator : torch.Generator | None
        Unused (no random architecture choices).
    normalization : tuple of (array-like, array-like) | None
        Per-segment ``(mean, scale)`` of the voltage (mV), see
        :class:`Surrogate`.

    Attributes
    ----------
    backbone : CausalLinearFilter
        ``V`` and ``g``.
    head : LinearReadout
        ``U``, ``b``, ``w`` and the spike bias.
    local : LocalInputPath
        ``D``.

    Notes
    -----
    Build it with :func:`build_model` (``ModelConfig(arch="linear")``),
    which :func:`~lfp_surrogate.train.load_model` also uses, or directly.
    Prediction, streaming (:func:`predict_stream`), normalisation and saving
    are those of :class:`Surrogate`. Output bin k depends on input bins
    ``k - receptive_field + 1 .. k`` only.

    The own-input kernels are shorter than the modes' by default: the fast
    local response at a synapse's own segment decays within tens of
    milliseconds, the slow, spatially smooth one is in the modes. They are
    also the cost: measured on 2 shared CPU threads, torch 2.13, n_seg =
    913, r = 128, K = 253, 8 x 400 bins, forward + backward took 1.13 s with
    253-tap own kernels and 0.41 s with 64 taps (0.34 s for the default
    ``"mh"`` surrogate).
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        generator: torch.Generator | None = None,
        normalization: tuple[np.ndarray | Tensor, np.ndarray | Tensor] | None = None,
    ) -> None:
        check_type(config, ModelConfig, "config")
        if config.arch != LINEAR_ARCH:
            raise ValueError(
                f"config.arch must be {LINEAR_ARCH!r} for a LinearBaseline, got "
                f"{config.arch!r}; pass config.replace(arch={LINEAR_ARCH!r}), or "
                f"build_model(config) for the other architectures"
            )
        if config.local_kernel == 0:
            # the own-input kernel is part of the baseline; saved in the config
            local = min(config.receptive_field, LINEAR_LOCAL_KERNEL)
            config = config.replace(local_kernel=local)
        super().__init__(config, generator=generator, normalization=normalization)
