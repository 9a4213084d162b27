"""Behaviour of the SR block itself (PAPER.md §1)."""

from __future__ import annotations

import copy
import io

import pytest
import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode

from srblock.layers import SRBlock, SRBlock1d, SRBlock2d, SRBlock3d, capture_memory_weights, sr_param_count

# (block class, channels, feat_size, input shape without the batch axis)
RANKS = [
    (SRBlock1d, 6, (10,), (6, 10)),
    (SRBlock2d, 6, (5, 4), (6, 5, 4)),
    (SRBlock3d, 6, (3, 4, 2), (6, 3, 4, 2)),
]
RANK_IDS = ["1d", "2d", "3d"]


def make(cls=SRBlock2d, channels=6, feat_size=(5, 4), **kwargs) -> nn.Module:
    kwargs.setdefault("num_memories", 3)
    kwargs.setdefault("hidden", 4)
    return cls(channels, feat_size, **kwargs)


@pytest.mark.parametrize(("cls", "channels", "feat_size", "shape"), RANKS, ids=RANK_IDS)
def test_identity_at_init(cls, channels, feat_size, shape):
    block = make(cls, channels, feat_size)
    x = torch.randn(4, *shape)
    assert torch.equal(block(x), x)


def test_plain_name_is_2d():
    assert SRBlock is SRBlock2d
    assert make().feat_size == (5, 4)
    assert SRBlock2d(6, 7, num_memories=2, hidden=2).feat_size == (7, 7)


def test_first_step_moves_only_the_memory():
    block = make()
    before = copy.deepcopy(block.state_dict())
    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    block(torch.randn(8, 6, 5, 4)).square().mean().backward()
    for name, param in block.named_parameters():
        has_grad = param.grad is not None and bool(param.grad.abs().sum() > 0)
        assert has_grad == (name == "memory"), name
    opt.step()
    moved = {name for name, value in block.state_dict().items() if not torch.equal(value, before[name])}
    assert moved == {"memory"}


def test_squeeze_and_fcn_learn_after_a_few_steps():
    block = make()
    opt = torch.optim.SGD(block.parameters(), lr=0.1)
    x, target = torch.randn(8, 6, 5, 4), torch.randn(8, 6, 5, 4)
    for _ in range(3):
        opt.zero_grad()
        (block(x) - target).square().mean().backward()
        opt.step()
    for name in ("squeeze.weight", "fc1.weight", "fc2.weight"):
        assert block.get_parameter(name).grad.abs().sum() > 0, name


def test_no_bias_parameters_and_paper_init_bounds():
    block = SRBlock2d(64, 8, num_memories=4, hidden=8)
    assert not any("bias" in name for name, _ in block.named_parameters())
    assert block.squeeze.weight.abs().max() <= (1 / 64) ** 0.5  # uniform(-sqrt(k), sqrt(k)), k = 1/C
    assert block.fc1.weight.abs().max() <= (1 / 64) ** 0.5
    assert block.fc2.weight.abs().max() <= (1 / 8) ** 0.5
    assert isinstance(block.act, nn.Identity)


@pytest.mark.parametrize(
    ("channels", "feat_size", "hidden", "memories"),
    [(64, (32, 32), 8, 2), (256, (8, 8), 8, 10), (512, (4, 4), 8, 12), (1024, (14, 14), 16, 10), (3, (5, 7), 1, 1)],
)
def test_param_count_matches_eq1(channels, feat_size, hidden, memories):
    block = SRBlock2d(channels, feat_size, num_memories=memories, hidden=hidden, device="meta")
    h, w = feat_size
    expected = channels + h * w * hidden + hidden * memories + memories * channels * h * w
    assert sr_param_count(channels, feat_size, hidden, memories) == expected
    assert sum(p.numel() for p in block.parameters()) == expected


@pytest.mark.parametrize(("cls", "channels", "feat_size", "shape"), RANKS, ids=RANK_IDS)
def test_param_count_matches_eq1_every_rank(cls, channels, feat_size, shape):
    block = make(cls, channels, feat_size)
    expected = sr_param_count(channels, feat_size, 4, 3, spatial_dims=cls.spatial_dims)
    assert sum(p.numel() for p in block.parameters()) == expected


