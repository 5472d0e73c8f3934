"""Tests of lfp_surrogate.currents: derived imem against NEURON's i_membrane_.

The physics oracle: with backward Euler and ``use_fast_imem``, NEURON's
``i_membrane_`` must equal ``M @ vmem`` (plus injected electrode current) to
float64 precision at every sample after the first. The first sample (t = 0) is
written by ``h.finitialize``, not by a time step, so it obeys the identity only
when the initial voltage is uniform (see ``test_first_sample_needs_warm_up``):
the warm-up is one sample.
"""

from __future__ import annotations

import gc
import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from lfp_surrogate.currents import ImemOperator, build_imem_operator, check_integrator
from lfp_surrogate.currents._kron import conductance_operator

try:
    import torch
except ImportError:  # torch is optional for these tests
    torch = None

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")

#: Time step (ms), sample count and initial potential (mV) of every run.
DT = 1.0 / 32
N_STEPS = 480
V_INIT = -65.0
#: Samples dropped before comparing (the t = 0 sample, see module docstring).
WARM_UP = 1
#: Relative tolerance of float64 physics (errors measured ~1e-12).
RTOL_PHYSICS = 1e-9
#: Name prefix of every test section, so teardown can find leftovers.
PREFIX = "tcur_"


# -- fixtures and NEURON helpers ------------------------------------------


@pytest.fixture(scope="module")
def h():
    """NEURON's h with backward Euler, fast imem and DT; restored after."""
    neuron = pytest.importorskip("neuron", reason="NEURON is not installed")
    h = neuron.h
    cvode = h.CVode()
    saved = (h.dt, h.secondorder, cvode.use_fast_imem(), cvode.active())
    h.dt = DT
    h.secondorder = 0
    cvode.use_fast_imem(1)
    cvode.active(0)
    yield h
    h.dt, h.secondorder = saved[0], saved[1]
    cvode.use_fast_imem(saved[2])
    cvode.active(saved[3])


@pytest.fixture
def nrn(h, request):
    """``h``; checks that a passing test leaves none of its sections alive.

    Sections are freed by dropping every reference, never by
    ``h.delete_section``: a failed test's traceback keeps its Vectors and
    synapses, which would then point into freed memory.
    """
    failed_before = request.session.testsfailed
    yield h
    gc.collect()
    left = [sec.name() for sec in h.allsec() if sec.name().startswith(PREFIX)]
    if request.session.testsfailed == failed_before:
        assert not left, f"test sections left alive after the test: {left}"


def _sec(h, name, *, nseg, L, diam, Ra=100.0, mech="hh"):
    sec = h.Section(name=PREFIX + name)
    sec.nseg, sec.L, sec.diam, sec.Ra = nseg, L, diam, Ra
    sec.insert(mech)
    return sec


def _centre(h):
    """A child at the centre of a parent segment."""
    soma = _sec(h, "soma", nseg=1, L=20, diam=20)
    dend = _sec(h, "dend", nseg=3, L=150, diam=2, mech="pas")
    child = _sec(h, "child", nseg=3, L=80, diam=1)
    dend.connect(soma(1))
    child.connect(dend(0.5))
    return [soma, dend, child]


def _boundary(h):
    """Children exactly on boundaries between parent segments."""
    soma = _sec(h, "soma", nseg=1, L=20, diam=20)
    dend = _sec(h, "dend", nseg=4, L=200, diam=2)
    long_ = _sec(h, "long", nseg=10, L=300, diam=1.5, mech="pas")
    secs = [soma, dend, long_]
    dend.connect(soma(1))
    long_.connect(dend(1))
    for k, (parent, x) in enumerate(
        [(dend, 0.5), (dend, 0.25), (dend, 0.75), (long_, 0.3), (long_, 0.7)]
    ):
        child = _sec(h, f"b{k}", nseg=2, L=60, diam=0.8)
        child.connect(parent(x))
        secs.append(child)
    return secs


def _parent_ends(h):
    """Children at the 0-end and the 1-end of a non-root parent."""
    soma = _sec(h, "soma", nseg=1, L=20, diam=20)
    dend = _sec(h, "dend", nseg=3, L=120, diam=2)
    at0 = _sec(h, "at0", nseg=2, L=80, diam=1, mech="pas")
    at1 = _sec(h, "at1", nseg=3, L=80, diam=1)
    dend.connect(soma(1))
    at0.connect(dend(0))  # joins soma(1), the node dend's 0-end shares
    at1.connect(dend(1))
    return [soma, dend, at0, at1]


