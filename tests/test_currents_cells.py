"""The current operator on the catalogue cells, against NEURON's i_membrane_."""

from __future__ import annotations

import json
import textwrap

import numpy as np
import pytest
from conftest import requires_mearec, requires_neuron, run_python

pytestmark = [pytest.mark.neuron, requires_neuron]

CODE = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    from lfp_surrogate.inputs import InputStatistics, generate_inputs
    from lfp_surrogate.simulate import SimulationConfig, Simulator
    cell, duration, rate = sys.argv[1], float(sys.argv[2]), float(sys.argv[3])
    stats = InputStatistics(exc_rate=rate, inh_rate=rate / 3)
    out = {}
    for reduce, interval in (("sample", 1 / 32), ("mean", 1.0)):
        cfg = SimulationConfig(cell=cell, duration=duration, interval=interval,
                               reduce=reduce, warmup=100.0)
        sim = Simulator(cfg)
        sp = generate_inputs(sim.geometry, duration, 3, stats)
        res = sim.run(sp, stats)
        op = sim.cell.imem_operator()
        derived = op.apply(res.vmem)
        err = np.abs(derived - res.imem).max(axis=0) / np.abs(res.imem).max()
        err32 = np.abs(op.apply(res.vmem.astype(np.float32).astype(float))
                       - res.imem).max() / np.abs(res.imem).max()
        out[reduce] = dict(max_rel=float(err.max()), err32=float(err32),
                           n_seg=sim.geometry.n_seg,
                           max_imem=float(np.abs(res.imem).max()),
                           spikes=int(res.soma_spikes.size))
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize(
    ("cell", "duration", "rate"),
    [
        ("ball_and_stick", 100.0, 6.0),
        pytest.param("l5_ttpc1", 60.0, 0.6, marks=requires_mearec),
    ],
)
def test_derived_currents_equal_neuron_imem(cell, duration, rate):
    """At every step after the warm-up (float64, in memory): <= 1e-9 of max
    |imem|; the same for 1-ms bin means, which commute with the operator."""
    res = json.loads(run_python(CODE, cell, duration, rate).stdout.splitlines()[-1])
    for reduce in ("sample", "mean"):
        r = res[reduce]
        assert r["max_rel"] <= 1e-9, f"{cell} {reduce}: {r}"
        # float32 rounding of vmem alone (DESIGN.md: up to 3e-4 on the L5 cell)
        assert r["err32"] <= 5e-4, f"{cell} {reduce}: {r}"
    if cell == "l5_ttpc1":
        assert res["sample"]["n_seg"] == 913


def test_operator_is_cached_by_cell_hash(ball_and_stick):
    from lfp_surrogate._io import cache_dir
    from lfp_surrogate.currents import ImemOperator

    op = ball_and_stick.imem_operator()
    path = cache_dir("cells", ball_and_stick.cell_hash) / "imem_operator.npz"
    assert path.exists()
    back = ImemOperator.load(path, cell_hash=ball_and_stick.cell_hash)
    np.testing.assert_array_equal(back.matrix.toarray(), op.matrix.toarray())
    with pytest.raises(ValueError, match="cell_hash"):
        ImemOperator.load(path, cell_hash="0123456789abcdef")
