"""Populations: layout, per-cell forward maps, batched surrogates, NEURON sum."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import requires_neuron

from lfp_surrogate.data import DatasetConfig, generate_dataset
from lfp_surrogate.forward import (
    EEGOperator,
    ForwardConfig,
    HeadPlacement,
    LFPOperator,
    ProbePlacement,
    load_head_model,
    rotation_matrix,
)
from lfp_surrogate.forward._heads import cell_rotation_in_head
from lfp_surrogate.inputs import InputStatistics
from lfp_surrogate.population import (
    Population,
    PopulationForward,
    column_layout,
    population_inputs,
    predict_population,
    simulate_population,
)
from lfp_surrogate.simulate import SimulationConfig
from lfp_surrogate.train import TrainConfig, load_model, train

STATS = InputStatistics(exc_rate=6.0, inh_rate=2.0)
TINY = dict(widths=16, dilations=(1, 2, 4), tower_width=8, expert_width=8)
N_CELLS, DURATION = 10, 300.0
HEAD = "four_sphere_lfpy_default"
# the pial surface is y = 0: somata 700-800 µm deep keep the 480-µm cell inside
DEPTH = (700.0, 800.0)


def _forward_config(**changes) -> ForwardConfig:
    base = dict(
        probes=[ProbePlacement("Laminar-16-100", position=(0.0, -600.0, 40.0))],
        inside="ignore",  # random cells may reach a contact
        heads=[HEAD],
        head_placement=HeadPlacement(direction=(0.0, 0.3, 1.0), tilt=10.0),
        meg=["spherical"],
    )
    base.update(changes)
    return ForwardConfig(**base)


@pytest.mark.parametrize("seed", [0, 7])
def test_column_layout_density_and_bounds(seed):
    n = 400
    layout = column_layout(n, depth=DEPTH, density=2.0e5, seed=seed)
    # n = density * pi r^2 h, with 1 mm^3 = 1e9 um^3
    volume_mm3 = np.pi * layout.radius**2 * (DEPTH[1] - DEPTH[0]) * 1e-9
    np.testing.assert_allclose(
        n / volume_mm3, 2.0e5, rtol=1e-12, atol=0, err_msg="stated density"
    )
    r = np.hypot(layout.positions[:, 0], layout.positions[:, 2])
    assert r.max() <= layout.radius and np.all(-layout.positions[:, 1] >= DEPTH[0])
    assert np.all(-layout.positions[:, 1] <= DEPTH[1])
    # uniform over the disc: half the cells inside r / sqrt(2), within 4 sigma
    inner = np.mean(r < layout.radius / np.sqrt(2))
    assert abs(inner - 0.5) < 4 * np.sqrt(0.25 / n), f"fraction inside: {inner}"
    np.testing.assert_array_equal(layout.rotations[:, [0, 2]], 0.0)
    again = column_layout(n, depth=DEPTH, radius=layout.radius, seed=seed)
    np.testing.assert_allclose(
        again.density, 2.0e5, rtol=1e-12, atol=0, err_msg="density from radius"
    )
    np.testing.assert_array_equal(again.positions, layout.positions)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        (dict(depth=DEPTH), ValueError, "give exactly one of radius"),
        (dict(depth=DEPTH, radius=1.0, density=1.0), ValueError, "exactly one"),
        (dict(depth=(800.0, 700.0), radius=50.0), ValueError, "0 <= shallow < deep"),
        (dict(depth=DEPTH, density=-1.0), ValueError, "density must be finite"),
    ],
)
def test_column_layout_refuses_bad_settings(kwargs, error, match):
    with pytest.raises(error, match=match):
        column_layout(5, **kwargs)


def test_population_checks_its_data():
    with pytest.raises(TypeError, match="one model name or folder per cell"):
        Population("m", np.zeros((1, 3)), np.zeros((1, 3)))
    with pytest.raises(ValueError, match=r"positions must have shape \(2, 3\)"):
        Population(["m", "m"], np.zeros((3, 3)), np.zeros((2, 3)))
    pop = Population(["a", "b", "a"], np.ones((3, 3)), np.zeros((3, 3)), seed=4)
    assert pop.types == ["a", "b"] and pop.cells_of("a").tolist() == [0, 2]
    assert Population.from_dict(pop.to_dict()).to_dict() == pop.to_dict()
    with pytest.raises(ValueError, match="unknown key"):
        Population.from_dict({**pop.to_dict(), "density": 1})


# -- with the small cell and a tiny surrogate trained here ---------------------


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    if not _has_neuron():
        pytest.skip("NEURON not installed")
    data = tmp_path_factory.mktemp("pop") / "data"
    generate_dataset(
        data,
        DatasetConfig(
            SimulationConfig(cell="ball_and_stick", duration=600.0),
            inputs=STATS,
            n_sims=4,
            seed=3,
        ),
        n_jobs=1,
        verbose=False,
    )
    out = tmp_path_factory.mktemp("pop") / "model"
    cfg = TrainConfig(window=100, batch_size=4, max_epochs=2, val_fraction=0.25)
    train(data, out, arch="mh", model_overrides=TINY, config=cfg, verbose=False)
    return out


def _has_neuron() -> bool:
    try:
        import neuron  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.fixture(scope="module")
def population(tiny_model):
    layout = column_layout(N_CELLS, depth=DEPTH, density=1.0e5, seed=5)
    # two surrogate types (the same network under two names): one batch each
    types = [str(tiny_model), str(tiny_model / "model.json")] * (N_CELLS // 2)
    return Population(types, layout.positions, layout.rotations, seed=9)


@pytest.fixture(scope="module")
def setup(population, tiny_model):
    geometry = load_model(tiny_model).geometry
    geometries = {t: geometry for t in population.types}
    forward = PopulationForward(population, geometries, _forward_config())
    inputs = population_inputs(population, geometries, DURATION, STATS)
    return geometry, forward, inputs


@pytest.fixture(scope="module")
def neuron_run(population, setup):
    _, forward, inputs = setup
    return simulate_population(
        population, DURATION, forward, inputs=inputs, statistics=STATS, keep_imem=True
    )


def _dipole_oracle(population, geometry, imem: dict) -> np.ndarray:
    """Sum over cells and segments of imem times the placed segment midpoint."""
    total = 0.0
    for i in range(population.n_cells):
        rot = rotation_matrix(population.rotations[i])
        mid = geometry.mid @ rot.T + population.positions[i]  # (n_seg, 3)
        total = total + mid.T @ imem[i]
    return total


@requires_neuron
@pytest.mark.neuron
def test_neuron_population_is_the_sum_of_independent_cells(
    population, setup, neuron_run
):
    from lfpykit.eegmegcalc import FourSphereVolumeConductor

    geometry, forward, _ = setup
    imem = neuron_run.imem
    assert sorted(imem) == list(range(N_CELLS))
    n_times = int(DURATION)
    assert neuron_run["dipole"].shape == (3, n_times)
    assert neuron_run["lfp/Laminar-16-100"].shape == (16, n_times)
    assert neuron_run["csd/Laminar-16-100"].shape == (16, n_times)
    assert neuron_run["meg/spherical"].shape[1:] == (3, n_times)

    # dipole: sum of imem x placed midpoints (float64 physics; sum imem ~ 0)
    oracle = _dipole_oracle(population, geometry, imem)
    scale = np.abs(oracle).max()
    np.testing.assert_allclose(
        neuron_run["dipole"], oracle, rtol=1e-9, atol=1e-9 * scale,
        err_msg="population dipole vs placed midpoints",
    )  # fmt: skip

    # LFP: each cell's own single-cell operator with its placement, summed
    lfp = 0.0
    for i in range(N_CELLS):
        placement = ProbePlacement(
            "Laminar-16-100",
            position=np.subtract((0.0, -600.0, 40.0), population.positions[i]),
            cell_position=population.positions[i],
            cell_rotation=population.rotations[i],
        )
        op = LFPOperator(geometry, placement, inside="ignore")
        lfp = lfp + op.apply(imem[i])
    np.testing.assert_allclose(
        neuron_run["lfp/Laminar-16-100"], lfp, rtol=1e-9,
        atol=1e-9 * np.abs(lfp).max(), err_msg="population LFP vs per-cell sum",
    )  # fmt: skip

    # EEG: LFPykit's four-sphere potential of each cell's dipole at its place
    head = load_head_model(HEAD)
    forward_eeg = neuron_run[f"eeg/{HEAD}"]
    elec = _electrodes(head)
    model = FourSphereVolumeConductor(
        elec, radii=list(head.radii), sigmas=list(head.sigmas)
    )
    placement = forward.config.head_placement
    radial = np.array(placement.direction) / np.linalg.norm(placement.direction)
    rot_head = cell_rotation_in_head(radial, placement)
    eeg = 0.0
    for i in range(N_CELLS):
        rot = rotation_matrix(population.rotations[i])
        p = rot_head @ rot @ (geometry.mid.T @ imem[i])  # (3, n_times)
        where = head.brain_radius * radial + rot_head @ population.positions[i]
        eeg = eeg + model.get_dipole_potential(p, where)
    eeg = eeg - eeg.mean(axis=0, keepdims=True)  # average reference
    np.testing.assert_allclose(
        forward_eeg, eeg, rtol=1e-8, atol=1e-8 * np.abs(eeg).max(),
        err_msg="population EEG vs four-sphere potential of each cell's dipole",
    )  # fmt: skip


def _electrodes(head) -> np.ndarray:
    from lfp_surrogate.forward import EEGElectrodes

    elec = EEGElectrodes.from_montage("standard_1020", head.scalp_radius)
    pos = np.array(elec.positions)
    dist = np.linalg.norm(pos, axis=1, keepdims=True)
    return np.where(dist > head.scalp_radius, pos * head.scalp_radius / dist, pos)


@requires_neuron
@pytest.mark.neuron
def test_one_cell_on_the_axis_equals_the_single_cell_eeg(tiny_model):
    saved = load_model(tiny_model)
    depth = 750.0
    pop = Population([str(tiny_model)], [[0.0, -depth, 0.0]], [[0.0, 0.0, 0.0]])
    # no tilt: a population tilts about its point on the surface, one cell
    # about its soma; roll turns both about the apical axis alike
    placement = HeadPlacement(direction=(0.0, 0.3, 1.0), roll=30.0)
    fwd = PopulationForward(
        pop,
        {str(tiny_model): saved.geometry},
        heads=[HEAD],
        head_placement=placement,
        verbose=False,
    )
    single = EEGOperator(
        saved.geometry, HEAD, None, HeadPlacement(direction=(0.0, 0.3, 1.0),
        roll=30.0, depth=depth),
    )  # fmt: skip
    np.testing.assert_allclose(
        fwd.matrices[f"eeg/{HEAD}"][str(tiny_model)][0], single.matrix,
        rtol=1e-9, atol=1e-12 * np.abs(single.matrix).max(),
        err_msg="EEG map of a one-cell population vs EEGOperator",
    )  # fmt: skip


@requires_neuron
@pytest.mark.neuron
def test_batched_surrogates_equal_the_sum_of_single_predictions(population, setup):
    geometry, forward, inputs = setup
    batched = predict_population(
        population, DURATION, forward, inputs=inputs, batch_size=3, verbose=False
    )
    # each cell alone through the network, its currents through its own maps
    total = {}
    for i, t in enumerate(population.cell_types):
        saved = load_model(t)
        counts = torch.as_tensor(inputs[i].binned(1.0)[None])
        with torch.no_grad():
            vmem = saved.model.eval()(counts).vmem
        part = forward.apply(t, [i], saved.imem_operator.apply(vmem))
        for key, value in part.items():
            total[key] = total.get(key, 0.0) + value.numpy().astype(np.float64)
    assert sorted(total) == sorted(batched.keys())
    for key, value in total.items():
        # float32 network and products: relative to the signal's range
        np.testing.assert_allclose(
            batched[key], value, rtol=1e-4, atol=1e-4 * np.abs(value).max(),
            err_msg=f"batched population {key} vs sum of single cells",
        )  # fmt: skip


@requires_neuron
@pytest.mark.neuron
def test_ten_surrogate_cells_against_neuron(population, setup, neuron_run):
    _, forward, inputs = setup
    surrogate = predict_population(
        population, DURATION, forward, inputs=inputs, batch_size=8, verbose=False
    )
    assert surrogate.keys() == neuron_run.keys()
    np.testing.assert_allclose(surrogate.t, neuron_run.t, rtol=0, atol=1e-12)
    for key in ("lfp/Laminar-16-100", "dipole", f"eeg/{HEAD}"):
        a, b = surrogate[key], neuron_run[key]
        assert a.shape == b.shape and np.all(np.isfinite(a)), key
    # agreement of a tiny network trained for seconds is reported by
    # benchmarks/bench_population.py, not asserted here
    assert surrogate.throughput > 0 and neuron_run.throughput > 0


@requires_neuron
@pytest.mark.neuron
def test_bad_population_forward_settings(population, setup):
    geometry = setup[0]
    geometries = {t: geometry for t in population.types}
    moved = ProbePlacement("Laminar-16-100", cell_position=(1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="in a population these come from the cells"):
        PopulationForward(population, geometries, probes=[moved], verbose=False)
    shallow = Population(population.cell_types[:1], [[0.0, -100.0, 0.0]], [[0, 0, 0]])
    with pytest.raises(ValueError, match="outside the brain sphere"):
        PopulationForward(shallow, geometries, heads=[HEAD], verbose=False)
    with pytest.raises(ValueError, match="geometries must hold every cell type"):
        PopulationForward(population, {}, verbose=False)


@requires_neuron
@pytest.mark.neuron
def test_population_command_writes_and_refuses_to_overwrite(tiny_model, tmp_path):
    import h5py

    from lfp_surrogate.cli import main

    out = tmp_path / "column.h5"
    args = [
        "-q",
        "population",
        "--model",
        str(tiny_model),
        "--n-cells",
        "3",
        "--duration",
        "100",
        "--depth",
        "700,800",
        "--radius",
        "50",
        "--probe",
        "Laminar-16-100 position=0,-600,40",
        "--out",
        str(out),
    ]
    assert main(args) == 0
    with h5py.File(out, "r") as f:
        assert f["lfp/Laminar-16-100"].shape == (16, 100)
        assert f["dipole"].shape == (3, 100) and f["dipole"].attrs["units"] == "nA·µm"
        assert f["positions"].shape == (3, 3)
        radial = np.hypot(f["positions"][:, 0], f["positions"][:, 2])
        assert radial.max() <= 50.0, f"somata outside the 50-µm column: {radial}"
    assert main(args) == 2  # exists: refused without --force
    assert main([*args, "--force"]) == 0