def _child_by_1_end(h):
    """Children attached by their own 1-end, with grandchildren on them."""
    soma = _sec(h, "soma", nseg=1, L=20, diam=20)
    dend = _sec(h, "dend", nseg=4, L=150, diam=2)
    rev = _sec(h, "rev", nseg=3, L=90, diam=1.2, mech="pas")
    rev2 = _sec(h, "rev2", nseg=2, L=70, diam=0.9)
    far = _sec(h, "far", nseg=2, L=50, diam=0.7)
    near = _sec(h, "near", nseg=2, L=50, diam=0.7)
    mid = _sec(h, "mid", nseg=1, L=40, diam=0.6)
    dend.connect(soma(1))
    rev.connect(dend(0.3), 1)
    rev2.connect(soma(1), 1)
    far.connect(rev(0))  # rev's free end
    near.connect(rev(1))  # rev's connected end: joins dend(0.3)'s node
    mid.connect(rev(0.5), 1)
    return [soma, dend, rev, rev2, far, near, mid]


def _multiseg_soma(h):
    """A 5-segment soma with dendrites at both ends, a centre and a boundary."""
    soma = _sec(h, "soma", nseg=5, L=30, diam=15)
    secs = [soma]
    for k, x in enumerate([0.0, 1.0, 0.5, 0.4]):
        dend = _sec(h, f"d{k}", nseg=3, L=100, diam=1.5, mech="pas" if k else "hh")
        dend.connect(soma(x))
        secs.append(dend)
    return secs


def _siblings(h):
    """Several siblings at one end, one segment centre and one boundary."""
    soma = _sec(h, "soma", nseg=1, L=20, diam=20)
    dend = _sec(h, "dend", nseg=2, L=100, diam=2)
    dend.connect(soma(1))
    secs = [soma, dend]
    for k, (parent, x) in enumerate(
        [(soma, 1), (soma, 1), (soma, 0.5), (soma, 0.5), (dend, 0.5), (dend, 0.5)]
    ):
        child = _sec(h, f"s{k}", nseg=2, L=50 + 10 * k, diam=0.5 + 0.2 * k)
        child.connect(parent(x))
        secs.append(child)
    return secs


def _root_not_soma(h):
    """An axon as root; the soma hangs from its middle by the soma's 1-end."""
    axon = _sec(h, "axon", nseg=5, L=200, diam=1)
    soma = _sec(h, "soma", nseg=3, L=20, diam=20)
    basal = _sec(h, "basal", nseg=2, L=100, diam=1.5, mech="pas")
    apical = _sec(h, "apical", nseg=4, L=300, diam=2.5)
    soma.connect(axon(0.6), 1)
    basal.connect(soma(0))  # the soma's free end
    apical.connect(soma(0.5))
    return [soma, basal, apical, axon]  # the root need not come first


TOPOLOGIES = {
    "centre": _centre,
    "boundary": _boundary,
    "parent_ends": _parent_ends,
    "child_by_1_end": _child_by_1_end,
    "multiseg_soma": _multiseg_soma,
    "siblings": _siblings,
    "root_not_soma": _root_not_soma,
}


def _random_tree(h, seed):
    """A random forest of two trees: any attachment point, either end."""
    rng = np.random.default_rng(seed)
    secs = [_sec(h, "root0", nseg=int(rng.integers(1, 4)), L=20, diam=15)]
    for k in range(1, 14):
        nseg = int(rng.integers(1, 6))
        mech = str(rng.choice(["hh", "pas"]))
        sec = _sec(
            h,
            f"r{k}",
            nseg=nseg,
            L=float(rng.uniform(10, 200)),
            diam=float(rng.uniform(0.3, 3)),
            Ra=float(rng.uniform(50, 200)),
            mech=mech,
        )
        if k == 7:  # start a second tree
            secs.append(sec)
            continue
        parent = secs[int(rng.integers(len(secs)))]
        kind = rng.integers(4)
        if kind == 0:
            x = float(rng.choice([0.0, 1.0]))
        elif kind == 1:  # a segment boundary
            x = int(rng.integers(1, parent.nseg + 1)) / parent.nseg
        else:
            x = float(rng.uniform(0, 1))
        sec.connect(parent(x), int(rng.integers(2)))
        secs.append(sec)
    order = rng.permutation(len(secs))
    return [secs[i] for i in order]


