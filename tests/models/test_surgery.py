"""insert_sr / find_sr_blocks / remove_sr on torchvision, timm and hand-written models."""

from __future__ import annotations

import copy
import io

import pytest
import timm
import torch
import torchvision
from torch import nn

from srblock import SRBlock1d, SRBlock2d, capture_memory_weights, sr_param_count
from srblock.models import count_sr_params, create_model, find_sr_blocks, insert_sr, remove_sr

SIZE = (3, 32, 32)  # small inputs keep the ResNet50 forwards cheap; the memory is sized for them


@pytest.fixture(scope="module")
def tv_resnet50() -> nn.Module:
    return torchvision.models.resnet50().eval()


@pytest.fixture(scope="module")
def timm_resnet50() -> nn.Module:
    return timm.create_model("resnet50", pretrained=False).eval()


def _fill_memory(model: nn.Module) -> None:
    with torch.no_grad():
        for block in find_sr_blocks(model).values():
            block.memory.normal_()


@pytest.mark.parametrize(
    ("which", "after"), [("tv_resnet50", "layer3"), ("timm_resnet50", "layer3"), ("tv_resnet50", "layer4.2")]
)
def test_output_equals_original_at_init(which: str, after: str, request: pytest.FixtureRequest) -> None:
    original = request.getfixturevalue(which)
    model = copy.deepcopy(original)
    block = insert_sr(model, after, input_size=SIZE, num_memories=3, hidden=4)
    assert find_sr_blocks(model) == {f"{after}.sr": block}
    assert set(model.state_dict()) - set(original.state_dict()) == {
        f"{after}.sr.{k}" for k in ("memory", "squeeze.weight", "fc1.weight", "fc2.weight")
    }
    x = torch.randn(1, *SIZE)
    with torch.no_grad():
        expected = original(x)
        torch.testing.assert_close(model(x), expected)
        _fill_memory(model)  # the block is really on the path: a non-zero memory changes the output
        assert not torch.allclose(model(x), expected)


def test_sequential_target_gets_child_and_other_targets_a_hook(tv_resnet50: nn.Module) -> None:
    model = copy.deepcopy(tv_resnet50)
    insert_sr(model, "layer2", input_size=SIZE)
    insert_sr(model, "layer3.5", input_size=SIZE)
    assert list(dict(model.layer2.named_children()))[-1] == "sr"
    assert len(model.layer3[5]._forward_hooks) == 1
    assert model.layer2.sr.memory.shape == (2, 512, 4, 4)
    assert model.layer3[5].sr.memory.shape == (2, 1024, 2, 2)


def test_hooked_model_pickles_and_deepcopies() -> None:
    model = torchvision.models.resnet18().eval()
    insert_sr(model, "layer4.1", input_size=SIZE)
    _fill_memory(model)
    x = torch.randn(1, *SIZE)
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=False)
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), model(x))
        torch.testing.assert_close(copy.deepcopy(model)(x), model(x))


def test_unknown_name_lists_candidates(tv_resnet50: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"no submodule named 'layer5'.*Candidates: .*layer3, layer3\.0") as err:
        insert_sr(tv_resnet50, "layer5")
    assert "fc" in str(err.value)
    with pytest.raises(ValueError, match="Did you mean 'layer3'"):
        insert_sr(tv_resnet50, "layr3")
    with pytest.raises(ValueError, match="Candidates"):
        insert_sr(tv_resnet50, "")


def test_shared_module_is_rejected() -> None:
    model = torchvision.models.resnet18()
    with pytest.raises(ValueError, match="runs 2 times"):  # BasicBlock applies its one ReLU twice
        insert_sr(model, "layer1.0.relu", input_size=(3, 32, 32))


def test_unused_module_and_non_tensor_output_are_rejected() -> None:
    class Net(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3)
            self.unused = nn.Conv2d(4, 4, 3)
            self.pool = nn.AdaptiveAvgPool2d(1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.pool(self.conv(x)).flatten(1)

    with pytest.raises(ValueError, match="never runs"):
        insert_sr(Net(), "unused", input_size=(3, 8, 8))
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())
    with pytest.raises(ValueError, match="B x C x"):
        insert_sr(model, "1", input_size=(3, 8, 8))