def test_weights_sum_to_one_per_sample_and_match_the_output():
    block = make(memory_init="normal", memory_std=1.0)
    x = torch.randn(5, 6, 5, 4)
    with capture_memory_weights(block) as captured:
        out = block(x)
    (weights,) = captured[""]
    assert weights.shape == (5, 3)
    torch.testing.assert_close(weights.sum(1), torch.ones(5))
    recalled = torch.einsum("bp,pchw->bchw", weights, block.memory)
    torch.testing.assert_close(out, x + recalled)


def test_capture_removes_its_hooks():
    block = make()
    with capture_memory_weights(nn.Sequential(block)) as captured:
        block(torch.randn(2, 6, 5, 4))
    assert list(captured) == ["0"] and len(captured["0"]) == 1
    block(torch.randn(2, 6, 5, 4))
    assert len(captured["0"]) == 1
    assert not block.softmax._forward_hooks


def test_samples_in_a_batch_are_independent():
    block = make(memory_init="normal", memory_std=1.0)
    x = torch.randn(4, 6, 5, 4, requires_grad=True)
    out = block(x)
    torch.testing.assert_close(out[2:3], block(x[2:3].detach()))
    out[1].sum().backward()
    grad_per_sample = x.grad.flatten(1).abs().sum(1)
    assert grad_per_sample[1] > 0
    assert torch.all(grad_per_sample[[0, 2, 3]] == 0)


@pytest.mark.parametrize(("cls", "channels", "feat_size", "shape"), RANKS, ids=RANK_IDS)
def test_gradcheck(cls, channels, feat_size, shape):
    block = make(cls, 3, feat_size, memory_init="normal", memory_std=0.5, dtype=torch.float64)
    x = torch.randn(2, 3, *shape[1:], dtype=torch.float64, requires_grad=True)
    names = [name for name, _ in block.named_parameters()]

    def fn(x, *weights):
        return torch.func.functional_call(block, dict(zip(names, weights, strict=True)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *(p.detach().requires_grad_() for p in block.parameters())))


def test_gradcheck_interpolate_other_size():
    block = make(size_policy="interpolate", memory_init="normal", memory_std=0.5, dtype=torch.float64)
    x = torch.randn(2, 6, 7, 9, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(block, (x,))


def test_strict_rejects_other_size():
    block = make()
    with pytest.raises(ValueError, match=r"built for spatial size \(5, 4\), got \(6, 4\).*interpolate"):
        block(torch.randn(1, 6, 6, 4))


@pytest.mark.parametrize(("cls", "channels", "feat_size", "shape"), RANKS, ids=RANK_IDS)
def test_interpolate_equals_strict_at_trained_size(cls, channels, feat_size, shape):
    strict = make(cls, channels, feat_size, memory_init="normal")
    loose = make(cls, channels, feat_size, size_policy="interpolate")
    loose.load_state_dict(strict.state_dict())
    x = torch.randn(3, *shape)
    assert torch.equal(strict(x), loose(x))


@pytest.mark.parametrize(
    ("cls", "feat_size", "other"),
    [(SRBlock1d, (10,), (17,)), (SRBlock2d, (5, 4), (9, 3)), (SRBlock3d, (3, 4, 2), (6, 2, 5))],
    ids=RANK_IDS,
)
def test_interpolate_runs_at_other_sizes(cls, feat_size, other):
    block = make(cls, 6, feat_size, size_policy="interpolate", memory_init="normal")
    x = torch.randn(2, 6, *other)
    out = block(x)
    assert out.shape == x.shape
    assert not torch.equal(out, x)


def test_interpolate_resizes_a_constant_memory_to_a_constant():
    block = make(size_policy="interpolate", memory_init=lambda m: m.fill_(0.5))
    x = torch.zeros(2, 6, 11, 13)
    torch.testing.assert_close(block(x), torch.full_like(x, 0.5))


@pytest.mark.parametrize(
    ("x", "message"),
    [
        (torch.randn(2, 5, 5, 4), "built for 6 channels, got 5"),
        (torch.randn(2, 6, 5), r"expects a 4-d input .* got shape \(2, 6, 5\)"),
        (torch.ones(2, 6, 5, 4, dtype=torch.long), "floating-point input, got dtype torch.int64"),
    ],
    ids=["channels", "rank", "dtype"],
)
def test_bad_input_errors(x, message):
    with pytest.raises(ValueError, match=message):
        make()(x)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"num_memories": 0}, "num_memories must be a positive int, got 0"),
        ({"hidden": -1}, "hidden must be a positive int, got -1"),
        ({"channels": 0}, "channels must be a positive int, got 0"),
        ({"num_memories": True}, "num_memories must be a positive int, got True"),
        ({"memory_std": -1.0}, "memory_std must be a finite number >= 0, got -1.0"),
        ({"feat_size": (5, 0)}, "feat_size entries must be positive"),
        ({"feat_size": (5, 4, 3)}, "feat_size must have 2 entries"),
        ({"memory_init": "ones"}, "memory_init must be one of"),
        ({"size_policy": "crop"}, "size_policy must be one of"),
        ({"logit_scale": 0}, "logit_scale must be a finite number > 0, got 0"),
        ({"logit_scale": True}, "logit_scale must be a finite number > 0, got True"),
        ({"logit_scale": float("nan")}, "logit_scale must be a finite number > 0, got nan"),
    ],
)
def test_bad_construction_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        make(**kwargs)