def _drive(h, sections):
    """Excitatory synapses on three segments, firing every 4 ms."""
    segs = [seg for sec in sections for seg in sec]
    stim = h.NetStim()
    stim.start, stim.interval, stim.number, stim.noise = 1.0, 4.0, 1e9, 0
    keep = [stim]
    for seg in (segs[0], segs[len(segs) // 2], segs[-1]):
        syn = h.ExpSyn(seg)
        syn.tau = 2.0
        con = h.NetCon(stim, syn)
        con.weight[0] = 0.02
        keep += [syn, con]
    return keep


def _run(h, sections, clamps=()):
    """Run N_STEPS steps of DT; return vmem, imem (n_seg, n_times), clamp i."""
    v_vecs, i_vecs = [], []
    for sec in sections:
        for seg in sec:
            v_vecs.append(h.Vector().record(seg._ref_v))
            i_vecs.append(h.Vector().record(seg._ref_i_membrane_))
    clamp_vecs = [h.Vector().record(clamp._ref_i) for clamp in clamps]
    h.finitialize(V_INIT)
    for _ in range(N_STEPS):
        h.fadvance()
    vmem = np.array([vec.to_python() for vec in v_vecs])
    imem = np.array([vec.to_python() for vec in i_vecs])
    clamp_i = [np.array(vec.to_python()) for vec in clamp_vecs]
    for vec in v_vecs + i_vecs + clamp_vecs:
        vec.play_remove()  # stop recording, so no Vector outlives its section
    return vmem, imem, clamp_i


def _relative_error(derived, imem):
    """Max |derived - imem| over segments, per sample, over max |imem|."""
    return np.abs(derived - imem).max(axis=0) / np.abs(imem).max()


def _assert_identity(derived, imem, what):
    err = _relative_error(derived[:, WARM_UP:], imem[:, WARM_UP:])
    np.testing.assert_allclose(
        err,
        0.0,
        rtol=0,
        atol=RTOL_PHYSICS,
        err_msg=f"derived imem vs NEURON i_membrane_ ({what}), relative to max |imem|",
    )


# -- the physics oracle ------------------------------------------------------


@pytest.mark.neuron
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_operator_matches_neuron(nrn, topology):
    """M @ vmem equals i_membrane_ for every unusual topology NEURON allows."""
    sections = TOPOLOGIES[topology](nrn)
    keep = _drive(nrn, sections)
    operator = build_imem_operator(sections)
    vmem, imem, _ = _run(nrn, sections)

    assert operator.shape == (vmem.shape[0],) * 2
    assert np.ptp(vmem[:, WARM_UP:], axis=1).min() > 1e-3, "voltages must vary"
    _assert_identity(operator @ vmem, imem, topology)
    del keep


@pytest.mark.neuron
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_operator_matches_neuron_random_tree(nrn, seed):
    """The identity holds on random forests, for any seed."""
    sections = _random_tree(nrn, seed)
    keep = _drive(nrn, sections)
    operator = build_imem_operator(sections)
    vmem, imem, _ = _run(nrn, sections)
    _assert_identity(operator @ vmem, imem, f"random tree, seed {seed}")
    del keep


@pytest.mark.neuron
@pytest.mark.parametrize("topology", sorted(TOPOLOGIES))
def test_operator_is_a_laplacian(nrn, topology):
    """Rows sum to zero, the matrix is symmetric, off-diagonals are >= 0."""
    matrix = build_imem_operator(TOPOLOGIES[topology](nrn))
    dense = matrix.toarray()
    scale = np.abs(dense).max()
    np.testing.assert_allclose(
        dense.sum(axis=1), 0.0, rtol=0, atol=1e-12 * scale, err_msg="row sums"
    )
    np.testing.assert_allclose(
        dense, dense.T, rtol=0, atol=1e-14 * scale, err_msg="symmetry"
    )
    off = dense - np.diag(np.diag(dense))
    assert off.min() >= 0, "off-diagonal conductances must be non-negative"
    assert isinstance(matrix, sp.csr_matrix) and matrix.dtype == np.float64


@pytest.mark.neuron
def test_first_sample_needs_warm_up(nrn):
    """A non-uniform start set after finitialize breaks only the t = 0 sample.

    ``i_membrane_`` at t = 0 is the value finitialize computed; voltages
    changed afterwards (a custom init) are not reflected in it. Every sample
    written by a time step obeys the identity, so one sample of warm-up is
    enough.
    """
    sections = _centre(nrn)
    operator = build_imem_operator(sections)
    v_vecs = [nrn.Vector().record(seg._ref_v) for sec in sections for seg in sec]
    i_vecs = [
        nrn.Vector().record(seg._ref_i_membrane_) for sec in sections for seg in sec
    ]
    nrn.finitialize(V_INIT)
    for seg in sections[1]:
        seg.v = V_INIT + 20.0
    nrn.fcurrent()
    nrn.frecord_init()
    for _ in range(32):
        nrn.fadvance()
    vmem = np.array([vec.to_python() for vec in v_vecs])
    imem = np.array([vec.to_python() for vec in i_vecs])
    for vec in v_vecs + i_vecs:
        vec.play_remove()

    err = _relative_error(operator @ vmem, imem)
    assert err[0] > 1e-3, "the t = 0 sample should not obey the identity here"
    _assert_identity(operator @ vmem, imem, "after a non-uniform start")


@pytest.mark.neuron
@pytest.mark.parametrize("form", ["array", "dict", "batched"])
def test_stim_adds_electrode_current(nrn, form):
    """i_membrane_ = axial inflow + injected IClamp current (positive in)."""
    soma = _sec(nrn, "soma", nseg=1, L=20, diam=20)
    dend = _sec(nrn, "dend", nseg=4, L=150, diam=2, mech="pas")
    dend.connect(soma(1))
    sections = [soma, dend]
    clamps = [nrn.IClamp(dend(0.9)), nrn.IClamp(soma(0.5))]
    for clamp, (delay, amp) in zip(clamps, [(0.0, 0.4), (3.0, -0.2)]):
        clamp.delay, clamp.dur, clamp.amp = delay, 6.0, amp
    clamp_seg = [4, 0]
    op = ImemOperator.from_sections(sections, "ball-and-stick")
    vmem, imem, clamp_i = _run(nrn, sections, clamps)

    stim = dict(zip(clamp_seg, clamp_i))
    if form == "array":
        dense = np.zeros_like(vmem)
        dense[clamp_seg] = clamp_i
        derived = op.apply(vmem, stim=dense)
    elif form == "dict":
        derived = op.apply(vmem, stim=stim)
    else:
        derived = op.apply(np.stack([vmem, vmem]), stim=stim)[1]
    _assert_identity(derived, imem, f"with IClamp current, stim as {form}")

    # without the stim term the clamped segment is off by the clamp current
    err = _relative_error(op.apply(vmem), imem)
    assert err[WARM_UP:].max() > 0.1, "the clamp current must be visible"


@pytest.mark.neuron
def test_single_compartment_imem_is_the_clamp_current(nrn):
    """One compartment: no axial current, so i_membrane_ equals IClamp.i."""
    soma = _sec(nrn, "soma", nseg=1, L=20, diam=20)
    clamp = nrn.IClamp(soma(0.5))
    clamp.delay, clamp.dur, clamp.amp = 1.0, 5.0, 0.3
    op = ImemOperator.from_sections([soma], "point")
    vmem, imem, (clamp_i,) = _run(nrn, [soma], [clamp])
    np.testing.assert_array_equal(op.matrix.toarray(), [[0.0]])
    np.testing.assert_allclose(
        op.apply(vmem, stim={0: clamp_i})[0],
        imem[0],
        rtol=0,
        atol=RTOL_PHYSICS * np.abs(imem).max(),
        err_msg="single-compartment imem vs IClamp current",
    )


@pytest.mark.neuron
@pytest.mark.parametrize(
    "topology", ["boundary", "child_by_1_end", "parent_ends", "root_not_soma"]
)
def test_exact_where_lfpy_is_not(nrn, topology):
    """LFPy's vmem -> imem matrix fails on these topologies; ours does not."""
    LFPy = pytest.importorskip("LFPy", reason="LFPy is not installed")
    sections = TOPOLOGIES[topology](nrn)
    seclist = nrn.SectionList()
    for sec in sections:
        seclist.append(sec=sec)
    cell = LFPy.Cell(
        seclist, delete_sections=False, nsegs_method=None, v_init=V_INIT, dt=DT
    )
    nrn.dt, nrn.secondorder = DT, 0
    lfpy_matrix = cell.get_transformation_matrix_vmem_to_imem()
    keep = _drive(nrn, sections)
    operator = build_imem_operator(sections)
    vmem, imem, _ = _run(nrn, sections)

    _assert_identity(operator @ vmem, imem, f"{topology}, ours")
    lfpy_err = _relative_error(lfpy_matrix @ vmem, imem)[WARM_UP:].max()
    assert lfpy_err > 1e-2, f"LFPy's matrix was expected to fail ({lfpy_err:g})"
    del cell, keep, seclist


# -- NEURON-side checks and errors -----------------------------------------


@pytest.mark.neuron
def test_crank_nicolson_is_refused(nrn):
    sections = _centre(nrn)
    nrn.secondorder = 2
    try:
        with pytest.raises(RuntimeError, match=r"h\.secondorder must be 0"):
            check_integrator()
        with pytest.raises(RuntimeError, match=r"h\.secondorder = 2"):
            build_imem_operator(sections)
    finally:
        nrn.secondorder = 0
    check_integrator()


@pytest.mark.neuron
def test_incomplete_or_bad_sections_are_refused(nrn):
    soma, dend, child = _centre(nrn)
    with pytest.raises(ValueError, match="child.*is not in sections"):
        build_imem_operator([soma, dend])
    with pytest.raises(ValueError, match="dend, which is not in sections"):
        build_imem_operator([child])
    with pytest.raises(ValueError, match="twice"):
        build_imem_operator([soma, dend, child, dend])
    with pytest.raises(ValueError, match="at least one"):
        build_imem_operator([])
    with pytest.raises(TypeError, match=r"sections\[1\] must be a NEURON section"):
        build_imem_operator([soma, "dend", child])
    with pytest.raises(TypeError, match="iterable of NEURON sections"):
        build_imem_operator(3)
    child.insert("extracellular")
    with pytest.raises(NotImplementedError, match="extracellular"):
        build_imem_operator([soma, dend, child])


# -- Kron reduction against closed forms (no NEURON) --------------------------


def test_star_mesh_closed_form():
    """A zero-area hub with three spokes becomes g_i g_j / (g_1 + g_2 + g_3)."""
    g = np.array([1.0, 2.0, 4.0])
    operator = conductance_operator(
        4, np.array([3, 3, 3]), np.array([0, 1, 2]), g, np.array([1, 1, 1, 0], bool)
    ).toarray()
    mesh = np.outer(g, g) / g.sum()
    np.fill_diagonal(mesh, 0.0)
    expected = mesh - np.diag(mesh.sum(axis=1))
    np.testing.assert_allclose(
        operator[:3, :3], expected, rtol=1e-14, atol=0, err_msg="star-mesh"
    )
    np.testing.assert_array_equal(operator[3], 0.0, err_msg="eliminated row")


def test_chain_of_eliminated_nodes_is_series_resistance():
    """Two zero-area nodes in series between kept ends: 1/g = sum of 1/g_k."""
    g = np.array([1.0, 3.0, 6.0])
    operator = conductance_operator(
        4, np.array([0, 2, 3]), np.array([2, 3, 1]), g, np.array([1, 1, 0, 0], bool)
    ).toarray()
    g_series = 1.0 / (1.0 / g).sum()
    np.testing.assert_allclose(
        operator[:2, :2],
        [[-g_series, g_series], [g_series, -g_series]],
        rtol=1e-14,
        atol=0,
        err_msg="series conductance through a chain of eliminated nodes",
    )


# -- ImemOperator as plain data (no NEURON) ----------------------------------


def _random_operator(seed, n_seg=30):
    """Kron-reduced random tree with its section-end-like nodes eliminated."""
    rng = np.random.default_rng(seed)
    n_nodes = n_seg + 10
    parent = np.array([rng.integers(k) for k in range(1, n_nodes)])
    g = rng.uniform(0.01, 1.0, n_nodes - 1)
    keep = np.zeros(n_nodes, bool)
    keep[rng.permutation(n_nodes)[:n_seg]] = True
    full = conductance_operator(n_nodes, np.arange(1, n_nodes), parent, g, keep)
    kept = np.flatnonzero(keep)
    return ImemOperator(full[kept][:, kept], f"random-{seed}")


@pytest.fixture(params=[0, 1])
def seed(request):
    return request.param


@pytest.fixture
def operator(seed):
    return _random_operator(seed)


@pytest.fixture
def vmem(operator, seed):
    """Random voltages (mV), shape (n_batch=3, n_seg, n_times=20)."""
    rng = np.random.default_rng(seed + 100)
    return V_INIT + 10 * rng.standard_normal((3, operator.n_seg, 20))


def test_batched_numpy_matches_loop(operator, vmem):
    batched = operator.apply(vmem)
    assert batched.shape == vmem.shape and batched.dtype == np.float64
    for b in range(vmem.shape[0]):
        np.testing.assert_allclose(
            batched[b],
            operator.matrix @ vmem[b],
            rtol=1e-12,
            atol=1e-12,
            err_msg=f"batched imem, batch item {b}",
        )
    np.testing.assert_allclose(
        operator.apply(vmem[0] + 7.0),
        operator.apply(vmem[0]),
        rtol=0,
        atol=1e-11,
        err_msg="a constant voltage offset gives no current",
    )


DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(
                torch is None or not torch.cuda.is_available(),
                reason="no CUDA device",
            ),
        ],
    ),
]