def test_1d_model_gets_1d_block() -> None:
    model = nn.Sequential(nn.Conv1d(5, 6, 3, padding=1), nn.ReLU(), nn.Conv1d(6, 2, 1))
    block = insert_sr(model, "1", input_size=(5, 40), num_memories=4, hidden=3)
    assert isinstance(block, SRBlock1d) and block.memory.shape == (4, 6, 40)
    x = torch.randn(2, 5, 40)
    assert model(x).shape == (2, 2, 40)


def test_feat_size_builds_a_coarse_memory_that_the_block_resizes_to_the_input() -> None:
    """feat_size (beyond the paper) sizes the memory and the routing's input below the stage's output; the block
    pools the squeezed map down for the routing and adds the memory linearly resized to the input's length."""
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1))
    block = insert_sr(model, "0", input_size=(2, 40), num_memories=4, hidden=3, feat_size=5, size_policy="interpolate")
    assert block.memory.shape == (4, 3, 5) and block.fc1.in_features == 5
    assert sr_param_count(3, 5, hidden=3, num_memories=4, spatial_dims=1) == sum(p.numel() for p in block.parameters())
    x = torch.randn(2, 2, 40)
    features = model[0](x)
    torch.testing.assert_close(model(x), features)  # zero memory: the identity, as at the paper's size
    with torch.no_grad():
        block.memory.copy_(torch.linspace(0.0, 4.0, 5).expand(4, 3, 5))  # every memory the same ramp 0..4
    ramp = torch.nn.functional.interpolate(block.memory[:1], size=40, mode="linear", align_corners=False)
    torch.testing.assert_close(model(x) - features, ramp.expand(2, 3, 40))  # weights sum to 1 over equal memories
    fresh = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1))
    with pytest.raises(ValueError, match=r"feat_size=5 builds the block for another size .*\(40,\).*interpolate"):
        insert_sr(fresh, "0", input_size=(2, 40), feat_size=5)
    with pytest.raises(ValueError, match="feat_size must have 1 entries"):
        insert_sr(fresh, "0", input_size=(2, 40), feat_size=(5, 5), size_policy="interpolate")
    with pytest.raises(ValueError, match="feat_size entries must be positive"):
        insert_sr(fresh, "0", input_size=(2, 40), feat_size=0, size_policy="interpolate")
    with pytest.raises(ValueError, match=r"feat_size=41 is larger than the output of '0' \(\(40,\)\)"):
        insert_sr(fresh, "0", input_size=(2, 40), feat_size=41, size_policy="interpolate")
    assert insert_sr(fresh, "0", input_size=(2, 40), feat_size=40).memory.shape == (2, 3, 40)  # its own size: strict
    coarse = {"feat_size": 6, "size_policy": "interpolate"}  # one size for every stage: 8x8 -> 6x6, but 4x4 -> ?
    with pytest.raises(ValueError, match=r"larger than the output of 'layer4' \(\(4, 4\)\)"):
        create_model("cifar_resnet18", sr_stage=[3, 4], width=0.25, sr_kwargs=coarse)


def test_falls_back_to_real_forward_when_meta_fails() -> None:
    class DataDependent(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.conv(x)
            return y * 2 if y.sum().item() >= 0 else y  # .item() cannot run on the meta device

    model = DataDependent()
    block = insert_sr(model, "conv", input_size=(3, 6, 6))
    assert block.memory.shape == (2, 4, 6, 6)


def test_bad_input_size_is_a_clear_error() -> None:
    model = torchvision.models.resnet18()
    with pytest.raises(ValueError, match=r"input_size must be the input's shape"):
        insert_sr(model, "layer3", input_size=224)
    with pytest.raises(ValueError, match=r"dry run of ResNet on a zero input of shape \(1, 1, 32, 32\) failed"):
        insert_sr(model, "layer3", input_size=(1, 32, 32))


def test_block_follows_model_dtype() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3)).double()
    assert insert_sr(model, "0", input_size=(3, 8, 8)).memory.dtype == torch.float64


