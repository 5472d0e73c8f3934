"""The surrogate network: backbone + multitask head, built by name."""

from __future__ import annotations

import time
from typing import NamedTuple

import numpy as np
import torch
from torch import Tensor, nn

from .._logging import logger, use_log_level
from .._validation import check_type
from ._backbone import TCNBackbone
from ._checks import check_counts, check_segment_vector
from ._config import ModelConfig
from ._layers import LocalInputPath
from ._registry import get_head
from ._streaming import StreamingState


class SurrogateOutput(NamedTuple):
    """Prediction of a :class:`Surrogate`.

    Attributes
    ----------
    vmem : Tensor, shape (n_batch, n_seg, n_times)
        Membrane potential of every segment (mV once a normalisation is set
        with :meth:`Surrogate.set_normalization`; before, the normalised
        space).
    spike_logit : Tensor, shape (n_batch, n_times)
        Logit of the probability of a somatic spike in each bin.
    aux_losses : dict of str to Tensor
        Auxiliary training losses (scalar tensors, e.g. ``"load_balance"``
        of the mixture-of-experts heads), kept apart from the prediction;
        empty for MH and in streaming prediction.
    """

    vmem: Tensor
    spike_logit: Tensor
    aux_losses: dict[str, Tensor]


class Surrogate(nn.Module):
    """Causal network predicting every segment's voltage from synaptic input.

    A :class:`TCNBackbone` followed by the multitask head registered under
    ``config.arch`` (a head may name its own backbone in a ``backbone_class``
    attribute, as the linear baseline's readout does, see
    :class:`LinearBaseline`). Output bin k depends on input bins ``k -
    receptive_field + 1 .. k`` only. The voltage is de-normalised per segment,
    ``vmem = z * vmem_scale + vmem_mean`` with ``z`` the head output.

    Parameters
    ----------
    config : ModelConfig
        Architecture.
    generator : torch.Generator | None
        Random source of architecture choices (the MMoEEx expert
        assignment); ``None`` uses the seeds in ``config``. Weights are
        initialised from torch's default generator, which is never seeded.
    normalization : tuple of (array-like, array-like) | None
        Per-segment ``(mean, scale)`` of the voltage (mV), each shape
        (n_seg,); ``None``: mean 0 and scale 1 (outputs stay normalised)
        until :meth:`set_normalization`.

    Attributes
    ----------
    backbone : TCNBackbone | CausalLinearFilter
    head : MultitaskHead | LinearReadout
    vmem_mean, vmem_scale : Tensor, shape (n_seg,)
        Buffers (mV), saved with the weights.
    """

    def __init__(
        self,
        config: ModelConfig,
        *,
        generator: torch.Generator | None = None,
        normalization: tuple[np.ndarray | Tensor, np.ndarray | Tensor] | None = None,
    ) -> None:
        super().__init__()
        check_type(config, ModelConfig, "config")
        self.config = config
        head = get_head(config.arch)
        self.backbone = getattr(head, "backbone_class", TCNBackbone).from_config(config)
        self.head = head.from_config(config, self.backbone.out_width, generator)
        self.local = (
            LocalInputPath(config.n_seg, config.local_kernel)
            if config.local_kernel > 0
            else None
        )
        self.register_buffer("vmem_mean", torch.zeros(config.n_seg))
        self.register_buffer("vmem_scale", torch.ones(config.n_seg))
        if normalization is not None:
            check_type(normalization, tuple | list, "normalization", "(mean, scale)")
            if len(normalization) != 2:
                raise ValueError(
                    f"normalization must be a pair (mean, scale), got "
                    f"{len(normalization)} items"
                )
            self.set_normalization(*normalization)

    @property
    def n_seg(self) -> int:
        """Number of segments."""
        return self.config.n_seg

    @property
    def receptive_field(self) -> int:
        """Receptive field (bins): output bin k sees input bins > k - this."""
        local = 0 if self.local is None else self.local.kernel_size
        return max(self.backbone.receptive_field, local)

    @property
    def receptive_field_ms(self) -> float:
        """Receptive field (ms)."""
        return self.receptive_field * self.config.interval

    @property
    def n_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def set_normalization(
        self, mean: np.ndarray | Tensor, scale: np.ndarray | Tensor
    ) -> None:
        """Set the per-segment voltage normalisation.

        Parameters
        ----------
        mean : array-like, shape (n_seg,)
            Voltage offset of every segment (mV).
        scale : array-like, shape (n_seg,)
            Voltage scale of every segment (mV), > 0.
        """
        mean = check_segment_vector(mean, self.n_seg, "mean")
        scale = check_segment_vector(scale, self.n_seg, "scale")
        if not bool((scale > 0).all()):
            raise ValueError(
                f"scale must be > 0 for every segment, got minimum "
                f"{float(scale.min()):g} mV"
            )
        with torch.no_grad():
            self.vmem_mean.copy_(mean)
            self.vmem_scale.copy_(scale)

    def normalize_vmem(self, vmem: Tensor) -> Tensor:
        """Map voltages (mV) into the normalised space of the head.

        Parameters
        ----------
        vmem : Tensor, shape (..., n_seg, n_times)
            Membrane potential (mV).

        Returns
        -------
        z : Tensor, shape (..., n_seg, n_times)
            ``(vmem - vmem_mean) / vmem_scale`` (dimensionless).
        """
        return (vmem - self.vmem_mean[:, None]) / self.vmem_scale[:, None]

    def _prepare(self, counts: Tensor | np.ndarray, name: str = "counts") -> Tensor:
        counts = check_counts(counts, self.n_seg, name)
        device = self.vmem_mean.device
        if counts.device != device:
            raise ValueError(
                f"{name} must be on the model's device ({device}), got "
                f"{counts.device}; move it with {name}.to({str(device)!r})"
            )
        return counts

    def _output(self, features: Tensor, local: Tensor | None) -> SurrogateOutput:
        head = self.head(features)
        z = head.vmem if local is None else head.vmem + local
        # vmem = z * scale + mean, per segment
        vmem = torch.addcmul(self.vmem_mean[:, None], z, self.vmem_scale[:, None])
        return SurrogateOutput(vmem, head.spike_logit, head.aux_losses)

    def forward(self, counts: Tensor | np.ndarray) -> SurrogateOutput:
        """Predict a whole window at once.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            Excitatory (0) and inhibitory (1) synaptic spike counts of every
            segment per bin (bin k: spikes in ``(k, k + 1]`` intervals), dense
            or sparse COO (see :func:`sparse_counts`), on the model's device.

        Returns
        -------
        out : SurrogateOutput
            ``vmem`` (n_batch, n_seg, n_times) in mV, ``spike_logit``
            (n_batch, n_times), ``aux_losses``.

        Notes
        -----
        Bins before the window are taken as silent with the network at rest
        (zero padding of every layer); discard the first
        ``receptive_field - 1`` output bins in training when the window
        starts inside a simulation.
        """
        counts = self._prepare(counts)
        local = None if self.local is None else self.local(counts)
        return self._output(self.backbone(counts), local)

    def gate_weights(self, counts: Tensor) -> Tensor | None:
        """Gate weights of a mixture-of-experts head.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            Input counts as in :meth:`forward`.

        Returns
        -------
        gates : Tensor, shape (n_batch, n_tasks + 1, n_experts, n_times) | None
            Weights (sum 1 over experts; task ``n_tasks`` is the somatic
            spike), or ``None`` for a head without gates.
        """
        counts = self._prepare(counts)
        gates = getattr(self.head, "gates", None)
        return None if gates is None else gates(self.backbone(counts))

    def init_state(
        self, n_batch: int, dtype: torch.dtype | None = None
    ) -> StreamingState:
        """The streaming state at time 0 (silent past input).

        Parameters
        ----------
        n_batch : int
            Number of inputs streamed side by side.
        dtype : torch.dtype | None
            Dtype of the caches (default: the model's).

        Returns
        -------
        state : StreamingState
        """
        dtype = self.vmem_mean.dtype if dtype is None else dtype
        device = self.vmem_mean.device
        caches = self.backbone.init_caches(n_batch, device, dtype)
        if self.local is not None:
            # the local path's cache goes last
            caches.append(self.local.init_cache(n_batch, device, dtype))
        return StreamingState(caches, n_batch)

    def step(
        self, counts: Tensor, state: StreamingState | None = None
    ) -> tuple[SurrogateOutput, StreamingState]:
        """Predict the next chunk of a stream, carrying context in ``state``.

        Feeding a long input chunk by chunk gives the same output as
        :meth:`forward` on the whole input (in eval mode, to float
        precision), with memory that does not grow with duration.

        Parameters
        ----------
        counts : Tensor, shape (n_batch, 2, n_seg, n_times)
            The next bins of the input, on the model's device.
        state : StreamingState | None
            From the previous call; ``None`` starts a new stream.

        Returns
        -------
        out : SurrogateOutput
            Prediction of these bins (``aux_losses`` empty).
        state : StreamingState
            State to pass with the next chunk.
        """
        counts = self._prepare(counts)
        if state is None:
            state = self.init_state(counts.shape[0])
        check_type(state, StreamingState, "state")
        if state.n_batch != counts.shape[0]:
            raise ValueError(
                f"counts must have the n_batch of the stream ({state.n_batch}), "
                f"got {counts.shape[0]}; start a new stream with state=None"
            )
        caches, local = list(state.caches), None
        if self.local is not None:
            local, local_cache = self.local.step(counts, caches.pop())
        features, caches = self.backbone.step(counts, caches)
        if self.local is not None:
            caches.append(local_cache)
        out = self._output(features, local)
        new = StreamingState(caches, state.n_batch, state.n_times + counts.shape[-1])
        return SurrogateOutput(out.vmem, out.spike_logit, {}), new