@needs_torch
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batched", [False, True])
def test_torch_matches_numpy_and_is_differentiable(operator, vmem, device, batched):
    x = vmem if batched else vmem[0]
    rng = np.random.default_rng(7)
    weight = rng.standard_normal(x.shape)
    expected = operator.apply(x)

    v = torch.tensor(x, dtype=torch.float64).to(device).requires_grad_(True)
    out = operator.apply(v)
    assert out.shape == v.shape and out.dtype == torch.float64
    assert out.device == v.device
    np.testing.assert_allclose(
        out.detach().cpu().numpy(),
        expected,
        rtol=1e-12,
        atol=1e-12,
        err_msg="torch float64 imem vs numpy",
    )
    (out * torch.tensor(weight).to(device)).sum().backward()
    # d/dv sum(w * (M v)) = M^T w
    grad = operator.apply(weight)  # M is symmetric
    np.testing.assert_allclose(
        v.grad.cpu().numpy(),
        grad,
        rtol=1e-12,
        atol=1e-12,
        err_msg="gradient of imem with respect to vmem",
    )

    out32 = operator.apply(v.detach().float())
    assert out32.dtype == torch.float32
    scale = np.abs(expected).max()
    np.testing.assert_allclose(
        out32.cpu().double().numpy(),
        operator.apply(v.detach().float().double().cpu().numpy()),
        rtol=0,
        atol=1e-4 * scale,
        err_msg="torch float32 imem vs float64 on the same float32 vmem",
    )


