"""Tests of the surrogate networks: causality, receptive field, heads, streaming."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from numpy.testing import assert_allclose, assert_array_equal

from lfp_surrogate.inputs import SpikeTrains
from lfp_surrogate.models import (
    MH,
    InputProjection,
    MMoEEx,
    ModelConfig,
    StreamingState,
    Surrogate,
    SurrogateOutput,
    _registry,
    build_model,
    iter_stream,
    list_models,
    predict_stream,
    register_model,
    sparse_counts,
)

ARCHS = ["mh", "mmoe", "mmoeex"]
SEEDS = [0, 1]
DEVICES = [
    "cpu",
    pytest.param(
        "cuda",
        marks=[
            pytest.mark.gpu,
            pytest.mark.skipif(
                not torch.cuda.is_available(), reason="no CUDA device available"
            ),
        ],
    ),
]
N_SEG = 12
TASKS = [0] * 3 + [1] * 4 + [2] * 5
# float32 network output: a few ulps of values of order 1
ATOL32 = 1e-5


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models run fastest on one thread (and the 2 cores are shared)."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def small_config(arch: str, **changes) -> ModelConfig:
    """A tiny network: 12 segments in 3 tasks, receptive field 29 bins."""
    kwargs = dict(
        n_seg=N_SEG,
        arch=arch,
        task_of_seg=TASKS,
        widths=16,
        kernel_sizes=3,
        dilations=(1, 2, 4),
        tower_width=8,
        n_experts=4,
        expert_width=8,
        dropout=0.1,
    )
    kwargs.update(changes)
    return ModelConfig(**kwargs)


def make_model(arch: str, seed: int, device: str = "cpu", **changes) -> Surrogate:
    torch.manual_seed(seed)  # weight initialisation (the test's choice)
    return build_model(small_config(arch, **changes)).to(device)


def random_counts(seed: int, n_batch=2, n_times=80, rate=0.2) -> torch.Tensor:
    """Poisson counts of shape (n_batch, 2, N_SEG, n_times), drawn on the CPU."""
    gen = torch.Generator().manual_seed(seed)
    return torch.poisson(torch.full((n_batch, 2, N_SEG, n_times), rate), generator=gen)


def np_(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().double().numpy()


# ---------------------------------------------------------------- shapes


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch", ARCHS)
def test_output_shapes_and_aux_losses(arch, device, seed):
    model = make_model(arch, seed, device)
    counts = random_counts(seed, n_batch=3, n_times=50)
    out = model(counts.to(device))
    assert isinstance(out, SurrogateOutput)
    assert out.vmem.shape == (3, N_SEG, 50)
    assert out.spike_logit.shape == (3, 50)
    assert out.vmem.device.type == device and out.vmem.dtype == torch.float32
    assert np.isfinite(np_(out.vmem)).all()
    assert np.isfinite(np_(out.spike_logit)).all()

    # auxiliary losses: scalars apart from the prediction, finite
    expected = set() if arch == "mh" else {"load_balance"}
    assert set(out.aux_losses) == expected
    for name, value in out.aux_losses.items():
        assert value.shape == (), name
        assert np.isfinite(value.item()) and value.item() >= 0, name
    gates = model.gate_weights(counts.to(device))
    if arch == "mh":
        assert gates is None
    else:
        assert gates.shape == (3, 3 + 1, 4, 50)
        assert_allclose(
            np_(gates.sum(dim=2)), 1.0, rtol=0, atol=1e-6, err_msg="gate sums"
        )


@pytest.mark.parametrize("arch", ARCHS)
def test_one_task_per_segment(arch):
    model = make_model(arch, 0, task_of_seg=None, n_tasks=N_SEG)
    assert model.head.n_tasks == N_SEG
    out = model(random_counts(0, n_times=20))
    assert out.vmem.shape == (2, N_SEG, 20)


# ---------------------------------------------------------------- causality


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch", ARCHS)
def test_causal_in_eval_mode(arch, device, seed):
    model = make_model(arch, seed, device).eval()
    counts = random_counts(seed)
    k = int(np.random.default_rng(seed).integers(1, counts.shape[-1] - 1))
    changed = counts.clone()
    changed[..., k] += 3.0
    # input paths: GEMM, dense converted to sparse (CPU), sparse COO
    for layout, sparse_below in (("dense", 0.0), ("converted", 1.0), ("sparse", 0)):
        model.backbone.input.sparse_below = sparse_below
        a, b = counts.to(device), changed.to(device)
        if layout == "sparse":
            a, b = a.to_sparse(), b.to_sparse()
        with torch.no_grad():
            out_a, out_b = model(a), model(b)
        assert_array_equal(
            np_(out_a.vmem[..., :k]),
            np_(out_b.vmem[..., :k]),
            err_msg=f"vmem before bin {k} changed ({layout})",
        )
        assert_array_equal(
            np_(out_a.spike_logit[..., :k]),
            np_(out_b.spike_logit[..., :k]),
            err_msg=f"spike logit before bin {k} changed ({layout})",
        )
        # the current bin counts: output bin k sees input bin k
        assert (out_a.vmem[..., k] != out_b.vmem[..., k]).any()


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("arch", ARCHS)
def test_receptive_field(arch, seed):
    kernel_sizes, dilations = (3, 2, 3), (1, 2, 4)
    model = make_model(
        arch, seed, kernel_sizes=kernel_sizes, dilations=dilations, interval=0.5
    )
    expected = 1 + 2 * sum((k - 1) * d for k, d in zip(kernel_sizes, dilations))
    assert model.receptive_field == expected == model.config.receptive_field
    assert_allclose(
        model.receptive_field_ms, expected * 0.5, rtol=1e-12, err_msg="RF in ms"
    )

    # float64 so that the weak far end of the receptive field stands out
    model = model.double().eval()
    counts = random_counts(seed).double()
    k = 10
    changed = counts.clone()
    changed[..., k] += 3.0
    with torch.no_grad():
        out_a, out_b = model(counts), model(changed)
    rf = model.receptive_field
    for name in ("vmem", "spike_logit"):
        a, b = np_(getattr(out_a, name)), np_(getattr(out_b, name))
        assert np.any(a[..., k + rf - 1] != b[..., k + rf - 1]), (
            f"{name} at bin k + RF - 1 does not depend on input bin k"
        )
        assert_array_equal(
            a[..., k + rf :], b[..., k + rf :], err_msg=f"{name} beyond the RF"
        )


# ---------------------------------------------------------------- training


def synthetic_task(seed: int, n_batch=4, n_times=96):
    """Targets: a causal exponential filter of each segment's net input."""
    counts = random_counts(seed, n_batch=n_batch, n_times=n_times, rate=0.15)
    drive = counts[:, 0] - 0.7 * counts[:, 1]  # (n_batch, n_seg, n_times)
    kernel = torch.exp(-torch.arange(20.0) / 5.0)
    z = F.conv1d(
        F.pad(drive.reshape(-1, 1, n_times), (19, 0)),  # (n_batch * n_seg, 1, .)
        kernel.flip(0)[None, None],
    ).reshape(n_batch, N_SEG, n_times)  # back to (n_batch, n_seg, n_times)
    z = (z - z.mean()) / z.std()
    vmem = -65.0 + 4.0 * z  # mV
    spike = (z[:, 0] > 1.5).float()
    return counts, vmem, spike