def test_symmetry_breaking_inits_give_the_squeeze_gradient_at_step_one():
    for init in ("normal", "uniform", nn.init.orthogonal_):
        block = make(memory_init=init)
        assert block.memory.abs().sum() > 0
        block(torch.randn(4, 6, 5, 4)).square().mean().backward()
        assert block.squeeze.weight.grad.abs().sum() > 0, init


def test_act_layer_between_fcn_layers():
    block = make(act_layer=nn.ReLU)
    assert isinstance(block.act, nn.ReLU)
    assert [type(m) for m in block.children()][:4] == [nn.Conv2d, nn.Linear, nn.ReLU, nn.Linear]


def test_reset_parameters_restores_identity():
    block = make(memory_init="normal")
    block.memory_init = "zeros"
    block.reset_parameters()
    x = torch.randn(2, 6, 5, 4)
    assert torch.equal(block(x), x)


def test_meta_device_construction_then_materialise():
    block = make(device="meta")
    assert all(p.is_meta for p in block.parameters())
    block = block.to_empty(device="cpu")
    block.reset_parameters()
    x = torch.randn(2, 6, 5, 4)
    assert torch.equal(block(x), x)


def test_state_dict_round_trip():
    block = make(memory_init="normal")
    buffer = io.BytesIO()
    torch.save(block.state_dict(), buffer)
    buffer.seek(0)
    twin = make()
    twin.load_state_dict(torch.load(buffer, weights_only=True))
    x = torch.randn(3, 6, 5, 4)
    assert torch.equal(block(x), twin(x))
    assert set(block.state_dict()) == {"squeeze.weight", "fc1.weight", "fc2.weight", "memory"}


def test_bf16_autocast_on_cpu():
    block = make(memory_init="normal")
    x = torch.randn(3, 6, 5, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x)
    assert out.dtype == torch.float32
    torch.testing.assert_close(out, block(x), atol=2e-2, rtol=2e-2)
    y = block.to(torch.bfloat16)(x.bfloat16())
    assert y.dtype == torch.bfloat16


def test_torchscript_trace_matches_eager():
    block = make(memory_init="normal").eval()
    x = torch.randn(3, 6, 5, 4)
    traced = torch.jit.trace(block, x)
    z = torch.randn(2, 6, 5, 4)  # another batch size than traced with
    torch.testing.assert_close(traced(z), block(z))


def test_torch_export_matches_eager():
    block = make(memory_init="normal").eval()
    x = torch.randn(3, 6, 5, 4)
    exported = torch.export.export(block, (x,))
    torch.testing.assert_close(exported.module()(x), block(x))


def test_onnx_export_matches_onnxruntime(tmp_path):
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnxscript")
    block = make(memory_init="normal").eval()
    x = torch.randn(3, 6, 5, 4)
    path = tmp_path / "sr.onnx"
    torch.onnx.export(block, (x,), str(path), input_names=["x"], output_names=["y"], dynamo=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (onnx_out,) = session.run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(onnx_out), block(x), atol=1e-5, rtol=1e-5)


