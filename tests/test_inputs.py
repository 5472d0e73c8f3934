"""Synaptic input: seeding, statistics, binning convention."""

from __future__ import annotations

import numpy as np
import pytest

from lfp_surrogate.cells import REGIONS, CellGeometry
from lfp_surrogate.inputs import (
    InputStatistics,
    SpikeTrains,
    generate_inputs,
    simulation_seeds,
)


def _geometry(n_basal=20, n_apical=30):
    """A synthetic plain-data cell: soma, basal and apical segments of 10 µm."""
    n = 1 + n_basal + n_apical + 1
    y0 = np.r_[0.0, -10.0 * np.arange(1, n_basal + 1), 10.0 * np.arange(n_apical), -5.0]
    y = np.stack([y0, y0 + 10.0], axis=1)
    zeros = np.zeros((n, 2))
    region = np.r_[
        REGIONS.index("soma"),
        [REGIONS.index("basal")] * n_basal,
        [REGIONS.index("apical_trunk")] * 10,
        [REGIONS.index("tuft")] * (n_apical - 10),
        REGIONS.index("axon"),
    ]
    return CellGeometry(
        name="synthetic",
        cell_hash="0" * 16,
        x=zeros,
        y=y,
        z=zeros.copy(),
        d=np.ones(n),
        area=np.full(n, np.pi * 10.0),
        length=np.full(n, 10.0),
        region=region.astype(np.int8),
        sec_names=("all",),
        sec_index=np.zeros(n, np.int32),
        seg_x=np.linspace(0, 1, n),
    )


@pytest.mark.parametrize("seed", [0, 1, 2024])
def test_same_seed_same_input_and_no_sharing_between_seeds(seed):
    geo = _geometry()
    stats = InputStatistics(exc_rate=2.0, inh_rate=1.0)
    a = [generate_inputs(geo, 2000.0, s, stats) for s in simulation_seeds(seed, 3)]
    b = [generate_inputs(geo, 2000.0, s, stats) for s in simulation_seeds(seed, 5)]
    other = [
        generate_inputs(geo, 2000.0, s, stats) for s in simulation_seeds(seed + 1, 3)
    ]
    for x, y in zip(a, b):
        assert x.input_hash() == y.input_hash(), "sim i must not depend on n_sims"
        np.testing.assert_array_equal(x.exc_t, y.exc_t)
    hashes = {x.input_hash() for x in a} | {x.input_hash() for x in other}
    assert len(hashes) == 6, "datasets with different seeds must share no simulation"


@pytest.mark.parametrize("seed", [3, 17])
def test_mean_rate_and_axon_silence(seed):
    geo = _geometry()
    stats = InputStatistics(exc_rate=2.0, inh_rate=1.0, seg_noise=0.3)
    duration = 20_000.0
    sp = generate_inputs(geo, duration, np.random.SeedSequence(seed), stats)
    axon = np.flatnonzero(geo.region == REGIONS.index("axon"))
    assert not np.isin(sp.exc_seg, axon).any() and not np.isin(sp.inh_seg, axon).any()
    dend_len = geo.length[geo.region != REGIONS.index("axon")].sum()
    expected = 2.0 * dend_len * duration * 1e-3  # modulation has mean 1
    # the slow modulation of two groups over 20 s: loose statistical bound
    np.testing.assert_allclose(
        sp.n_exc, expected, rtol=0.35, err_msg="excitatory spike count"
    )
    np.testing.assert_allclose(
        sp.n_inh, expected / 2, rtol=0.35, err_msg="inhibitory spike count"
    )
    assert sp.exc_t.min() > 0 and sp.exc_t.max() <= duration


def test_regions_option_confines_the_drive():
    geo = _geometry()
    stats = InputStatistics(exc_rate=2.0, inh_rate=1.0, regions=("tuft",))
    sp = generate_inputs(geo, 2000.0, 5, stats)
    tuft = np.flatnonzero(geo.region == REGIONS.index("tuft"))
    assert sp.n_exc > 0 and np.isin(sp.exc_seg, tuft).all()


def test_synchronous_volleys():
    geo = _geometry()
    stats = InputStatistics(
        exc_rate=0.0, inh_rate=0.0, sync_rate=10.0, sync_fraction=0.5
    )
    sp = generate_inputs(geo, 5000.0, 9, stats)
    times, counts = np.unique(sp.exc_t, return_counts=True)
    assert times.size > 20 and counts.min() > 5, "volleys share one time"


def test_binning_convention_is_causal():
    sp = SpikeTrains(
        exc_seg=np.array([0, 1, 1]),
        exc_t=np.array([0.5, 1.0, 1.0001]),
        inh_seg=np.array([2]),
        inh_t=np.array([3.0]),
        n_seg=3,
        duration=3.0,
    )
    counts = sp.binned(1.0)
    assert counts.shape == (2, 3, 3)
    # bin k holds (k, k+1]: t = 1.0 is in bin 0, t = 1.0001 in bin 1
    np.testing.assert_array_equal(counts[0, 1], [1, 1, 0])
    np.testing.assert_array_equal(counts[0, 0], [1, 0, 0])
    np.testing.assert_array_equal(counts[1, 2], [0, 0, 1])


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(exc_seg=[5], exc_t=[1.0]), r"exc_seg holds segment indices .*outside"),
        (dict(exc_seg=[0], exc_t=[11.0]), r"exc_t holds spike times .*outside"),
        (dict(exc_seg=[0], exc_t=[np.nan]), r"exc_t must be finite"),
        (dict(exc_seg=[0, 1], exc_t=[1.0]), r"same length"),
    ],
)
def test_spike_train_errors(kwargs, match):
    base = dict(exc_seg=[], exc_t=[], inh_seg=[], inh_t=[], n_seg=3, duration=10.0)
    base.update(kwargs)
    base = {k: (np.asarray(v) if isinstance(v, list) else v) for k, v in base.items()}
    with pytest.raises(ValueError, match=match):
        SpikeTrains(**base)


@pytest.mark.parametrize(
    ("kwargs", "err", "match"),
    [
        (dict(exc_rate=-1.0), ValueError, "exc_rate must be finite and >= 0"),
        (dict(inh_coupling=2.0), ValueError, r"inh_coupling must be in \[0, 1\]"),
        (dict(regions=("axon",)), ValueError, "regions must be one of"),
        (dict(hold_min=500.0, hold_max=100.0), ValueError, "must not be below"),
        (dict(smooth="5"), TypeError, "smooth must be a number"),
    ],
)
def test_statistics_errors(kwargs, err, match):
    with pytest.raises(err, match=match):
        InputStatistics(**kwargs)


def test_statistics_round_trip_and_unknown_field():
    stats = InputStatistics(exc_rate=0.5, regions=("basal", "tuft"))
    assert InputStatistics.from_dict(stats.to_dict()) == stats
    with pytest.raises(ValueError, match=r"unknown input statistics field.*exc_rat"):
        InputStatistics.from_dict({"exc_rat": 1.0})


@pytest.mark.parametrize(("seed", "n"), [(-1, 2), (0, 0)])
def test_seed_errors(seed, n):
    with pytest.raises(ValueError, match="must be finite and"):
        simulation_seeds(seed, n)