def test_sr_kwargs_and_errors_from_the_block() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3))
    block = insert_sr(model, "0", input_size=(3, 8, 8), memory_init="normal", act_layer=nn.ReLU)
    assert block.memory.abs().sum() > 0
    with pytest.raises(ValueError, match="already has an attribute 'sr'"):
        insert_sr(model, "0", input_size=(3, 8, 8))


def test_training_flags_restored() -> None:
    model = torchvision.models.resnet18().train()
    model.layer1.eval()
    insert_sr(model, "layer2", input_size=(3, 32, 32))
    assert model.training and model.layer2.training and not model.layer1.training


def test_remove_sr_restores_plain_network() -> None:
    model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, width=0.25).eval()
    insert_sr(model, "layer4.1", input_size=(3, 32, 32))
    _fill_memory(model)
    x = torch.randn(2, 3, 32, 32)
    plain = create_model("cifar_resnet18", num_classes=10, width=0.25).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if ".sr." not in k})
    assert not torch.allclose(model(x), plain(x))
    assert remove_sr(model) is model
    assert find_sr_blocks(model) == {} and count_sr_params(model) == 0
    assert isinstance(model.layer3.sr, nn.Identity)
    torch.testing.assert_close(model(x), plain(x))


@pytest.mark.parametrize("after", ["layer3", "layer3.1"])
def test_reinsert_after_remove(after: str) -> None:
    model = torchvision.models.resnet18().eval()
    insert_sr(model, after, input_size=(3, 32, 32))
    remove_sr(model)
    block = insert_sr(model, after, input_size=(3, 32, 32), num_memories=3)
    assert find_sr_blocks(model) == {f"{after}.sr": block}
    assert len(model.get_submodule(after)._forward_hooks) == (0 if after == "layer3" else 1)
    calls = []
    block.register_forward_hook(lambda *_: calls.append(1))
    model(torch.randn(1, 3, 32, 32))
    assert calls == [1]


def test_remove_sr_on_a_bare_block() -> None:
    assert isinstance(remove_sr(SRBlock2d(4, 2, num_memories=2, hidden=2)), nn.Identity)


def test_count_sr_params_sums_eq1_over_blocks() -> None:
    model = torchvision.models.resnet18()
    insert_sr(model, "layer2", input_size=(3, 64, 64), num_memories=3, hidden=5)
    insert_sr(model, "layer4", input_size=(3, 64, 64), num_memories=7, hidden=5)
    expected = sr_param_count(128, 8, hidden=5, num_memories=3) + sr_param_count(512, 2, hidden=5, num_memories=7)
    assert count_sr_params(model) == expected


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU")
def test_block_follows_model_device_on_cuda() -> None:
    model = create_model("cifar_resnet18", num_classes=10, width=0.25).cuda().eval()
    block = insert_sr(model, "layer3", input_size=(3, 32, 32))
    hooked = insert_sr(model, "layer4.1", input_size=(3, 32, 32))
    assert block.memory.is_cuda and hooked.memory.is_cuda
    x = torch.randn(2, 3, 32, 32, device="cuda").to(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16):
        assert model(x).shape == (2, 10)


# --------------------------------------------------------------------------------------------------------------
# Token-shaped outputs (B x N x C): refused unless the layout is given, then the block runs over the N positions
# --------------------------------------------------------------------------------------------------------------

VIT_SIZE = (3, 32, 32)  # 2 x 2 patches of 16 + the class token: blocks output B x 5 x 192


@pytest.fixture
def vit() -> nn.Module:
    return timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=VIT_SIZE[1:]).eval()


@pytest.mark.parametrize("after", ["blocks.5", "norm", "patch_embed"])
def test_token_shaped_output_is_refused_without_a_layout(vit: nn.Module, after: str) -> None:
    with pytest.raises(ValueError, match=r"looks token-shaped.*layout='channels_last'.*192 channels") as err:
        insert_sr(vit, after, input_size=VIT_SIZE)
    assert "\n" not in str(err.value)
    assert not find_sr_blocks(vit)
    assert not vit.get_submodule(after)._forward_hooks


