"""Configuration of a simulated dataset."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from .._io import atomic_path
from .._validation import check_positive, check_type
from ..inputs import InputStatistics
from ..simulate import SimulationConfig

#: File name of a dataset's configuration inside its folder.
CONFIG_NAME = "dataset.yaml"


@dataclass(frozen=True)
class DatasetConfig:
    """Everything that determines a dataset's content.

    Parameters
    ----------
    simulation : SimulationConfig
        Cell and run settings (duration in ms, dt, output interval, ...).
    inputs : InputStatistics
        Statistics of the synaptic input.
    n_sims : int
        Number of simulations.
    seed : int
        Root seed; simulation i draws its input from child i of
        ``numpy.random.SeedSequence(seed)``.
    sims_per_shard : int
        Simulations per HDF5 shard.
    forward : dict
        Ground-truth extracellular signals to compute, as the plain-dict form
        of a forward configuration (empty: none).
    """

    simulation: SimulationConfig
    inputs: InputStatistics = field(default_factory=InputStatistics)
    n_sims: int = 1
    seed: int = 0
    sims_per_shard: int = 1
    forward: dict = field(default_factory=dict)

    def __post_init__(self):
        check_type(self.simulation, SimulationConfig, "simulation")
        check_type(self.inputs, InputStatistics, "inputs")
        check_positive(self.n_sims, "n_sims", integer=True)
        check_positive(self.seed, "seed", integer=True, strict=False)
        check_positive(self.sims_per_shard, "sims_per_shard", integer=True)

    @property
    def n_shards(self) -> int:
        """Number of shards."""
        return -(-self.n_sims // self.sims_per_shard)

    def shard_sims(self, shard: int) -> range:
        """Global indices of the simulations in ``shard``."""
        start = shard * self.sims_per_shard
        return range(start, min(self.n_sims, start + self.sims_per_shard))

    def to_dict(self) -> dict:
        """Plain nested dict (YAML-safe)."""
        return dict(
            simulation=self.simulation.to_dict(),
            inputs=self.inputs.to_dict(),
            n_sims=self.n_sims,
            seed=self.seed,
            sims_per_shard=self.sims_per_shard,
            forward=dict(self.forward),
        )

    @classmethod
    def from_dict(cls, d: dict, source: str = "configuration") -> DatasetConfig:
        """Inverse of :meth:`to_dict`, with errors naming ``source``."""
        try:
            return cls(
                simulation=SimulationConfig.from_dict(d["simulation"]),
                inputs=InputStatistics.from_dict(d.get("inputs", {})),
                n_sims=d["n_sims"],
                seed=d["seed"],
                sims_per_shard=d.get("sims_per_shard", 1),
                forward=d.get("forward") or {},
            )
        except KeyError as err:
            raise ValueError(f"{source}: missing field {err.args[0]!r}") from None

    def save(self, folder) -> Path:
        """Write ``folder/dataset.yaml`` atomically, with package versions."""
        path = Path(folder) / CONFIG_NAME
        d = self.to_dict()
        d["versions"] = package_versions()
        with atomic_path(path) as tmp:
            tmp.write_text(yaml.safe_dump(d, sort_keys=False))
        return path

    @classmethod
    def load(cls, folder) -> DatasetConfig:
        """Read ``folder/dataset.yaml``."""
        path = Path(folder) / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(
                f"{folder} is not a dataset folder: it has no {CONFIG_NAME}"
            )
        d = yaml.safe_load(path.read_text())
        if not isinstance(d, dict):
            raise ValueError(f"{path}: expected a mapping, got {type(d).__name__}")
        d.pop("versions", None)
        return cls.from_dict(d, source=str(path))


def package_versions() -> dict:
    """Versions of the packages that determine simulated data."""
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("lfp_surrogate", "neuron", "numpy", "LFPykit", "MEArec", "h5py"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out