@pytest.mark.slow
def test_torch_compile_matches_eager():
    block = make(memory_init="normal").eval()
    compiled = torch.compile(block)
    x = torch.randn(3, 6, 5, 4)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), block(x))
        nn.init.normal_(block.fc2.weight)  # the compiled graph forms W2 W1 itself, so it follows the change
        torch.testing.assert_close(compiled(x), block(x))
    block.train()
    compiled(x).square().sum().backward()
    compiled_grads = [p.grad.clone() for p in block.parameters()]
    block.zero_grad()
    block(x).square().sum().backward()
    for got, expected in zip(compiled_grads, (p.grad for p in block.parameters()), strict=True):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------------------------
# The fused forward (one bmm, one mm, softmax, one addmm) against the paper's block written step by step
# --------------------------------------------------------------------------------------------------------------


def paper_forward(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The block as PAPER.md §1 writes it, one module per step (the implementation before the fusion)."""
    z = block.squeeze(x).flatten(1)
    weights = torch.softmax(block.fc2(block.act(block.fc1(z))), dim=1)
    return x + (weights @ block.memory.flatten(1)).view_as(x)


def _leaves(tree) -> list:
    if isinstance(tree, (list, tuple)):
        return [leaf for item in tree for leaf in _leaves(item)]
    if isinstance(tree, dict):
        return _leaves(list(tree.values()))
    return [tree]


class KernelCounter(TorchDispatchMode):
    """Records the aten ops that write memory, i.e. those that launch a kernel on a GPU.

    An op counts if it mutates an argument or returns a tensor whose storage none of its inputs has; views,
    reshapes and no-op casts share their input's storage and are free.
    """

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        storages = {t.untyped_storage().data_ptr() for t in _leaves([args, kwargs]) if isinstance(t, torch.Tensor)}
        fresh = any(t.untyped_storage().data_ptr() not in storages for t in _leaves(out) if isinstance(t, torch.Tensor))
        if fresh or func._schema.is_mutable:
            self.ops.append(func.overloadpacket.__name__)
        return out


def assert_matches(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-6) -> None:
    """Equal within ``rtol`` relative to each element and to the tensor's scale (elements near 0 have no rtol)."""
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * float(expected.detach().abs().max()))


@pytest.mark.parametrize("act_layer", [None, nn.ReLU], ids=["paper", "relu"])
@pytest.mark.parametrize(("cls", "channels", "feat_size", "shape"), RANKS, ids=RANK_IDS)
def test_fused_forward_equals_paper_steps_in_fp32(cls, channels, feat_size, shape, act_layer):
    block = make(cls, channels, feat_size, act_layer=act_layer, memory_init="normal", memory_std=1.0)
    x = torch.randn(5, *shape)
    for training in (True, False):
        block.train(training)
        out = block(x)
        assert_matches(out, paper_forward(block, x))
        assert not torch.allclose(out, x, atol=1e-2)  # the memory really contributes


def test_fused_forward_equals_paper_steps_at_paper_sizes():
    torch.manual_seed(0)
    for channels, size, hidden, memories in [(256, 8, 8, 10), (1024, 14, 16, 10)]:
        block = SRBlock2d(channels, size, num_memories=memories, hidden=hidden, memory_init="normal").eval()
        x = torch.randn(3, channels, size, size).relu()  # post-ReLU stage outputs, as in the paper's placement
        with torch.no_grad():
            block(x)  # the second call runs on the kept routing product
            assert_matches(block(x), paper_forward(block, x))


@pytest.mark.parametrize("act_layer", [None, nn.ReLU], ids=["paper", "relu"])
def test_fused_gradients_equal_paper_steps(act_layer):
    block = make(SRBlock2d, 16, (6, 5), act_layer=act_layer, memory_init="normal", memory_std=1.0)
    x = torch.randn(4, 16, 6, 5)
    grad_out = torch.randn_like(x)
    grads = {}
    for name, forward in (("fused", block), ("paper", lambda t: paper_forward(block, t))):
        block.zero_grad()
        xg = x.clone().requires_grad_()
        forward(xg).backward(grad_out)
        grads[name] = {"x": xg.grad, **{n: p.grad.clone() for n, p in block.named_parameters()}}
    for name, expected in grads["paper"].items():
        assert expected.abs().sum() > 0, name
        assert_matches(grads["fused"][name], expected, rtol=1e-5)


