"""Multitask heads: hard parameter sharing (MH), MMoE and MMoEEx."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._validation import check_option, check_positive, check_type
from ._config import ModelConfig
from ._registry import register_model


class HeadOutput(NamedTuple):
    """Output of a multitask head.

    Attributes
    ----------
    vmem : Tensor, shape (n_batch, n_seg, n_times)
        Membrane potential of every segment in the normalised space
        (dimensionless; see :meth:`Surrogate.set_normalization`).
    spike_logit : Tensor, shape (n_batch, n_times)
        Logit of the probability of a somatic spike in each bin.
    aux_losses : dict of str to Tensor
        Auxiliary training losses (scalars), not part of the prediction.
    gates : Tensor, shape (n_batch, n_tasks + 1, n_experts, n_times) | None
        Gate weights of the mixture-of-experts heads (each sums to 1 over
        experts; task ``n_tasks`` is the somatic spike); ``None`` for MH.
    """

    vmem: Tensor
    spike_logit: Tensor
    aux_losses: dict[str, Tensor]
    gates: Tensor | None


def _uniform_(tensor: Tensor, fan_in: int) -> Tensor:
    """Initialise like ``nn.Linear``: U(-1/sqrt(fan_in), 1/sqrt(fan_in))."""
    bound = 1.0 / math.sqrt(fan_in)
    return nn.init.uniform_(tensor, -bound, bound)


def _he_(tensor: Tensor, fan_in: int) -> Tensor:
    """He initialisation N(0, 2 / fan_in) of a layer feeding a GELU/ReLU.

    With PyTorch's default (variance 1 / (3 fan_in)) the stacked expert, mixture
    and tower layers start with outputs ~10x smaller than MH's and train
    markedly slower on the tests' toy task (He et al. 2015,
    doi:10.1109/ICCV.2015.123).
    """
    return nn.init.normal_(tensor, 0.0, math.sqrt(2.0 / fan_in))


class _TaskTowers(nn.Module):
    """One MLP tower per task (``in -> hidden -> task outputs``), all at once.

    Task k < n_tasks outputs the segments with ``task_of_seg == k``; task
    ``n_tasks`` outputs the spike logit. Tasks with the same number of outputs
    share one batched ``matmul``, so there is no padding and one call per
    distinct task size (at most about ``sqrt(2 n_seg)`` calls).

    Parameters
    ----------
    task_of_seg : ndarray of int, shape (n_seg,)
        Task of every segment.
    n_tasks : int
        Number of segment tasks.
    in_width : int
        Input features (per task, or shared).
    hidden : int
        Hidden units of each tower.
    shared_input : bool
        Whether all towers read one shared input of shape (n_batch, in_width,
        n_times) (MH) or each its own, shape (n_batch, n_tasks + 1, in_width,
        n_times) (mixtures of experts).
    spike_prior : float
        Initial spike probability (sets the spike output's bias).
    """

    def __init__(
        self,
        task_of_seg: np.ndarray,
        n_tasks: int,
        in_width: int,
        hidden: int,
        shared_input: bool,
        spike_prior: float,
    ) -> None:
        super().__init__()
        n_seg = task_of_seg.shape[0]
        self.n_towers = n_towers = n_tasks + 1
        self.hidden = hidden
        self.shared_input = shared_input

        # first layer: one (hidden, in_width) matrix per tower
        if shared_input:
            self.first = nn.Conv1d(in_width, n_towers * hidden, 1)
            _he_(self.first.weight.data, in_width)
        else:
            self.first_weight = nn.Parameter(
                _he_(torch.empty(n_towers, hidden, in_width), in_width)
            )
            self.first_bias = nn.Parameter(
                _uniform_(torch.empty(n_towers, hidden), in_width)
            )

        # second layer: towers grouped by their number of outputs
        rows = [np.flatnonzero(task_of_seg == k) for k in range(n_tasks)]
        rows.append(np.array([n_seg]))  # the spike logit is output row n_seg
        sizes = np.array([r.size for r in rows])
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        self._buckets: list[tuple[int, int] | None] = []  # tower range if contiguous
        perm = []
        for i, size in enumerate(np.unique(sizes)):
            towers = np.flatnonzero(sizes == size)
            weight = torch.empty(towers.size, int(size), hidden)
            bias = _uniform_(torch.empty(towers.size, int(size)), hidden)
            if towers[-1] == n_towers - 1:  # the spike tower is in this group
                bias[-1, 0] = math.log(spike_prior / (1.0 - spike_prior))
            self.weights.append(nn.Parameter(_uniform_(weight, hidden)))
            self.biases.append(nn.Parameter(bias))
            contiguous = bool(np.all(np.diff(towers) == 1))
            self._buckets.append(
                (int(towers[0]), int(towers[-1]) + 1) if contiguous else None
            )
            rows_i = np.concatenate([rows[k] for k in towers])
            perm.extend(rows_i)
            self.register_buffer(
                f"_towers{i}", torch.as_tensor(towers), persistent=False
            )
            self.register_buffer(f"_rows{i}", torch.as_tensor(rows_i), persistent=False)
        self._n_out = n_seg + 1
        self._identity = bool(np.array_equal(perm, np.arange(n_seg + 1)))

    def forward(self, x: Tensor) -> Tensor:
        """Outputs of all towers.

        Parameters
        ----------
        x : Tensor, shape (n_batch, in_width, n_times) or (n_batch, n_tasks + 1, \
in_width, n_times)
            Shared or per-tower input features.

        Returns
        -------
        out : Tensor, shape (n_batch, n_seg + 1, n_times)
            Segment outputs in segment order, then the spike logit.
        """
        n_batch, n_times = x.shape[0], x.shape[-1]
        if self.shared_input:
            hid = self.first(x)  # (n_batch, n_towers * hidden, n_times)
            # -> (n_batch, n_towers, hidden, n_times)
            hid = hid.reshape(n_batch, self.n_towers, self.hidden, n_times)
        else:
            # (n_towers, hidden, in) @ (n_batch, n_towers, in, n_times), batched
            hid = torch.matmul(self.first_weight, x) + self.first_bias[:, :, None]
        hid = F.gelu(hid)

        outs = []
        for i, (weight, bias) in enumerate(zip(self.weights, self.biases)):
            span = self._buckets[i]
            if span is None:
                h = hid.index_select(1, getattr(self, f"_towers{i}"))
            else:
                h = hid[:, span[0] : span[1]]  # a view, no copy
            # (n_k, size, hidden) @ (n_batch, n_k, hidden, n_times)
            out = torch.matmul(weight, h) + bias[:, :, None]
            # (n_batch, n_k, size, n_times) -> (n_batch, n_k * size, n_times)
            outs.append(out.reshape(n_batch, -1, n_times))
        if self._identity:
            return torch.cat(outs, dim=1) if len(outs) > 1 else outs[0]

        # scatter each group's rows to their segments
        out = hid.new_empty(n_batch, self._n_out, n_times)
        for i, part in enumerate(outs):
            out.index_copy_(1, getattr(self, f"_rows{i}"), part)
        return out


class MultitaskHead(nn.Module):
    """Base class of the multitask heads.

    A head maps backbone features to the voltage of every segment and the
    somatic spike logit. Tasks are groups of segments; the spike is one more
    task (index ``n_tasks``). Subclasses implement :meth:`from_config` and
    ``forward(features) -> HeadOutput`` and are registered with
    :func:`register_model`.

    Parameters
    ----------
    task_of_seg : array-like of int, shape (n_seg,)
        Task of every segment, values ``0 .. n_tasks - 1``, none empty.
    """

    def __init__(self, task_of_seg: np.ndarray | Sequence[int]) -> None:
        super().__init__()
        tasks = np.asarray(task_of_seg)
        if tasks.ndim != 1 or tasks.dtype.kind not in "iu" or tasks.size < 1:
            raise ValueError(
                f"task_of_seg must be a 1-D integer array of shape (n_seg,), got "
                f"{tasks.dtype} of shape {tasks.shape}"
            )
        n_tasks = int(tasks.max()) + 1
        if tasks.min() < 0 or np.unique(tasks).size != n_tasks:
            raise ValueError(
                "task_of_seg must number its tasks 0 .. n_tasks - 1 with none "
                f"empty, got values {np.unique(tasks).tolist()[:10]}; renumber "
                "with np.unique(task_of_seg, return_inverse=True)[1]"
            )
        self.n_seg = int(tasks.size)
        self.n_tasks = n_tasks
        self._task_of_seg = tasks.astype(np.int64)

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        in_width: int,
        generator: torch.Generator | None = None,
    ) -> MultitaskHead:
        """Build from a :class:`ModelConfig` for features of ``in_width``."""
        raise NotImplementedError(f"{cls.__name__} must implement from_config")

    @property
    def task_of_seg(self) -> np.ndarray:
        """Task of every segment, shape (n_seg,)."""
        return self._task_of_seg.copy()

    def _split(self, out: Tensor) -> tuple[Tensor, Tensor]:
        """(n_batch, n_seg + 1, n_times) -> vmem (n_batch, n_seg, n_times), logit."""
        return out[:, : self.n_seg], out[:, self.n_seg]


@register_model("mh")
class MH(MultitaskHead):
    """Hard parameter sharing: one small tower per task on shared features.

    Each task's tower is a 1 x 1 convolution MLP ``in_width -> tower_width ->
    (segments of the task)`` applied at every time step (Caruana 1997,
    doi:10.1023/A:1007379606734).

    Parameters
    ----------
    in_width : int
        Features of the backbone.
    task_of_seg : array-like of int, shape (n_seg,)
        Task of every segment.
    tower_width : int
        Hidden units of each tower.
    spike_prior : float
        Initial spike probability per bin (bias of the spike logit).
    """

    def __init__(
        self,
        in_width: int,
        task_of_seg: np.ndarray | Sequence[int],
        tower_width: int = 64,
        spike_prior: float = 0.01,
    ) -> None:
        super().__init__(task_of_seg)
        check_positive(in_width, "in_width", integer=True)
        check_positive(tower_width, "tower_width", integer=True)
        self.towers = _TaskTowers(
            self._task_of_seg, self.n_tasks, in_width, tower_width, True, spike_prior
        )

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        in_width: int,
        generator: torch.Generator | None = None,
    ) -> MH:
        """Build from a :class:`ModelConfig` (``generator`` is unused)."""
        return cls(in_width, config.tasks, config.tower_width, config.spike_prior)

    def forward(self, features: Tensor) -> HeadOutput:
        """Predict from backbone features.

        Parameters
        ----------
        features : Tensor, shape (n_batch, in_width, n_times)

        Returns
        -------
        out : HeadOutput
            ``vmem`` (n_batch, n_seg, n_times) normalised, ``spike_logit``
            (n_batch, n_times), ``aux_losses`` empty, ``gates`` None.
        """
        vmem, logit = self._split(self.towers(features))
        return HeadOutput(vmem, logit, {}, None)


@register_model("mmoe")
class MMoE(MultitaskHead):
    r"""Multi-gate mixture of experts (Ma et al. 2018, doi:10.1145/3219819.3220007).

    At every time step, ``n_experts`` experts (1 x 1 convolution MLPs
    ``in_width -> expert_width -> expert_width``, GELU between, linear output)
    read the backbone features;
    each task k mixes them with its own softmax gate and feeds its tower:

    .. math:: y_k = h_k\Big(\sum_e g_{k,e}(x)\, f_e(x)\Big), \quad
              g_k(x) = \mathrm{softmax}(W_k x + b_k)

    Parameters
    ----------
    in_width : int
        Features of the backbone.
    task_of_seg : array-like of int, shape (n_seg,)
        Task of every segment.
    n_experts : int
        Number of experts.
    expert_width : int
        Hidden and output units of each expert.
    tower_width : int
        Hidden units of each tower.
    spike_prior : float
        Initial spike probability per bin (bias of the spike logit).
    gate_mask : Tensor of bool, shape (n_tasks + 1, n_experts) | None
        Which experts each task may use (``None``: all). A masked gate logit
        is set to ``-inf``, so its weight is exactly zero at every step.

    Notes
    -----
    The auxiliary loss ``load_balance`` is the squared coefficient of variation
    over experts of each expert's mean gate weight (over batch, time and the
    tasks allowed to use it), as in Shazeer et al. 2017 (arXiv:1701.06538);
    it is zero when all experts carry equal load.

    Memory grows as ``n_batch * (n_tasks + 1) * expert_width * n_times``
    (the per-task mixtures); with one task per segment keep ``expert_width``
    small or prefer :class:`MH`.
    """

    def __init__(
        self,
        in_width: int,
        task_of_seg: np.ndarray | Sequence[int],
        n_experts: int = 6,
        expert_width: int = 64,
        tower_width: int = 64,
        spike_prior: float = 0.01,
        gate_mask: Tensor | None = None,
    ) -> None:
        super().__init__(task_of_seg)
        for name, value in (
            ("in_width", in_width),
            ("n_experts", n_experts),
            ("expert_width", expert_width),
            ("tower_width", tower_width),
        ):
            check_positive(value, name, integer=True)
        self.n_experts = n_experts
        self.expert_width = expert_width
        n_towers = self.n_tasks + 1

        # experts as one 1 x 1 convolution, then a grouped one (one group each)
        self.expert_in = nn.Conv1d(in_width, n_experts * expert_width, 1)
        self.expert_out = nn.Conv1d(
            n_experts * expert_width, n_experts * expert_width, 1, groups=n_experts
        )
        _he_(self.expert_in.weight.data, in_width)
        _he_(self.expert_out.weight.data, expert_width)
        self.gate = nn.Conv1d(in_width, n_towers * n_experts, 1)
        if gate_mask is None:
            gate_mask = torch.ones(n_towers, n_experts, dtype=torch.bool)
        check_type(gate_mask, torch.Tensor, "gate_mask")
        if gate_mask.shape != (n_towers, n_experts) or gate_mask.dtype != torch.bool:
            raise ValueError(
                f"gate_mask must be a bool tensor of shape (n_tasks + 1, "
                f"n_experts) = ({n_towers}, {n_experts}), got {gate_mask.dtype} "
                f"of shape {tuple(gate_mask.shape)}"
            )
        if not gate_mask.any(dim=1).all():
            empty = torch.nonzero(~gate_mask.any(dim=1)).flatten().tolist()
            raise ValueError(
                f"gate_mask must allow at least one expert for every task, got "
                f"none for task(s) {empty}"
            )
        # persistent: a saved model keeps its expert-task assignment
        self.register_buffer("gate_mask", gate_mask.clone())
        self.towers = _TaskTowers(
            self._task_of_seg,
            self.n_tasks,
            expert_width,
            tower_width,
            False,
            spike_prior,
        )

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        in_width: int,
        generator: torch.Generator | None = None,
    ) -> MMoE:
        """Build from a :class:`ModelConfig` (``generator`` is unused)."""
        return cls(
            in_width,
            config.tasks,
            config.n_experts,
            config.expert_width,
            config.tower_width,
            config.spike_prior,
        )

    def experts(self, features: Tensor) -> Tensor:
        """Outputs of all experts.

        Parameters
        ----------
        features : Tensor, shape (n_batch, in_width, n_times)

        Returns
        -------
        experts : Tensor, shape (n_batch, n_experts, expert_width, n_times)
        """
        n_batch, _, n_times = features.shape
        h = self.expert_out(F.gelu(self.expert_in(features)))
        # (n_batch, n_experts * expert_width, n_times) -> split the experts
        return h.reshape(n_batch, self.n_experts, self.expert_width, n_times)

    def gates(self, features: Tensor) -> Tensor:
        """Gate weights of every task at every time step.

        Parameters
        ----------
        features : Tensor, shape (n_batch, in_width, n_times)

        Returns
        -------
        gates : Tensor, shape (n_batch, n_tasks + 1, n_experts, n_times)
            Softmax over experts; exactly zero where :attr:`gate_mask` is
            False.
        """
        n_batch, _, n_times = features.shape
        logits = self.gate(features)  # (n_batch, n_towers * n_experts, n_times)
        # -> (n_batch, n_towers, n_experts, n_times)
        logits = logits.reshape(n_batch, self.n_tasks + 1, self.n_experts, n_times)
        if not bool(self.gate_mask.all()):
            logits = logits.masked_fill(~self.gate_mask[:, :, None], float("-inf"))
        return torch.softmax(logits, dim=2)

    def load_balance(self, gates: Tensor) -> Tensor:
        """Squared coefficient of variation of the experts' mean gate weights.

        Parameters
        ----------
        gates : Tensor, shape (n_batch, n_tasks + 1, n_experts, n_times)

        Returns
        -------
        loss : Tensor, shape ()
            Dimensionless, >= 0.
        """
        n_allowed = self.gate_mask.sum(dim=0).to(gates.dtype)  # (n_experts,)
        load = gates.sum(dim=(0, 1, 3)) / (n_allowed * gates.shape[0] * gates.shape[3])
        return load.var(unbiased=False) / load.mean().square()

    def forward(self, features: Tensor) -> HeadOutput:
        """Predict from backbone features.

        Parameters
        ----------
        features : Tensor, shape (n_batch, in_width, n_times)

        Returns
        -------
        out : HeadOutput
            ``vmem`` (n_batch, n_seg, n_times) normalised, ``spike_logit``
            (n_batch, n_times), ``aux_losses`` with ``"load_balance"``,
            ``gates`` (n_batch, n_tasks + 1, n_experts, n_times).
        """
        experts = self.experts(features)
        gates = self.gates(features)
        # (n_batch, n_towers, expert_width, n_times): each task's mixture
        mixed = torch.einsum("bket,bect->bkct", gates, experts)
        vmem, logit = self._split(self.towers(mixed))
        return HeadOutput(
            vmem, logit, {"load_balance": self.load_balance(gates)}, gates
        )


@register_model("mmoeex")
class MMoEEx(MMoE):
    """MMoE with exclusive or excluded experts (Aoki et al. 2021, arXiv:2106.10595).

    ``floor(exclusivity * n_experts)`` experts, drawn at random, are each tied
    to one random task (the spike task included): with ``"exclusive"`` only
    that task may use the expert, with ``"exclusion"`` every task but that one.
    The mask is structural (gate logits set to ``-inf``), so a forbidden gate
    weight is exactly zero at every training step, not only at
    initialisation.

    Parameters
    ----------
    in_width : int
        Features of the backbone.
    task_of_seg : array-like of int, shape (n_seg,)
        Task of every segment.
    n_experts : int
        Number of experts.
    expert_width : int
        Hidden and output units of each expert.
    tower_width : int
        Hidden units of each tower.
    spike_prior : float
        Initial spike probability per bin (bias of the spike logit).
    exclusivity : float
        Fraction of the experts tied to a task (0 to 1); at least one expert
        must stay shared.
    exclusion : str
        ``"exclusive"`` or ``"exclusion"``.
    generator : torch.Generator | None
        Random source of the assignment (``None``: a new generator seeded
        with 0). The global RNG is never used.

    Attributes
    ----------
    expert_task : Tensor of int64, shape (n_experts,)
        Task each expert is tied to, -1 for shared experts.

    Notes
    -----
    Aoki et al. also train with a MAML-like two-step task balancing; that is a
    training choice, not part of the architecture, and is not done here.
    """

    def __init__(
        self,
        in_width: int,
        task_of_seg: np.ndarray | Sequence[int],
        n_experts: int = 6,
        expert_width: int = 64,
        tower_width: int = 64,
        spike_prior: float = 0.01,
        exclusivity: float = 0.5,
        exclusion: str = "exclusive",
        generator: torch.Generator | None = None,
    ) -> None:
        check_option(exclusion, ("exclusive", "exclusion"), "exclusion")
        check_positive(n_experts, "n_experts", integer=True)
        check_positive(exclusivity, "exclusivity", strict=False)
        if generator is None:
            generator = torch.Generator().manual_seed(0)
        check_type(generator, torch.Generator, "generator")
        n_tied = int(math.floor(exclusivity * n_experts + 1e-9))
        if n_tied >= n_experts:
            raise ValueError(
                f"exclusivity must leave at least one shared expert, got "
                f"exclusivity={exclusivity!r} with {n_experts} experts "
                f"({n_tied} tied); use exclusivity < 1"
            )
        n_towers = int(np.max(task_of_seg)) + 2

        # which experts are tied, and to which task
        experts = torch.randperm(n_experts, generator=generator)[:n_tied]
        tasks = torch.randint(n_towers, (n_tied,), generator=generator)
        expert_task = torch.full((n_experts,), -1, dtype=torch.int64)
        expert_task[experts] = tasks
        mask = torch.ones(n_towers, n_experts, dtype=torch.bool)
        if exclusion == "exclusive":
            mask[:, experts] = False
            mask[tasks, experts] = True
        else:
            mask[tasks, experts] = False

        super().__init__(
            in_width,
            task_of_seg,
            n_experts,
            expert_width,
            tower_width,
            spike_prior,
            gate_mask=mask,
        )
        self.exclusion = exclusion
        self.register_buffer("expert_task", expert_task)

    @classmethod
    def from_config(
        cls,
        config: ModelConfig,
        in_width: int,
        generator: torch.Generator | None = None,
    ) -> MMoEEx:
        """Build from a :class:`ModelConfig`.

        ``generator=None`` uses a new generator seeded with
        ``config.exclusivity_seed``.
        """
        if generator is None:
            generator = torch.Generator().manual_seed(config.exclusivity_seed)
        return cls(
            in_width,
            config.tasks,
            config.n_experts,
            config.expert_width,
            config.tower_width,
            config.spike_prior,
            config.exclusivity,
            config.exclusion,
            generator,
        )