def build_model(
    config: ModelConfig | dict,
    *,
    generator: torch.Generator | None = None,
    verbose: bool | str | int | None = None,
) -> Surrogate:
    """Build the surrogate named by ``config.arch``.

    Parameters
    ----------
    config : ModelConfig | dict
        Architecture, or its plain-dict form (:meth:`ModelConfig.to_dict`).
    generator : torch.Generator | None
        Random source of architecture choices (the MMoEEx expert
        assignment); ``None`` uses the seeds in ``config``.
    verbose : bool | str | int | None
        Log level for this call (``None``: the current one).

    Returns
    -------
    model : Surrogate
        On the CPU, in training mode; a :class:`LinearBaseline` for
        ``arch="linear"``.
    """
    from ._linear import LINEAR_ARCH, LinearBaseline

    if isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    check_type(config, ModelConfig, "config", "a ModelConfig or a dict")
    network = LinearBaseline if config.arch == LINEAR_ARCH else Surrogate
    with use_log_level(verbose):
        start = time.perf_counter()
        model = network(config, generator=generator)
        logger.info(
            "Built %s surrogate: %d segments, %d tasks, %d parameters (%.1f MB "
            "float32), receptive field %d bins (%g ms) in %.2f s",
            config.arch,
            config.n_seg,
            config.n_tasks,
            model.n_parameters,
            model.n_parameters * 4 / 1e6,
            model.receptive_field,
            model.receptive_field_ms,
            time.perf_counter() - start,
        )
    return model
