"""Population signals from surrogates (batched) and from NEURON (reference)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from .._logging import logger, progress, use_log_level
from .._validation import check_device, check_positive, check_type
from ._forward import PopulationForward
from ._population import Population, population_inputs


@dataclass
class PopulationSignals:
    """Summed signals of a population.

    Attributes
    ----------
    signals : dict of str to ndarray
        ``lfp/<label>`` (n_contacts, n_times) mV, ``csd/<label>``
        (n_contacts, n_times) nA/µm³, ``dipole`` (3, n_times) nA·µm in the
        population frame, ``eeg/<head>`` (n_electrodes, n_times) mV,
        ``meg/<model>`` (n_sensors, 3, n_times) fT; float64.
    t : ndarray, shape (n_times,)
        Bin centres (ms).
    units : dict of str to str
    n_cells : int
    wall_time : float
        Wall-clock time of the whole computation (s), inputs excluded.
    source : str
        ``"surrogate"`` or ``"neuron"``.
    imem : dict of int to ndarray | None
        Each cell's currents (n_seg, n_times), nA, when asked for.
    """

    signals: dict
    t: np.ndarray
    units: dict
    n_cells: int
    wall_time: float
    source: str
    imem: dict | None = field(default=None, repr=False)

    def __getitem__(self, key: str) -> np.ndarray:
        if key not in self.signals:
            raise KeyError(f"no signal {key!r}; available: {sorted(self.signals)}")
        return self.signals[key]

    def keys(self) -> list[str]:
        """The signal keys."""
        return list(self.signals)

    @property
    def throughput(self) -> float:
        """Cells × simulated seconds per wall-clock second."""
        duration_s = self.t.size * (self.t[1] - self.t[0] if self.t.size > 1 else 1.0)
        return self.n_cells * duration_s * 1e-3 / max(self.wall_time, 1e-12)


def _load_types(population: Population) -> dict:
    from ..train import load_model

    return {t: load_model(t) for t in population.types}


def _statistics(saved, statistics):
    """The input statistics of a type: given, or the model's training ones."""
    from ..inputs import InputStatistics

    if statistics is not None:
        check_type(statistics, InputStatistics, "statistics")
        return statistics
    stored = saved.card.get("training", {}).get("input_statistics")
    return InputStatistics.from_dict(stored) if stored else InputStatistics()


def _prepare(population, duration, forward, inputs, statistics, saved):
    """Geometries, forward model, statistics and inputs of a population run."""
    from ..forward import ForwardConfig

    check_type(population, Population, "population")
    check_positive(duration, "duration")
    geometries = {t: s.geometry for t, s in saved.items()}
    if forward is None or isinstance(forward, ForwardConfig):
        forward = PopulationForward(population, geometries, forward)
    check_type(forward, PopulationForward, "forward", "a PopulationForward")
    if forward.population is not population and (
        forward.population.to_dict() != population.to_dict()
    ):
        raise ValueError(
            "forward was built for another population; build it for this one"
        )
    stats = {t: _statistics(s, statistics) for t, s in saved.items()}
    if inputs is None:
        inputs = [None] * population.n_cells
        for t in population.types:
            drawn = population_inputs(population, geometries, duration, stats[t])
            for i in population.cells_of(t):
                inputs[i] = drawn[i]
    inputs = list(inputs)
    if len(inputs) != population.n_cells:
        raise ValueError(
            f"inputs must hold one SpikeTrains per cell ({population.n_cells}), "
            f"got {len(inputs)}"
        )
    for i, spikes in enumerate(inputs):
        t = population.cell_types[i]
        if (
            spikes.n_seg != geometries[t].n_seg
            or abs(spikes.duration - duration) > 1e-9
        ):
            raise ValueError(
                f"inputs[{i}] is for {spikes.n_seg} segments and "
                f"{spikes.duration:g} ms; cell {i} ({t}) has "
                f"{geometries[t].n_seg} segments and duration is {duration:g} ms"
            )
    return forward, stats, inputs


def _add(total: dict, part: dict) -> None:
    for key, value in part.items():
        value = np.asarray(value, dtype=np.float64)
        total[key] = value if key not in total else total[key] + value


