"""airbench94's network: parameter count, stage shapes, identity init, patch whitening, frozen parts, SR placement."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srblock import sr_param_count
from srblock.models import count_sr_params, create_model
from srblock.models.airbench import AirbenchNet, PatchWhitening


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def test_param_count_is_airbench94s() -> None:
    model = create_model("cifar_airbench", num_classes=10)
    # airbench94 counts 1,972,792 with the 288 frozen whitening weights, which are a buffer here
    assert n_params(model) == 1_972_504 and model.whiten.weight.numel() == 288
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    assert frozen == {f"block{b}.norm{i}.weight" for b in (1, 2, 3) for i in (1, 2)}  # only BN biases train in BN


def test_stage_shapes_and_output_on_meta() -> None:
    model = create_model("cifar_airbench", num_classes=10).to("meta")
    shapes = {}
    for name in ("block1", "block2", "block3"):
        getattr(model, name).register_forward_hook(lambda _m, _i, o, name=name: shapes.__setitem__(name, o.shape[1:]))
    out = model(torch.randn(2, 3, 32, 32, device="meta"))
    assert out.shape == (2, 10)
    assert shapes == {"block1": (64, 15, 15), "block2": (256, 7, 7), "block3": (256, 3, 3)}
    out.sum().backward()
    assert model.block3.conv2.weight.grad.shape == (256, 256, 3, 3) and model.block1.norm1.weight.grad is None


def test_sr_after_block2_is_the_papers_m3_counterpart() -> None:
    model = create_model(
        "cifar_airbench", num_classes=10, sr_stage=2, num_memories=10, hidden=8, regularizer="dropout2d"
    )
    assert model.block2.sr.memory.shape == (10, 256, 7, 7)
    assert count_sr_params(model) == sr_param_count(256, 7, hidden=8, num_memories=10) == 126_168
    names = [n for n, _ in model.block2.named_children()]
    assert names[-2:] == ["drop", "sr"]  # the regularizer comes first (PAPER.md §2)
    assert isinstance(model.block3.drop, nn.Dropout2d) and not hasattr(model.block1, "drop")


def test_forward_backward_at_32_trains_only_what_airbench_trains() -> None:
    model = create_model("cifar_airbench", num_classes=10, width=0.25, sr_stage=2, num_memories=4)
    model.init_from_data(torch.randn(16, 3, 32, 32))
    model.set_train_progress(0.1)
    F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    assert model.whiten.bias.grad is not None and model.block2.sr.memory.grad is not None
    assert model.block1.norm1.weight.grad is None and model.block1.norm1.bias.grad is not None
    model.zero_grad(set_to_none=True)
    model.set_train_progress(0.3)  # airbench94 freezes the whitening bias after 3 of its 10 epochs
    F.cross_entropy(model(torch.randn(4, 3, 32, 32)), torch.tensor([0, 1, 2, 3])).backward()
    assert model.whiten.bias.grad is None and model.block3.conv2.weight.grad is not None


def test_convs_start_with_identity_filters() -> None:
    model = AirbenchNet(width=0.25)
    conv = model.block2.conv2  # in = out channels: the whole conv is the identity
    x = torch.randn(2, conv.in_channels, 5, 5)
    assert torch.allclose(conv(x), x)
    first = model.block2.conv1  # 16 -> 64: the first 16 filters copy the input, the rest keep the default init
    y = first(torch.randn(2, first.in_channels, 5, 5))
    assert y.shape[1] == 64 and not torch.allclose(first.weight[16:], torch.zeros_like(first.weight[16:]))
    assert torch.equal(first.weight[:16, :, 1, 1], torch.eye(16))


def test_whitening_decorrelates_the_patches_it_was_fitted_on() -> None:
    # strongly correlated images: smoothed noise, channels mixed
    base = F.avg_pool2d(torch.randn(64, 3, 20, 20), 3, stride=1)
    images = torch.einsum("ij,bjhw->bihw", torch.tensor([[1.0, 0.8, 0.6], [0.0, 0.6, 0.3], [0.0, 0.0, 0.4]]), base)
    layer = PatchWhitening(3, 2, eps=1e-8)
    layer.init_from_data(images, chunk=10)
    out = F.conv2d(images, layer.weight)  # no bias
    half = out[:, :12].permute(1, 0, 2, 3).reshape(12, -1)
    cov = half @ half.T / half.shape[1]
    assert torch.allclose(cov, torch.eye(12), atol=1e-3)
    assert torch.equal(out[:, 12:], -out[:, :12])
    with pytest.raises(ValueError, match="float images N x 3"):
        layer.init_from_data(torch.zeros(2, 1, 8, 8))


def test_whitening_equals_airbench94s_up_to_the_sign_of_each_eigenvector() -> None:
    # airbench94: all 2x2 patches (every position), uncentred covariance, eigenvectors by descending eigenvalue,
    # each divided by sqrt(eigenvalue + 5e-4), then the same filters negated
    base = F.avg_pool2d(torch.randn(40, 3, 18, 18), 3, stride=1)
    images = torch.einsum("ij,bjhw->bihw", torch.tensor([[1.0, 0.5, 0.2], [0.0, 0.7, 0.4], [0.0, 0.0, 0.3]]), base)
    patches = images.unfold(2, 2, 1).unfold(3, 2, 1).permute(0, 2, 3, 1, 4, 5).reshape(-1, 12)
    values, vectors = torch.linalg.eigh(patches.T @ patches / len(patches))
    values, vectors = values.flip(0), vectors.flip(1)
    assert (values[:-1] / values[1:]).min() > 1.01  # distinct: each eigenvector is defined up to its sign
    expected = (vectors / (values + 5e-4).sqrt()).T.reshape(12, 3, 2, 2)
    layer = PatchWhitening(3, 2)
    layer.init_from_data(images, chunk=7)
    ours = layer.weight[:12]
    signs = torch.sign((ours * expected).sum((1, 2, 3))).view(12, 1, 1, 1)
    assert torch.allclose(ours, signs * expected, rtol=1e-3, atol=1e-4)
    assert torch.equal(layer.weight[12:], -ours) and layer.eps == 5e-4


@pytest.mark.parametrize("attention", ["se", "cbam", "eca"])
def test_attention_sits_on_each_blocks_output_before_the_regularizer_and_sr(attention: str) -> None:
    model = create_model("cifar_airbench", attention=attention, regularizer="dropout2d", sr_stage=2, width=0.25)
    assert [n for n, _ in model.block1.named_children()][-2:] == ["act2", "attn"]
    assert [n for n, _ in model.block2.named_children()][-4:] == ["act2", "attn", "drop", "sr"]
    plain = create_model("cifar_airbench", regularizer="dropout2d", sr_stage=2, width=0.25)
    extra = set(model.state_dict()) - set(plain.state_dict())
    assert extra and all(".attn." in k for k in extra)
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="attention must be one of"):
        create_model("cifar_airbench", num_classes=10, attention="gc")
    with pytest.raises(ValueError, match="whiten_bias_until"):
        AirbenchNet(whiten_bias_until=1.5)
    with pytest.raises(ValueError, match="sr_stage must be one of \\[1, 2, 3\\]"):
        create_model("cifar_airbench", num_classes=10, sr_stage=4)