def loss_fn(model: Surrogate, out: SurrogateOutput, vmem, spike) -> torch.Tensor:
    loss = F.mse_loss(model.normalize_vmem(out.vmem), model.normalize_vmem(vmem))
    loss = loss + F.binary_cross_entropy_with_logits(out.spike_logit, spike)
    for aux in out.aux_losses.values():
        loss = loss + 0.01 * aux
    return loss


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch", ARCHS)
def test_head_trains(arch, device, seed):
    model = make_model(arch, seed, device, dropout=0.0)
    model.set_normalization(np.full(N_SEG, -65.0), np.full(N_SEG, 4.0))
    counts, vmem, spike = (x.to(device) for x in synthetic_task(seed))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(25):
        loss = loss_fn(model, model(counts), vmem, spike)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert losses[-1] < 0.8 * losses[0], f"loss did not fall: {losses}"


@pytest.mark.parametrize("exclusion", ["exclusive", "exclusion"])
@pytest.mark.parametrize("seed", SEEDS)
def test_mmoeex_gates_stay_exactly_zero(exclusion, seed):
    model = make_model("mmoeex", seed, exclusivity=0.5, exclusion=exclusion)
    mask = model.head.gate_mask
    tied = model.head.expert_task >= 0
    assert int(tied.sum()) == 2  # floor(0.5 * 4 experts)
    allowed_per_tied = mask[:, tied].sum(dim=0)
    n_towers = mask.shape[0]
    expected = 1 if exclusion == "exclusive" else n_towers - 1
    assert (allowed_per_tied == expected).all()
    assert mask[:, ~tied].all()

    counts, vmem, spike = synthetic_task(seed)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(6):
        out = model(counts)
        loss = loss_fn(model, out, vmem, spike) + out.aux_losses["load_balance"]
        opt.zero_grad()
        loss.backward()
        opt.step()
        gates = model.gate_weights(counts).detach()  # (b, task, expert, t)
        forbidden = gates.permute(1, 2, 0, 3)[~mask]
        assert_array_equal(
            np_(forbidden), 0.0, err_msg="gate weight of an excluded expert"
        )
        assert_allclose(
            np_(gates.sum(dim=2)), 1.0, rtol=0, atol=1e-6, err_msg="gate sums"
        )