def predict_population(
    population: Population,
    duration: float,
    forward=None,
    *,
    inputs=None,
    statistics=None,
    batch_size: int = 64,
    chunk: int = 1000,
    device: str = "cpu",
    keep_imem: bool = False,
    verbose=None,
) -> PopulationSignals:
    """Signals of a population of surrogate cells, predicted in batches.

    For each surrogate type, the type's cells go through the network in
    batches of ``batch_size`` (one call of
    :func:`~lfp_surrogate.models.predict_stream` on their stacked input
    counts, shape (n_batch, 2, n_seg, n_times)); their currents follow from
    the predicted voltages through the model's exact ``imem_operator``, and
    each cell's forward matrices (its own position and rotation) turn them
    into the population's summed LFP, CSD, dipole, EEG and MEG.

    Parameters
    ----------
    population : Population
    duration : float
        Duration (ms), a whole number of the models' bins.
    forward : PopulationForward | ForwardConfig | None
        The forward matrices (built here from a configuration; ``None``:
        the dipole only).
    inputs : sequence of SpikeTrains | None
        One input per cell; default drawn from ``population.seed`` (cell i
        from child i of ``SeedSequence(seed)``).
    statistics : InputStatistics | None
        Statistics of the drawn inputs; default each model's training
        statistics (from its card).
    batch_size : int
        Cells per network call.
    chunk : int
        Bins per streaming step (memory does not grow with the duration).
    device : str
        Torch device of the network and the forward products.
    keep_imem : bool
        Also return each cell's predicted currents.
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    signals : PopulationSignals
        ``source="surrogate"``; ``wall_time`` covers binning, prediction,
        currents and forward (not loading the models or building the
        matrices).
    """
    import torch

    from ..models import predict_stream

    with use_log_level(verbose):
        check_positive(batch_size, "batch_size", integer=True)
        check_device(device)
        saved = _load_types(population)
        forward, _, inputs = _prepare(
            population, duration, forward, inputs, statistics, saved
        )
        logger.info(
            "Predicting a population of %d cells (%s) for %g ms in batches of %d on %s",
            population.n_cells,
            ", ".join(population.types),
            duration,
            batch_size,
            device,
        )
        t0 = time.perf_counter()
        total, kept = {}, {}
        n_times = None
        batches = [
            (t, idx[k : k + batch_size])
            for t in population.types
            for idx in [population.cells_of(t)]
            for k in range(0, idx.size, batch_size)
        ]
        for t, batch in progress(batches, desc="population", unit="batch"):
            model = saved[t].model.to(device).eval()
            interval = float(model.config.interval)
            counts = np.stack([inputs[i].binned(interval) for i in batch])
            counts = torch.as_tensor(counts, device=device)  # (n_b, 2, n_seg, n_t)
            vmem = predict_stream(model, counts, chunk, verbose="WARNING").vmem
            imem = saved[t].imem_operator.apply(vmem)  # (n_b, n_seg, n_times)
            part = forward.apply(t, batch, imem)
            _add(total, {k: v.detach().cpu().numpy() for k, v in part.items()})
            n_times = imem.shape[-1]
            if keep_imem:
                for j, i in enumerate(batch):
                    kept[int(i)] = imem[j].detach().cpu().numpy()
        wall = time.perf_counter() - t0
        t_bins = (np.arange(n_times) + 0.5) * interval
        logger.info(
            "Population predicted in %.2f s: %d cells x %g ms (%.1f cell-seconds "
            "per second)",
            wall,
            population.n_cells,
            duration,
            population.n_cells * duration * 1e-3 / max(wall, 1e-12),
        )
        return PopulationSignals(
            total,
            t_bins,
            dict(forward.units),
            population.n_cells,
            wall,
            "surrogate",
            kept if keep_imem else None,
        )


def simulate_population(
    population: Population,
    duration: float,
    forward=None,
    *,
    inputs=None,
    statistics=None,
    keep_imem: bool = False,
    verbose=None,
) -> PopulationSignals:
    """The NEURON reference: one full simulation per cell, signals summed.

    Each cell of the population is simulated on its own (NEURON, the
    detailed cell its surrogate was trained for, same input and synaptic
    weights, 1-ms bin means of ``i_membrane_`` after the usual warm-up),
    and the same forward matrices as :func:`predict_population` are applied
    to NEURON's currents. Cells do not interact (no synapses between them,
    no ephaptic coupling), so this is the exact population signal that the
    surrogates approximate.

    Parameters
    ----------
    population : Population
    duration : float
        Duration (ms).
    forward : PopulationForward | ForwardConfig | None
        As for :func:`predict_population` (pass the same object to compare).
    inputs : sequence of SpikeTrains | None
        One per cell; default as :func:`predict_population`.
    statistics : InputStatistics | None
        As for :func:`predict_population` (they also give the weights).
    keep_imem : bool
        Also return each cell's currents.
    verbose : bool | str | int | None
        Logging level for this call.

    Returns
    -------
    signals : PopulationSignals
        ``source="neuron"``; ``wall_time`` covers the simulations (warm-up
        included) and the forward products.

    Raises
    ------
    ValueError
        If a surrogate's cell differs from the catalogue cell of that name
        (content hash).
    """
    from ..simulate import SimulationConfig, Simulator

    with use_log_level(verbose):
        saved = _load_types(population)
        forward, stats, inputs = _prepare(
            population, duration, forward, inputs, statistics, saved
        )
        logger.info(
            "Simulating a population of %d cells with NEURON for %g ms",
            population.n_cells,
            duration,
        )
        t0 = time.perf_counter()
        total, kept = {}, {}
        interval = 1.0
        for t in population.types:
            geometry = saved[t].geometry
            interval = float(saved[t].model.config.interval)
            sim = Simulator(
                SimulationConfig(
                    cell=geometry.name,
                    duration=duration,
                    interval=interval,
                    record_imem=True,
                )
            )
            if sim.geometry.cell_hash != geometry.cell_hash:
                raise ValueError(
                    f"the surrogate {t!r} was trained for cell {geometry.name!r} "
                    f"with hash {geometry.cell_hash}, but the catalogue cell of "
                    f"that name has hash {sim.geometry.cell_hash}; use the "
                    f"package version that trained it"
                )
            for i in progress(population.cells_of(t), desc=f"NEURON {t}"):
                result = sim.run(inputs[i], stats[t])
                _add(total, forward.apply(t, [i], result.imem[None]))
                if keep_imem:
                    kept[int(i)] = result.imem
            n_times = result.imem.shape[-1]
        wall = time.perf_counter() - t0
        logger.info(
            "Population simulated in %.2f s: %d cells x %g ms (%.2f cell-seconds "
            "per second)",
            wall,
            population.n_cells,
            duration,
            population.n_cells * duration * 1e-3 / max(wall, 1e-12),
        )
        return PopulationSignals(
            total,
            (np.arange(n_times) + 0.5) * interval,
            dict(forward.units),
            population.n_cells,
            wall,
            "neuron",
            kept if keep_imem else None,
        )