def test_channels_last_layout_puts_the_block_over_the_tokens(vit: nn.Module) -> None:
    x = torch.randn(2, *VIT_SIZE)
    before = vit(x)
    block = insert_sr(vit, "blocks.5", input_size=VIT_SIZE, num_memories=3, hidden=4, layout="channels_last")
    assert isinstance(block, SRBlock1d) and block.memory.shape == (3, 192, 5)
    assert "blocks.5.sr.memory" in vit.state_dict()
    torch.testing.assert_close(vit(x), before)  # zero memory: unchanged
    with torch.no_grad():
        block.memory.normal_()
    tokens_in = torch.randn(2, 5, 192)
    with capture_memory_weights(vit) as captured:
        out = vit.blocks[5](tokens_in)
    tokens = vit.blocks[5].forward(tokens_in)  # the transformer block without the hook
    recalled = torch.einsum("bp,pcn->bnc", captured["blocks.5.sr"][0], block.memory)
    torch.testing.assert_close(out, tokens + recalled)
    vit(x).sum().backward()
    assert block.memory.grad.abs().sum() > 0


def test_explicit_channels_first_reads_axis_1_as_channels(vit: nn.Module) -> None:
    block = insert_sr(vit, "blocks.5", input_size=VIT_SIZE, layout="channels_first")
    assert block.memory.shape[1:] == (5, 192)


def test_channels_last_after_a_sequential_points_to_its_last_module(vit: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"'blocks' is an nn.Sequential.*\('blocks.11'\)"):
        insert_sr(vit, "blocks", input_size=VIT_SIZE, layout="channels_last")


def test_bad_layout_is_a_clear_error(vit: nn.Module) -> None:
    with pytest.raises(ValueError, match=r"layout must be one of \('channels_first', 'channels_last'\).*'NLC'"):
        insert_sr(vit, "blocks.5", input_size=VIT_SIZE, layout="NLC")


def test_cnn_outputs_keep_their_default_layout(tv_resnet50: nn.Module) -> None:
    model = copy.deepcopy(tv_resnet50)
    assert insert_sr(model, "layer4.2", input_size=SIZE).memory.shape[1] == 2048  # a hooked bottleneck
    assert insert_sr(model, "avgpool", input_size=SIZE).memory.shape[1:] == (2048, 1, 1)  # no layer inside


def test_reinsert_with_another_layout_replaces_the_hook(vit: nn.Module) -> None:
    insert_sr(vit, "blocks.5", input_size=VIT_SIZE, layout="channels_last")
    remove_sr(vit)
    block = insert_sr(vit, "blocks.5", input_size=VIT_SIZE, layout="channels_first", memory_init="normal")
    assert len(vit.blocks[5]._forward_hooks) == 1
    tokens = torch.randn(2, 5, 192)
    torch.testing.assert_close(vit.blocks[5](tokens), block(vit.blocks[5].forward(tokens)))


@pytest.mark.parametrize(
    ("name", "kwargs", "shape", "last"),
    [
        ("tsc_fcn", {"in_channels": 2}, (2, 40), 3),
        ("tsc_resnet", {"in_channels": 2}, (2, 40), 3),
        ("cifar_resnet18", {"width": 0.25}, (3, 16, 16), 4),
    ],
)
def test_sr_before_global_average_pooling_learns_only_memories_constant_in_space(
    name: str, kwargs: dict, shape: tuple[int, ...], last: int
) -> None:
    """After the last stage these models average over space (time), so the loss gradient of the block's output - and
    with it every memory's gradient and AdamW step, from the zero init - is the same at every position: that block
    can add only a routed per-channel bias. One stage earlier the memories take a shape."""
    spread = {}
    for stage in (last - 1, last):
        torch.manual_seed(0)
        model = create_model(name, num_classes=3, sr_stage=stage, num_memories=4, input_size=shape, **kwargs)
        (block,) = find_sr_blocks(model).values()
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.1)
        x, y = torch.randn(16, *shape), torch.randint(0, 3, (16,))
        for _ in range(5):
            optimizer.zero_grad()
            nn.functional.cross_entropy(model(x), y).backward()
            optimizer.step()
        memory = block.memory.detach().flatten(2)  # P x C x positions
        spread[stage] = (memory.std(dim=-1).max() / memory.abs().max()).item()
    assert spread[last] < 1e-5 and spread[last - 1] > 1e-2, spread