@pytest.mark.parametrize("size_policy", ["strict", "interpolate"])
def test_memory_weights_are_the_weights_forward_recalls_with(size_policy):
    torch.manual_seed(0)
    block = SRBlock(6, (3, 4), num_memories=5, hidden=3, logit_scale=4.0, size_policy=size_policy)
    sizes = [(3, 4)] + ([(6, 8)] if size_policy == "interpolate" else [])
    for size in sizes:  # the fused path at the trained size, the pooled one elsewhere
        x = torch.randn(7, 6, *size)
        with capture_memory_weights(block) as captured:
            block(x)
        assert torch.allclose(block.memory_weights(x), captured[""][0], atol=1e-6)
    with pytest.raises(ValueError, match="was built for 6 channels, got 5"):
        block.memory_weights(torch.randn(2, 5, 3, 4))


@pytest.mark.parametrize("act_layer", [None, nn.ReLU], ids=["paper", "relu"])
def test_logit_scale_sharpens_the_paper_softmax(act_layer):
    block = make(SRBlock2d, 16, (6, 5), act_layer=act_layer, memory_init="normal", memory_std=1.0, logit_scale=8)
    x = torch.randn(7, 16, 6, 5)
    logits = block.fc2(block.act(block.fc1(block.squeeze(x).flatten(1))))
    expected = torch.softmax(8 * logits, dim=1)
    for training, layout in ((True, torch.contiguous_format), (False, torch.contiguous_format), (False, None)):
        block.train(training)
        inp = x if layout else x.to(memory_format=torch.channels_last)  # channels_last: the step-by-step path
        with torch.no_grad(), capture_memory_weights(block) as captured:
            out = block(inp)
        assert_matches(captured[""][0], expected, rtol=1e-5)
        assert_matches(out, inp + (captured[""][0] @ block.memory.flatten(1)).view_as(x))

    def entropy(w):
        return float(-(w * w.log()).sum(1).mean())

    assert entropy(expected) < entropy(torch.softmax(logits, dim=1))


def test_eval_follows_a_logit_scale_change():
    block = make(memory_init="normal", memory_std=1.0).eval()
    x = torch.randn(3, 6, 5, 4)
    with torch.no_grad():
        paper = block(x)
        block.logit_scale = 5.0
        sharp = block(x)
    assert "logit_scale=5" in repr(block)
    block.logit_scale = 1.0
    with torch.no_grad():
        assert torch.equal(block(x), paper) and not torch.allclose(sharp, paper)


def test_eval_forward_launches_at_most_four_kernels():
    block = SRBlock2d(64, 8, num_memories=10, hidden=16, memory_init="normal").eval()
    x = torch.randn(4, 64, 8, 8)
    for no_autograd in (torch.no_grad, torch.inference_mode):
        with no_autograd():
            block(x)  # the first call after eval() multiplies W2 W1 once
            with KernelCounter() as fused:
                out = block(x)
            with KernelCounter() as paper:
                expected = paper_forward(block, x)
        assert_matches(out, expected)
        assert len(fused.ops) <= 4, fused.ops
        assert fused.ops[0] == "bmm" and fused.ops[-1] == "addmm", fused.ops  # the squeeze ... the recall and add
        assert len(paper.ops) >= 6, paper.ops  # the counter sees every step of the unfused block


def test_training_forward_launches_at_most_five_kernels():
    block = SRBlock2d(64, 8, num_memories=10, hidden=16, memory_init="normal")
    x = torch.randn(4, 64, 8, 8, requires_grad=True)
    with KernelCounter() as counter:
        block(x)
    assert len(counter.ops) <= 5, counter.ops
    assert counter.ops.count("mm") == 2, counter.ops  # W2 W1 is formed in the graph, so both FCN layers learn


