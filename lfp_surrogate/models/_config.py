"""Configuration of a surrogate network."""

from __future__ import annotations

import dataclasses
import numbers
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .._validation import check_option, check_positive, check_type
from ._registry import list_models

#: Normalisation layers accepted by :attr:`ModelConfig.norm`.
NORMS = ("none", "layer")
#: Kinds of expert masks accepted by :attr:`ModelConfig.exclusion`.
EXCLUSIONS = ("exclusive", "exclusion")


@dataclass(frozen=True)
class ModelConfig:
    """Everything that determines a surrogate network's architecture.

    Parameters
    ----------
    n_seg : int
        Number of segments of the cell (outputs per time bin; the input has
        ``2 * n_seg`` channels).
    arch : str
        Multitask head, a name of :func:`list_models`: ``"mh"`` (hard
        parameter sharing), ``"mmoe"`` or ``"mmoeex"``.
    task_of_seg : sequence of int, shape (n_seg,) | None
        Task (compartment group) of every segment, e.g. the region codes of
        :attr:`CellGeometry.region`; tasks must be numbered ``0 ..
        n_tasks - 1`` with none empty. ``None``: ``n_tasks`` contiguous
        blocks of near-equal size (``n_tasks = n_seg``: one task per segment).
    n_tasks : int | None
        Number of tasks. With ``task_of_seg`` it must match (or be ``None``);
        without, ``None`` means one task. Set to the resolved number after
        construction. The somatic spike prediction is one more task, index
        ``n_tasks``, with its own tower (and gate).
    widths : int | sequence of int
        Channels of each residual block of the backbone (an int: the same for
        every block). A tuple of ``len(dilations)`` after construction.
    kernel_sizes : int | sequence of int
        Kernel size (bins) of the convolutions of each block (an int: the same
        for every block).
    dilations : sequence of int
        Dilation (bins) of each block; its length is the number of blocks.
    convs_per_block : int
        Dilated causal convolutions per residual block.
    norm : str
        ``"none"`` or ``"layer"`` (layer norm over channels at each time step,
        before each convolution).
    dropout : float
        Dropout probability after each convolution of the backbone (0 to 1).
    tower_width : int
        Hidden units of each task tower.
    n_experts : int
        Experts of the MMoE and MMoEEx heads.
    expert_width : int
        Hidden and output units of each expert.
    exclusivity : float
        MMoEEx: fraction (0 to 1) of the experts that are made exclusive to,
        or excluded from, one random task; at least one expert stays shared.
    exclusion : str
        MMoEEx: ``"exclusive"`` (such an expert serves its task only) or
        ``"exclusion"`` (it serves every task but its own).
    exclusivity_seed : int
        MMoEEx: seed of the random expert-task assignment when no
        ``torch.Generator`` is passed to the constructor.
    spike_prior : float
        Initial probability of a somatic spike in a bin; sets the bias of the
        spike logit at initialisation (Lin et al. 2017,
        doi:10.1109/ICCV.2017.324).
    interval : float
        Bin width of inputs and outputs (ms).
    local_kernel : int
        Taps (bins) of each segment's linear filter of its own input
        (:class:`LocalInputPath`), added to the head's output; 0 for none.
    """

    n_seg: int
    arch: str = "mh"
    task_of_seg: tuple[int, ...] | None = None
    n_tasks: int | None = None
    widths: int | tuple[int, ...] = 128
    kernel_sizes: int | tuple[int, ...] = 3
    dilations: tuple[int, ...] = (1, 2, 4, 8, 16, 32)
    convs_per_block: int = 2
    norm: str = "none"
    dropout: float = 0.1
    tower_width: int = 64
    n_experts: int = 6
    expert_width: int = 64
    exclusivity: float = 0.5
    exclusion: str = "exclusive"
    exclusivity_seed: int = 0
    spike_prior: float = 0.01
    interval: float = 1.0
    local_kernel: int = 0

    def __post_init__(self):
        check_positive(self.n_seg, "n_seg", integer=True)
        check_option(
            self.arch,
            list_models(),
            "arch",
            fix="Register a new head with @register_model(name)",
        )
        self._resolve_tasks()

        # backbone
        dilations = _int_tuple(self.dilations, "dilations")
        if not dilations:
            raise ValueError("dilations must hold at least one block, got ()")
        n_blocks = len(dilations)
        for name in ("widths", "kernel_sizes"):
            value = getattr(self, name)
            if isinstance(value, numbers.Integral) and not isinstance(value, bool):
                value = (int(value),) * n_blocks
            value = _int_tuple(value, name)
            if len(value) != n_blocks:
                raise ValueError(
                    f"{name} must have one entry per block (len(dilations) = "
                    f"{n_blocks}), got {len(value)}: {value}; pass an int to "
                    f"use the same value in every block"
                )
            object.__setattr__(self, name, value)
        object.__setattr__(self, "dilations", dilations)
        check_positive(self.convs_per_block, "convs_per_block", integer=True)
        check_option(self.norm, NORMS, "norm")
        check_positive(self.dropout, "dropout", strict=False)
        if self.dropout >= 1:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout!r}")

        # heads
        for name in ("tower_width", "n_experts", "expert_width"):
            check_positive(getattr(self, name), name, integer=True)
        check_positive(self.exclusivity, "exclusivity", strict=False)
        if self.exclusivity > 1:
            raise ValueError(f"exclusivity must be in [0, 1], got {self.exclusivity!r}")
        check_option(self.exclusion, EXCLUSIONS, "exclusion")
        check_positive(
            self.exclusivity_seed, "exclusivity_seed", integer=True, strict=False
        )
        check_positive(self.spike_prior, "spike_prior")
        if self.spike_prior >= 1:
            raise ValueError(f"spike_prior must be in (0, 1), got {self.spike_prior!r}")
        check_positive(self.interval, "interval")
        check_positive(self.local_kernel, "local_kernel", integer=True, strict=False)

    def _resolve_tasks(self):
        if self.n_tasks is not None:
            check_positive(self.n_tasks, "n_tasks", integer=True)
        if self.task_of_seg is None:
            n_tasks = 1 if self.n_tasks is None else int(self.n_tasks)
            if n_tasks > self.n_seg:
                raise ValueError(
                    f"n_tasks must be <= n_seg ({self.n_seg}) without "
                    f"task_of_seg, got {n_tasks}"
                )
            object.__setattr__(self, "n_tasks", n_tasks)
            return
        tasks = np.asarray(self.task_of_seg)
        if tasks.shape != (self.n_seg,) or tasks.dtype.kind not in "iu":
            raise ValueError(
                f"task_of_seg must be integers of shape (n_seg,) = "
                f"({self.n_seg},), got {tasks.dtype} of shape {tasks.shape}"
            )
        present = np.unique(tasks)
        n_tasks = int(present[-1]) + 1
        if present[0] < 0 or present.size != n_tasks:
            missing = sorted(set(range(max(n_tasks, 0))) - set(present.tolist()))
            raise ValueError(
                f"task_of_seg must number its tasks 0 .. n_tasks - 1 with none "
                f"empty, got values {present.tolist()[:10]} (missing "
                f"{missing[:10]}); renumber with "
                f"np.unique(task_of_seg, return_inverse=True)[1]"
            )
        if self.n_tasks is not None and self.n_tasks != n_tasks:
            raise ValueError(
                f"n_tasks must match task_of_seg ({n_tasks} tasks) or be None, "
                f"got {self.n_tasks}"
            )
        object.__setattr__(self, "task_of_seg", tuple(int(t) for t in tasks))
        object.__setattr__(self, "n_tasks", n_tasks)

    @property
    def tasks(self) -> np.ndarray:
        """Task of every segment.

        Returns
        -------
        tasks : ndarray of int64, shape (n_seg,)
            Values in ``0 .. n_tasks - 1``.
        """
        if self.task_of_seg is not None:
            return np.asarray(self.task_of_seg, dtype=np.int64)
        # contiguous blocks of near-equal size
        return np.arange(self.n_seg, dtype=np.int64) * self.n_tasks // self.n_seg

    @property
    def receptive_field(self) -> int:
        """Receptive field (bins): output bin k sees input bins > k - this."""
        return 1 + self.convs_per_block * sum(
            (k - 1) * d for k, d in zip(self.kernel_sizes, self.dilations)
        )

    def to_dict(self) -> dict:
        """Plain dict of JSON/YAML types (tuples become lists)."""
        out = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    @classmethod
    def from_dict(cls, d: dict, source: str = "configuration") -> ModelConfig:
        """Inverse of :meth:`to_dict`, with errors naming ``source``.

        Parameters
        ----------
        d : dict
            Field names and values; omitted fields take their defaults.
        source : str
            Where ``d`` came from (a file name), for error messages.

        Returns
        -------
        config : ModelConfig
        """
        check_type(d, dict, source, "a dict")
        known = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(d) - set(known))
        if unknown:
            raise ValueError(
                f"{source}: unknown ModelConfig field(s) {unknown}; known fields "
                f"are {known}"
            )
        if "n_seg" not in d:
            raise ValueError(f"{source}: missing field 'n_seg'")
        kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}
        return cls(**kwargs)

    def replace(self, **changes) -> ModelConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _int_tuple(value, name: str) -> tuple[int, ...]:
    """``value`` as a tuple of positive ints (ValueError naming ``name``)."""
    if isinstance(value, str | bytes) or not isinstance(value, Sequence | np.ndarray):
        raise TypeError(
            f"{name} must be a sequence of positive ints, got "
            f"{type(value).__name__} ({value!r})"
        )
    out = tuple(value)
    for v in out:
        if isinstance(v, bool) or not isinstance(v, numbers.Integral) or v < 1:
            raise ValueError(
                f"{name} must hold positive ints, got {v!r} in {list(out)}"
            )
    return tuple(int(v) for v in out)
