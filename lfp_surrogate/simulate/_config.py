"""Configuration of a full NEURON simulation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .._validation import check_multiple, check_option, check_positive, check_type


@dataclass(frozen=True)
class SimulationConfig:
    """Settings of a ground-truth NEURON run; every field in its unit.

    Parameters
    ----------
    cell : str
        Catalogue name of the cell.
    duration : float
        Recorded duration (ms), after the warm-up.
    dt : float
        Integration time step (ms) of NEURON's backward Euler.
    interval : float
        Output interval (ms), an integer multiple of ``dt``.
    reduce : str
        ``"mean"`` stores the boxcar mean of each output interval (bin k is
        the mean over the steps in ``(k * interval, (k + 1) * interval]``);
        ``"sample"`` stores the value at the end of each interval.
    warmup : float
        Time (ms) simulated without input before t = 0, so that the first bins
        start at rest.
    warmup_dt : float
        Time step (ms) of the warm-up. The backward-Euler rest state does not
        depend on the step, so a coarse step reaches it cheaply.
    chunk : float
        Simulated time (ms) between reductions; bounds memory.
    v_init : float
        Initial membrane potential (mV) before the warm-up.
    record_imem : bool
        Store the transmembrane currents as well as the voltages.
    spike_threshold : float
        Somatic voltage (mV) whose upward crossing counts as a spike.
    """

    cell: str = "l5_ttpc1"
    duration: float = 1000.0
    dt: float = 1.0 / 32.0
    interval: float = 1.0
    reduce: str = "mean"
    warmup: float = 1000.0
    warmup_dt: float = 0.5
    chunk: float = 100.0
    v_init: float = -75.0
    record_imem: bool = True
    spike_threshold: float = -20.0

    def __post_init__(self):
        check_type(self.cell, str, "cell")
        check_positive(self.duration, "duration")
        check_positive(self.dt, "dt")
        check_positive(self.interval, "interval")
        check_positive(self.warmup, "warmup", strict=False)
        check_positive(self.warmup_dt, "warmup_dt")
        check_positive(self.chunk, "chunk")
        check_option(self.reduce, ("mean", "sample"), "reduce")
        check_multiple(self.interval, self.dt, "interval", "dt")
        check_multiple(self.duration, self.interval, "duration", "interval")
        check_multiple(self.chunk, self.interval, "chunk", "interval")
        if self.warmup > 0:
            check_multiple(self.warmup, self.warmup_dt, "warmup", "warmup_dt")

    @property
    def n_times(self) -> int:
        """Number of output bins."""
        return int(round(self.duration / self.interval))

    @property
    def steps_per_bin(self) -> int:
        """Integration steps per output bin."""
        return int(round(self.interval / self.dt))

    def to_dict(self) -> dict:
        """Plain dict of the fields."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> SimulationConfig:
        """Inverse of :meth:`to_dict`; unknown keys are an error."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise ValueError(
                f"unknown simulation setting(s) {sorted(unknown)}; known: "
                f"{sorted(names)}"
            )
        return cls(**d)

    def replace(self, **changes) -> SimulationConfig:
        """A copy with some fields changed."""
        return dataclasses.replace(self, **changes)