@needs_torch
def test_torch_stim_forms_agree(operator, vmem):
    rng = np.random.default_rng(3)
    current = rng.standard_normal((vmem.shape[0], vmem.shape[-1]))
    dense = np.zeros_like(vmem)
    dense[:, 5] = current
    expected = operator.apply(vmem, stim=dense)
    v = torch.tensor(vmem, requires_grad=True)
    for stim in ({5: current}, {5: torch.tensor(current)}, dense):
        out = operator.apply(v, stim=stim)
        np.testing.assert_allclose(
            out.detach().numpy(),
            expected,
            rtol=1e-12,
            atol=1e-12,
            err_msg=f"torch imem with stim as {type(stim).__name__}",
        )
    out.sum().backward()
    assert v.grad is not None


def test_shape_and_type_errors(operator, vmem):
    n_seg = operator.n_seg
    with pytest.raises(ValueError, match=rf"n_seg = {n_seg}.*got shape \(3, 4\)"):
        operator.apply(np.zeros((3, 4)))
    with pytest.raises(ValueError, match="n_seg"):
        operator.apply(np.zeros(n_seg))
    with pytest.raises(TypeError, match="real numbers"):
        operator.apply(np.zeros((n_seg, 2), dtype=complex))
    with pytest.raises(ValueError, match=r"stim must have shape"):
        operator.apply(vmem, stim=np.zeros((2, n_seg, 20)))
    with pytest.raises(ValueError, match=r"stim\[2\] must have shape"):
        operator.apply(vmem, stim={2: np.zeros(19)})
    with pytest.raises(ValueError, match=r"segment indices in \[0,"):
        operator.apply(vmem, stim={n_seg: np.zeros(20)})
    with pytest.raises(TypeError, match="stim keys must be segment indices"):
        operator.apply(vmem, stim={"soma": np.zeros(20)})
    with pytest.raises(TypeError, match="scipy.sparse"):
        ImemOperator(np.eye(3), "x")
    with pytest.raises(ValueError, match="must be square"):
        ImemOperator(sp.eye(3, 4, format="csr"), "x")
    with pytest.raises(TypeError, match="cell_hash must be str"):
        ImemOperator(sp.eye(3, format="csr"), 3)
    if torch is None:
        return
    with pytest.raises(TypeError, match="float32 or float64 tensor"):
        operator.apply(torch.zeros((n_seg, 2), dtype=torch.int64))
    with pytest.raises(ValueError, match=rf"n_seg = {n_seg}"):
        operator.apply(torch.zeros((n_seg + 1, 2)))