def test_mmoeex_assignment_uses_generator_only():
    config = small_config("mmoeex", n_experts=8, exclusivity=0.5)
    torch.manual_seed(1)
    a = Surrogate(config, generator=torch.Generator().manual_seed(5))
    torch.manual_seed(2)
    b = Surrogate(config, generator=torch.Generator().manual_seed(5))
    assert_array_equal(
        np_(a.head.expert_task), np_(b.head.expert_task), err_msg="expert_task"
    )
    # without a generator: a fresh one seeded with 0 (config: exclusivity_seed)
    c = MMoEEx(16, TASKS, n_experts=8, exclusivity=0.5)
    d = MMoEEx(16, TASKS, 8, generator=torch.Generator().manual_seed(0))
    assert_array_equal(np_(c.expert_task), np_(d.expert_task), err_msg="seed 0")
    with pytest.raises(ValueError, match="exclusivity must leave at least one"):
        MMoEEx(16, TASKS, n_experts=4, exclusivity=1.0)


# ---------------------------------------------------------------- streaming


@pytest.mark.parametrize("chunk", [1, 7, 28, 29, 50, 1000])
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("arch", ARCHS)
def test_streaming_equals_one_shot(arch, device, seed, chunk):
    model = make_model(arch, seed, device).eval()
    assert model.receptive_field == 29  # chunks 28, 29: just below and at it
    counts = random_counts(seed, n_batch=3, n_times=120)
    with torch.no_grad():
        full = model(counts.to(device))
    streamed = predict_stream(model, counts, chunk)
    assert streamed.vmem.device == counts.device
    for name in ("vmem", "spike_logit"):
        assert_allclose(
            np_(getattr(streamed, name)),
            np_(getattr(full, name)),
            rtol=0,
            atol=ATOL32,
            err_msg=f"streamed {name}, chunk {chunk}",
        )
    assert streamed.aux_losses == {}


