"""SE, CBAM and ECA: exactly one per residual block, before the residual add, torchvision keys kept."""

from __future__ import annotations

import pytest
import torch
from timm.layers.cbam import CbamModule
from timm.layers.eca import EcaModule
from torch import nn
from torchvision.models.resnet import BasicBlock, Bottleneck
from torchvision.ops import SqueezeExcitation

from srblock.models import create_model


class _Zero(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)


KIND = {"se": SqueezeExcitation, "cbam": CbamModule, "eca": EcaModule}


@pytest.mark.parametrize("attention", ["se", "cbam", "eca"])
@pytest.mark.parametrize("name", ["cifar_resnet18", "cifar_resnet50", "resnet50"])
def test_one_attention_module_per_residual_block(name: str, attention: str) -> None:
    model = create_model(name, num_classes=10, attention=attention)
    blocks = [m for m in model.modules() if isinstance(m, (BasicBlock, Bottleneck))]
    assert len(blocks) == (8 if name.endswith("18") else 16)
    for block in blocks:
        assert sum(isinstance(m, KIND[attention]) for m in block.modules()) == 1
    assert sum(isinstance(m, KIND[attention]) for m in model.modules()) == len(blocks)


@pytest.mark.parametrize("attention", ["se", "cbam"])
def test_reduction_16(attention: str) -> None:
    block = create_model("cifar_resnet18", num_classes=10, attention=attention).layer3[1]
    first = block.attn.fc1 if attention == "se" else block.attn.channel.fc1
    assert (first.in_channels, first.out_channels) == (256, 16)


@pytest.mark.parametrize("attention", ["se", "cbam", "eca"])
def test_attention_sits_before_residual_add(attention: str) -> None:
    block = create_model("cifar_resnet18", num_classes=10, attention=attention).layer2[1].eval()
    x = torch.randn(2, 128, 16, 16)
    out = block(x)
    seen = {}
    block.bn2.register_forward_hook(lambda _m, _i, o: seen.__setitem__("bn2", o))
    block.attn.register_forward_hook(lambda _m, i, o: seen.__setitem__("attn_in", i[0]))
    torch.testing.assert_close(block(x), out)
    torch.testing.assert_close(seen["attn_in"], seen["bn2"])  # attention takes the branch's last BN output
    block.attn = nn.Sequential(block.attn, _Zero())  # zero the branch after attention
    torch.testing.assert_close(block(x), torch.relu(x))  # leaves relu(identity): attention is before the add


@pytest.mark.parametrize("attention", ["se", "cbam", "eca"])
def test_attention_keeps_plain_keys_and_runs(attention: str) -> None:
    plain = set(create_model("cifar_resnet18", num_classes=10).state_dict())
    model = create_model("cifar_resnet18", num_classes=10, attention=attention, sr_stage=3, width=0.25)
    extra = set(model.state_dict()) - set(create_model("cifar_resnet18", num_classes=10, width=0.25).state_dict())
    assert all(".attn." in k or ".sr." in k for k in extra)
    assert plain <= set(create_model("cifar_resnet18", num_classes=10, attention=attention).state_dict())
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


@pytest.mark.parametrize(("channels", "kernel"), [(64, 3), (128, 5), (256, 5), (512, 5)])
def test_eca_kernel_follows_the_channels(channels: int, kernel: int) -> None:
    """ECA's adaptive k = |log2(C)/2 + 1/2|, made odd (Wang et al. 2020, Eq. 12): 3 weights at 64 channels, 5 above."""
    model = create_model("cifar_resnet18", num_classes=10, attention="eca")
    stage = {64: model.layer1, 128: model.layer2, 256: model.layer3, 512: model.layer4}[channels]
    assert stage[0].attn.conv.kernel_size == (kernel,)
    assert sum(p.numel() for p in stage[0].attn.parameters()) == kernel


def test_sr_plus_se_composes() -> None:
    """attention="se" with sr_stage gives SE in every residual block and the SR block after the stage, which sees
    the stage's output (after the last block's SE and residual add)."""
    model = create_model("cifar_resnet18", attention="se", sr_stage=3, width=0.25).eval()
    assert [n for n, _ in model.layer3.named_children()] == ["0", "1", "sr"]
    assert all(isinstance(b.attn, SqueezeExcitation) for b in (*model.layer3[:2], *model.layer4))
    seen = {}
    model.layer3[1].register_forward_hook(lambda _m, _i, o: seen.__setitem__("block", o))
    model.layer3.sr.register_forward_pre_hook(lambda _m, i: seen.__setitem__("sr_in", i[0]))
    model(torch.randn(2, 3, 32, 32))
    torch.testing.assert_close(seen["sr_in"], seen["block"])
