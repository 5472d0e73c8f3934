"""Surrogate networks: a causal temporal convolutional backbone and multitask heads.

The input is the synaptic spike count of every segment per time bin, shape
(n_batch, 2, n_seg, n_times) (excitatory, inhibitory); the output is the
membrane potential of every segment (mV) and the logit of a somatic spike in
every bin. Output bin k depends on input bins <= k only. Heads are built by
name from a registry: ``"mh"`` (hard parameter sharing), ``"mmoe"`` (Ma et al.
2018) and ``"mmoeex"`` (Aoki et al. 2021); ``"linear"`` is the linear baseline
(one causal convolution, :class:`LinearBaseline`).
"""

from ._backbone import TCNBackbone
from ._config import ModelConfig
from ._heads import MH, HeadOutput, MMoE, MMoEEx, MultitaskHead
from ._layers import (
    CausalConv1d,
    ChannelNorm,
    InputProjection,
    LocalInputPath,
    TemporalBlock,
)
from ._linear import CausalLinearFilter, LinearBaseline, LinearReadout
from ._registry import list_models, register_model
from ._sparse import sparse_counts
from ._streaming import StreamingState, iter_stream, predict_stream
from ._surrogate import Surrogate, SurrogateOutput, build_model

__all__ = [
    "MH",
    "CausalConv1d",
    "CausalLinearFilter",
    "ChannelNorm",
    "HeadOutput",
    "InputProjection",
    "LinearBaseline",
    "LinearReadout",
    "LocalInputPath",
    "MMoE",
    "MMoEEx",
    "ModelConfig",
    "MultitaskHead",
    "StreamingState",
    "Surrogate",
    "SurrogateOutput",
    "TCNBackbone",
    "TemporalBlock",
    "build_model",
    "iter_stream",
    "list_models",
    "predict_stream",
    "register_model",
    "sparse_counts",
]