@pytest.mark.parametrize("arch", ARCHS)
def test_streaming_sparse_and_constant_memory(arch):
    model = make_model(arch, 0).eval()
    counts = random_counts(0, n_times=90)
    with torch.no_grad():
        full = model(counts)
    streamed = predict_stream(model, counts.to_sparse(), 13)
    assert_allclose(
        np_(streamed.vmem), np_(full.vmem), rtol=0, atol=ATOL32, err_msg="sparse"
    )
    array = counts.numpy().astype(np.int16)  # e.g. a read-only memory map
    array.flags.writeable = False
    streamed = predict_stream(model, array, 40)
    assert streamed.vmem.device.type == "cpu"
    assert_allclose(
        np_(streamed.vmem), np_(full.vmem), rtol=0, atol=ATOL32, err_msg="ndarray"
    )

    # the state does not grow with duration
    state = model.init_state(2)
    sizes = []
    with torch.no_grad():
        for t0 in range(0, 90, 30):
            _, state = model.step(counts[..., t0 : t0 + 30], state)
            sizes.append(state.nbytes)
    assert isinstance(state, StreamingState) and state.n_times == 90
    assert len(set(sizes)) == 1

    with pytest.raises(ValueError, match="n_batch of the stream"):
        model.step(counts[:1, ..., :5], state)
    model.train()
    with pytest.raises(RuntimeError, match="call model.eval"):
        next(iter_stream(model, [counts]))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("local_kernel", [5, 40])
def test_local_input_path(local_kernel, seed):
    model = make_model("mh", seed, local_kernel=local_kernel).eval()
    assert model.receptive_field == max(29, local_kernel)
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        model.local.weight.copy_(torch.randn(N_SEG, 2, local_kernel, generator=gen))
    counts = random_counts(seed, n_times=100)
    with torch.no_grad():
        out = model(counts)
        local = model.local.weight.clone()
        model.local.weight.zero_()
        without = model(counts)
        model.local.weight.copy_(local)
    # oracle: each segment's own counts convolved causally with its kernels
    x, w = np_(counts), np_(local)
    expected = np.zeros((2, N_SEG, 100))
    for s in range(N_SEG):
        for c in range(2):
            for b in range(2):
                expected[b, s] += np.convolve(x[b, c, s], w[s, c, ::-1])[:100]
    scale = np_(model.vmem_scale)[:, None]
    assert_allclose(
        np_(out.vmem - without.vmem) / scale,
        expected,
        rtol=1e-5,
        atol=1e-4,
        err_msg="local path against numpy convolution",
    )
    # causal, and streams like one-shot prediction
    changed = counts.clone()
    changed[..., 60] += 2.0
    with torch.no_grad():
        other = model(changed)
    assert_array_equal(
        np_(out.vmem[..., :60]), np_(other.vmem[..., :60]), err_msg="causality"
    )
    for chunk in (1, local_kernel - 1, 33):
        streamed = predict_stream(model, counts, chunk)
        assert_allclose(
            np_(streamed.vmem),
            np_(out.vmem),
            rtol=0,
            atol=1e-4,
            err_msg=f"streamed with the local path, chunk {chunk}",
        )
    sparse = predict_stream(model, counts.to_sparse(), 17)
    assert_allclose(
        np_(sparse.vmem), np_(out.vmem), rtol=0, atol=1e-4, err_msg="sparse input"
    )


def test_layer_norm_variant_is_causal_and_streams():
    model = make_model("mmoe", 0, norm="layer").eval()
    counts = random_counts(0, n_times=60)
    changed = counts.clone()
    changed[..., 30] += 3.0
    with torch.no_grad():
        full, other = model(counts), model(changed)
    assert_array_equal(
        np_(full.vmem[..., :30]), np_(other.vmem[..., :30]), err_msg="causality"
    )
    streamed = predict_stream(model, counts, 11)
    assert_allclose(
        np_(streamed.vmem), np_(full.vmem), rtol=0, atol=ATOL32, err_msg="streamed"
    )


@pytest.mark.parametrize("arch", ARCHS)
def test_batch_equals_single_inputs(arch):
    model = make_model(arch, 0).eval()
    counts = random_counts(3, n_batch=4, n_times=40)
    with torch.no_grad():
        batch = model(counts)
        for b in range(4):
            single = model(counts[b : b + 1])
            assert_allclose(
                np_(single.vmem[0]),
                np_(batch.vmem[b]),
                rtol=0,
                atol=ATOL32,
                err_msg=f"input {b} alone vs in a batch",
            )