def _edits() -> list:
    def step(block):
        opt = torch.optim.SGD(block.parameters(), lr=1.0)
        paper_forward(block, torch.randn(2, 6, 5, 4)).square().sum().backward()
        opt.step()

    def load(block):
        block.load_state_dict(make(memory_init="normal").state_dict())

    def init_in_place(block):
        with torch.no_grad():
            block.fc1.weight.mul_(-3.0)

    def replace(block):
        block.fc2.weight = nn.Parameter(torch.randn_like(block.fc2.weight))

    def through_data(block):  # bypasses the version counter: a switch of mode drops the kept product
        block.fc1.weight.data.mul_(-3.0)
        block.train().eval()

    return [step, load, init_in_place, replace, through_data]


@pytest.mark.parametrize("edit", _edits(), ids=lambda f: f.__name__)
def test_eval_follows_every_parameter_change(edit):
    block = make(memory_init="normal", memory_std=1.0).eval()
    x = torch.randn(3, 6, 5, 4)
    with torch.no_grad():
        before = block(x)
    edit(block)
    with torch.no_grad():
        after = block(x)
        assert_matches(after, paper_forward(block, x))
    assert not torch.allclose(after, before)


def test_eval_follows_a_dtype_change():
    block = make(memory_init="normal", memory_std=1.0).eval()
    x = torch.randn(3, 6, 5, 4)
    with torch.no_grad():
        block(x)
        block.double()
        out = block(x.double())
    assert out.dtype == torch.float64
    assert_matches(out, paper_forward(block, x.double()))


def test_repeated_eval_calls_keep_the_routing_product():
    block = make(memory_init="normal").eval()
    x = torch.randn(2, 6, 5, 4)
    with torch.no_grad():
        block(x)
        block.eval()  # loops that call model.eval() before every batch (analysis.timing.eval_step does)
        with KernelCounter() as counter:
            block(x)
    assert counter.ops.count("mm") == 1, counter.ops  # only a = (W2 W1) z, not W2 W1 again


def test_eval_with_autograd_gives_the_routing_gradient():
    block = make(memory_init="normal", memory_std=1.0).eval()
    with torch.no_grad():
        block(torch.randn(2, 6, 5, 4))  # a kept product must not stand in for the parameters below
    block(torch.randn(3, 6, 5, 4)).square().sum().backward()
    assert block.fc1.weight.grad.abs().sum() > 0 and block.fc2.weight.grad.abs().sum() > 0


def test_trace_under_no_grad_keeps_the_parameters_live():
    block = make(memory_init="normal", memory_std=1.0).eval()
    x = torch.randn(3, 6, 5, 4)
    with torch.no_grad():
        block(x)
        traced = torch.jit.trace(block, x)
        nn.init.normal_(block.fc1.weight, std=3.0)
        assert_matches(traced(x), paper_forward(block, x), rtol=1e-5)


def test_vmap_over_stacked_blocks_under_no_grad():
    blocks = [make(memory_init="normal", memory_std=1.0).eval() for _ in range(3)]
    params, buffers = torch.func.stack_module_state(blocks)
    base = copy.deepcopy(blocks[0]).to("meta")
    x = torch.randn(2, 6, 5, 4)

    def run(p, b, x):
        return torch.func.functional_call(base, (p, b), (x,))

    with torch.no_grad():
        out = torch.vmap(run, in_dims=(0, 0, None))(params, buffers, x)
        for i, block in enumerate(blocks):
            assert_matches(out[i], paper_forward(block, x))


def test_channels_last_input_keeps_its_layout():
    block = make(SRBlock2d, 8, (5, 4), memory_init="normal", memory_std=1.0)
    x = torch.randn(3, 8, 5, 4)
    out = block(x.to(memory_format=torch.channels_last))
    assert out.is_contiguous(memory_format=torch.channels_last)
    assert_matches(out, block(x))


def test_bf16_autocast_keeps_a_bf16_input_in_bf16():
    block = make(memory_init="normal")
    x = torch.randn(3, 6, 5, 4).bfloat16()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = block(x)
    assert out.dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), paper_forward(block.float(), x.float()), atol=5e-2, rtol=2e-2)
