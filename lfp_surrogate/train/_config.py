"""Configuration of surrogate training."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._validation import check_option, check_positive, check_type


@dataclass(frozen=True)
class TrainConfig:
    """Training settings; every field in its unit.

    Parameters
    ----------
    window : int
        Bins per training window. The first ``receptive_field - 1`` bins of
        each window have no history and are left out of every loss.
    batch_size : int
        Windows per optimisation step.
    lr : float
        Adam learning rate.
    weight_decay : float
        AdamW weight decay.
    max_epochs : int
        Upper bound on passes over the training windows.
    max_minutes : float
        Wall-clock budget of the fit (minutes); 0 for none.
    patience : int
        Early stopping: epochs without improvement of the validation loss.
    val_fraction : float
        Fraction of the simulations held out for validation (whole
        simulations, never windows of a training simulation).
    spike_boost : float
        Sampling weight of windows holding a somatic spike, relative to 1
        for the others (data balancing around spikes).
    w_vmem, w_imem, w_dipole, w_lfp, w_spike, w_aux : float
        Loss weights: voltage MSE in normalised units; MSE of the currents
        derived from the voltages, of the dipole and of the LFP on the
        training probe, each normalised by the target's per-channel standard
        deviation; binary cross-entropy of the somatic spike; auxiliary
        (expert balance) losses.
    lfp_probe : str
        Probe placement of the LFP loss, ``'NAME position=X,Y,Z ...'`` (the
        evaluation placement is different and never seen by the loss).
    seed : int
        Seed of weights, sampling and dropout.
    accelerator : str
        ``"cpu"``, ``"gpu"`` (``"cuda"``) or ``"auto"``.
    devices : int | str
        Devices per node for Lightning: a count, ``"auto"``, or device
        indices (``"0,1"``). On the CPU a count above 1 runs that many
        processes.
    num_nodes : int
        Machines taking part in distributed training (each runs ``devices``
        processes; Lightning reads the cluster from SLURM or the
        ``MASTER_ADDR``/``NODE_RANK`` environment variables).
    strategy : str
        Lightning strategy: ``"auto"``, ``"ddp"`` (distributed data
        parallel, one process per device), ``"ddp_fork"`` (CPU, Linux) or
        ``"ddp_find_unused_parameters_true"``. With DDP each process draws
        its share of the training windows, so ``batch_size`` is per process.
    num_workers : int
        Data-loader worker processes.
    """

    window: int = 400
    batch_size: int = 8
    lr: float = 2e-3
    weight_decay: float = 1e-4
    max_epochs: int = 50
    max_minutes: float = 0.0
    patience: int = 5
    val_fraction: float = 0.1
    spike_boost: float = 4.0
    w_vmem: float = 1.0
    w_imem: float = 0.5
    w_dipole: float = 0.5
    w_lfp: float = 0.5
    w_spike: float = 1.0
    w_aux: float = 0.01
    lfp_probe: str = "Laminar-16-100 position=-80,400,0"
    seed: int = 0
    accelerator: str = "cpu"
    devices: int | str = 1
    num_nodes: int = 1
    strategy: str = "auto"
    num_workers: int = 0

    def __post_init__(self):
        for name in ("window", "batch_size", "max_epochs", "patience"):
            check_positive(getattr(self, name), name, integer=True)
        for name in ("lr", "spike_boost"):
            check_positive(getattr(self, name), name)
        for name in (
            "weight_decay",
            "max_minutes",
            "w_vmem",
            "w_imem",
            "w_dipole",
            "w_lfp",
            "w_spike",
            "w_aux",
        ):
            check_positive(getattr(self, name), name, strict=False)
        check_positive(self.num_workers, "num_workers", integer=True, strict=False)
        check_positive(self.seed, "seed", integer=True, strict=False)
        if not 0.0 < self.val_fraction < 1.0:
            raise ValueError(f"val_fraction must be in (0, 1), got {self.val_fraction}")
        check_option(self.accelerator, ("cpu", "gpu", "cuda", "auto"), "accelerator")
        check_positive(self.num_nodes, "num_nodes", integer=True)
        check_type(self.strategy, str, "strategy")
        if self.strategy.startswith("ddp_spawn"):
            raise NotImplementedError(
                f"strategy {self.strategy!r} pickles the training module, which "
                f"this package builds in a closure; use 'ddp' (or 'ddp_fork' on "
                f"the CPU)"
            )
        check_type(self.devices, (int, str), "devices", "an int or a str")
        if isinstance(self.devices, int) and not isinstance(self.devices, bool):
            check_positive(self.devices, "devices", integer=True)
        elif isinstance(self.devices, bool):
            raise TypeError(f"devices must be an int or a str, got {self.devices!r}")

    def to_dict(self) -> dict:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown training setting(s) {sorted(unknown)}; known: {sorted(names)}"
            )
        return cls(**d)

    def replace(self, **changes) -> TrainConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