# ---------------------------------------------------------------- inputs


def test_sparse_counts_match_binned():
    rng = np.random.default_rng(0)
    items = []
    for _ in range(2):
        n_exc, n_inh = 200, 80
        items.append(
            SpikeTrains(
                exc_seg=rng.integers(0, N_SEG, n_exc),
                exc_t=rng.uniform(1e-3, 50.0, n_exc),
                inh_seg=rng.integers(0, N_SEG, n_inh),
                inh_t=np.append(rng.uniform(1e-3, 50.0, n_inh - 1), 50.0),
                n_seg=N_SEG,
                duration=50.0,
            )
        )
    sparse = sparse_counts(items, interval=0.5)
    dense = np.stack([s.binned(0.5) for s in items])
    assert sparse.shape == dense.shape
    assert_array_equal(np_(sparse.to_dense()), dense, err_msg="binned counts")

    model = make_model("mmoe", 0).eval()
    with torch.no_grad():
        a, b = model(sparse), model(torch.from_numpy(dense))
    assert_allclose(
        np_(a.vmem), np_(b.vmem), rtol=0, atol=ATOL32, err_msg="sparse vs dense"
    )


@pytest.mark.parametrize("seed", SEEDS)
def test_input_projection_paths_agree(seed):
    counts = random_counts(seed, n_times=400, rate=0.005)  # dense, ~0.5 % spikes
    results = {}
    for name, sparse_below in (("gemm", 0.0), ("auto", 0.02), ("coo", 0.0)):
        torch.manual_seed(seed)
        proj = InputProjection(N_SEG, 8, sparse_below=sparse_below)
        h = proj(counts.to_sparse() if name == "coo" else counts)
        h.square().sum().backward()
        results[name] = (np_(h), np_(proj.weight.grad))
    for name in ("auto", "coo"):
        for i, what in enumerate(("features", "weight gradient")):
            assert_allclose(
                results[name][i],
                results["gemm"][i],
                rtol=1e-5,
                atol=1e-6,
                err_msg=f"{what}: {name} path vs GEMM",
            )


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((2, N_SEG, 10), "add a batch axis"),
        ((1, 3, N_SEG, 10), r"must have shape \(n_batch, 2, n_seg, n_times\)"),
        ((1, 2, N_SEG + 1, 10), "n_seg = 12"),
        ((1, 2, N_SEG, 0), "n_times >= 1"),
    ],
)
def test_wrong_input_shape(shape, match):
    model = make_model("mh", 0)
    with pytest.raises(ValueError, match=match):
        model(torch.zeros(shape))


def test_wrong_input_type():
    model = make_model("mh", 0)
    with pytest.raises(TypeError, match="counts must be a torch.Tensor"):
        model([[0.0]])
    with pytest.raises(TypeError, match="real counts"):
        model(torch.zeros(1, 2, N_SEG, 5, dtype=torch.bool))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device available")
def test_wrong_device():
    model = make_model("mh", 0, "cuda")
    with pytest.raises(ValueError, match="model's device"):
        model(torch.zeros(1, 2, N_SEG, 5))


# ---------------------------------------------------------------- config


@pytest.mark.parametrize("arch", ARCHS)
def test_config_round_trip(arch):
    config = small_config(arch, task_of_seg=np.array(TASKS), exclusion="exclusion")
    d = json.loads(json.dumps(config.to_dict()))
    again = ModelConfig.from_dict(d)
    assert again == config
    assert again.n_tasks == 3 and again.widths == (16, 16, 16)

    # the same config and weights give the same network
    model = make_model(arch, 0).eval()
    other = build_model(model.config.to_dict()).eval()
    other.load_state_dict(model.state_dict())
    counts = random_counts(0, n_times=30)
    with torch.no_grad():
        assert_allclose(
            np_(other(counts).vmem),
            np_(model(counts).vmem),
            rtol=0,
            atol=0,
            err_msg="vmem after a state_dict round trip",
        )