def test_save_load_round_trip(operator, tmp_path):
    path = tmp_path / "op.npz"
    operator.save(path)
    loaded = ImemOperator.load(path, cell_hash=operator.cell_hash)
    assert loaded.cell_hash == operator.cell_hash
    np.testing.assert_array_equal(
        loaded.matrix.toarray(), operator.matrix.toarray(), err_msg="stored matrix"
    )
    assert [p.name for p in tmp_path.iterdir()] == ["op.npz"], "no temporary left"

    with pytest.raises(FileExistsError, match="overwrite=True"):
        operator.save(path)
    operator.save(path, overwrite=True)

    restored = pickle.loads(pickle.dumps(operator))
    np.testing.assert_array_equal(
        restored.matrix.toarray(), operator.matrix.toarray(), err_msg="pickled"
    )


def test_load_refuses_wrong_hash_and_wrong_files(operator, tmp_path):
    path = tmp_path / "op.npz"
    operator.save(path)
    with pytest.raises(ValueError, match=rf"{operator.cell_hash!r}.*'other-cell'"):
        ImemOperator.load(path, cell_hash="other-cell")

    partial = tmp_path / "partial.npz"
    np.savez(partial, data=operator.matrix.data, shape=np.array([1, 1]))
    with pytest.raises(ValueError, match=r"partial\.npz.*format, cell_hash"):
        ImemOperator.load(partial)

    text = tmp_path / "notes.npz"
    text.write_text("not an archive")
    with pytest.raises(ValueError, match=r"notes\.npz is not a saved ImemOperator"):
        ImemOperator.load(text)

    single = tmp_path / "single.npy"
    np.save(single, np.zeros(3))
    with pytest.raises(ValueError, match="expected an .npz archive written by Imem"):
        ImemOperator.load(single)

    for name, content in (("x.h5", b"\x89HDF\r\n\x1a\n" + bytes(50)), ("e", b"")):
        other = tmp_path / name
        other.write_bytes(content)
        with pytest.raises(ValueError) as info:
            ImemOperator.load(other)
        assert (
            f"{other} is not a saved ImemOperator file: expected an .npz archive "
            "written by ImemOperator.save"
        ) in str(info.value)
        assert "pickle" not in str(info.value), "never suggest unsafe loading"

    pickled = tmp_path / "pickled.npz"
    with np.load(path) as npz:
        fields = dict(npz)
    np.savez(pickled, **{**fields, "format": np.array([{}], dtype=object)})
    with pytest.raises(ValueError, match=r"its fields are not plain arrays"):
        ImemOperator.load(pickled)

    # a zip whose directory is damaged
    damaged = tmp_path / "damaged.npz"
    data = bytearray(path.read_bytes())
    at = data.find(b"PK\x01\x02")
    data[at : at + 4] = b"XXXX"
    damaged.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"\(it is damaged or of another kind\)"):
        ImemOperator.load(damaged)

    with pytest.raises(ValueError, match=r"is a folder; give the path of a file"):
        operator.save(tmp_path, overwrite=True)

    with np.load(path) as npz:
        fields = dict(npz)
    bad_format = tmp_path / "bad_format.npz"
    np.savez(bad_format, **{**fields, "format": np.array("something else")})
    with pytest.raises(ValueError, match="field format"):
        ImemOperator.load(bad_format)
    bad_matrix = tmp_path / "bad_matrix.npz"
    np.savez(bad_matrix, **{**fields, "indptr": fields["indptr"][:-1]})
    with pytest.raises(ValueError, match="do not form a valid sparse matrix"):
        ImemOperator.load(bad_matrix)

    with pytest.raises(FileNotFoundError, match="no such file"):
        ImemOperator.load(tmp_path / "missing.npz")