def test_unknown_arch():
    with pytest.raises(
        ValueError, match="arch must be one of 'linear', 'mh', 'mmoe', 'mmoeex'"
    ):
        ModelConfig(n_seg=N_SEG, arch="transformer")
    with pytest.raises(ValueError, match="arch must be one of"):
        build_model({"n_seg": N_SEG, "arch": "lstm"})


@pytest.mark.parametrize(
    ("changes", "error", "match"),
    [
        (dict(widths=(16, 16)), ValueError, "one entry per block"),
        (dict(task_of_seg=[0] * 6 + [2] * 6), ValueError, "renumber"),
        (dict(n_tasks=4), ValueError, "n_tasks must match task_of_seg"),
        (dict(task_of_seg=[0] * 5), ValueError, r"shape \(n_seg,\)"),
        (dict(dropout=1.0), ValueError, r"dropout must be in \[0, 1\)"),
        (dict(norm="batch"), ValueError, "norm must be one of"),
        (dict(exclusion="some"), ValueError, "exclusion must be one of"),
        (dict(dilations=(1, 0, 2)), ValueError, "dilations must hold positive"),
        (dict(kernel_sizes="3"), TypeError, "kernel_sizes must be a sequence"),
        (dict(n_seg=0), ValueError, "n_seg must be finite and > 0"),
    ],
)
def test_config_errors(changes, error, match):
    with pytest.raises(error, match=match):
        small_config("mh", **changes)


def test_from_dict_errors():
    with pytest.raises(ValueError, match=r"model.json: unknown ModelConfig field"):
        ModelConfig.from_dict({"n_seg": 3, "width": 8}, source="model.json")
    with pytest.raises(ValueError, match="missing field 'n_seg'"):
        ModelConfig.from_dict({"arch": "mh"})


def test_registry():
    assert set(ARCHS) <= set(list_models())
    with pytest.raises(ValueError, match="already registered"):

        @register_model("mh")
        class Other(MH):
            pass

    @register_model("test_tiny")
    class Tiny(MH):
        pass

    try:
        assert "test_tiny" in list_models()
        model = build_model(small_config("test_tiny"))
        assert isinstance(model.head, Tiny)
    finally:
        _registry._HEADS.pop("test_tiny")
    with pytest.raises(TypeError, match="from_config"):
        register_model("plain")(torch.nn.Linear)


# ---------------------------------------------------------------- size


def test_normalization():
    model = make_model("mh", 0).eval()
    counts = random_counts(0, n_times=30)
    with torch.no_grad():
        z = model(counts).vmem
        mean, scale = np.linspace(-70, -60, N_SEG), np.linspace(1, 5, N_SEG)
        model.set_normalization(mean, scale)
        vmem = model(counts).vmem
    expected = np_(z) * scale[:, None] + mean[:, None]
    assert_allclose(np_(vmem), expected, rtol=1e-6, atol=1e-4, err_msg="vmem in mV")
    assert_allclose(
        np_(model.normalize_vmem(vmem)), np_(z), rtol=0, atol=1e-5, err_msg="inverse"
    )
    with pytest.raises(ValueError, match="scale must be > 0"):
        model.set_normalization(mean, -scale)
    with pytest.raises(ValueError, match=r"mean must have shape \(n_seg,\)"):
        model.set_normalization(mean[:3], scale)


@pytest.mark.parametrize("arch", ARCHS)
def test_default_size_for_l5_cell(arch):
    regions = np.repeat(np.arange(6), [1, 40, 300, 60, 250, 262])  # 913 segments
    model = build_model(ModelConfig(n_seg=913, arch=arch, task_of_seg=regions))
    n = sum(p.numel() for p in model.parameters())
    assert model.n_parameters == n
    assert 4 * n < 25e6, f"{n} parameters ({4 * n / 1e6:.1f} MB of float32)"
    assert model.receptive_field == 253
