"""FCN and ResNet for time series: output shapes, named stages, Keras' layout, SR at every stage."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.layers import find_sr_blocks
from srblock.models import create_model, get_model_entry

MODELS = {"tsc_fcn": (128, 256, 128), "tsc_resnet": (64, 128, 128)}


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize(("channels", "length"), [(1, 24), (6, 101)])
def test_output_shape_and_length_preserving_stages(name: str, channels: int, length: int) -> None:
    model = create_model(name, num_classes=5, in_channels=channels).eval()
    entry = get_model_entry(name)
    assert entry.stages == ("block1", "block2", "block3")
    seen = {}
    for stage in entry.stages:
        model.get_submodule(stage).register_forward_hook(lambda m, i, o, s=stage: seen.__setitem__(s, o.shape))
    assert model(torch.randn(3, channels, length)).shape == (3, 5)
    assert [seen[s] for s in entry.stages] == [(3, w, length) for w in MODELS[name]]


def test_fcn_has_the_keras_models_parameters() -> None:
    # dl-4-tsc's FCN for 1 channel, 2 classes: conv(k, bias) + BN(gamma, beta) per block, then the dense layer
    convs = [(1, 128, 8), (128, 256, 5), (256, 128, 3)]
    expected = sum(i * o * k + o + 2 * o for i, o, k in convs) + 128 * 2 + 2
    assert sum(p.numel() for p in create_model("tsc_fcn").parameters()) == expected


def test_resnet_shortcuts_project_only_where_the_width_changes() -> None:
    model = create_model("tsc_resnet", in_channels=3)
    assert isinstance(model.block1.shortcut, nn.Sequential) and isinstance(model.block2.shortcut, nn.Sequential)
    assert isinstance(model.block3.shortcut, nn.BatchNorm1d)


def test_same_padding_puts_the_extra_step_of_an_even_kernel_on_the_right() -> None:
    model = create_model("tsc_fcn")
    pad = model.block1[0]
    assert isinstance(pad, nn.ZeroPad1d) and pad.padding == (3, 4)


@pytest.mark.parametrize("name", list(MODELS))
@pytest.mark.parametrize("stage", [1, 2, 3])
def test_sr_at_every_stage_starts_as_the_identity(name: str, stage: int) -> None:
    torch.manual_seed(0)
    plain = create_model(name, num_classes=3, in_channels=2).eval()
    torch.manual_seed(0)
    with_sr = create_model(
        name, num_classes=3, in_channels=2, sr_stage=stage, num_memories=4, input_size=(2, 40)
    ).eval()
    (block,) = find_sr_blocks(with_sr).values()
    assert block.memory.shape == (4, MODELS[name][stage - 1], 40)
    x = torch.randn(2, 2, 40)
    torch.testing.assert_close(with_sr(x), plain(x))  # zero-initialised memory adds nothing
    with_sr.train()(x).sum().backward()
    assert block.memory.grad is not None


def test_sr_block_refuses_another_length_unless_it_interpolates() -> None:
    strict = create_model("tsc_fcn", sr_stage=3, input_size=(1, 40)).eval()
    with pytest.raises(ValueError, match=r"spatial size \(40,\)"):
        strict(torch.randn(1, 1, 50))
    model = create_model("tsc_fcn", sr_stage=3, input_size=(1, 40), sr_kwargs={"size_policy": "interpolate"})
    assert model.eval()(torch.randn(2, 1, 50)).shape == (2, 2)


def test_width_scales_the_filters() -> None:
    model = create_model("tsc_resnet", width=0.5)
    assert model.fc.in_features == 64
    with pytest.raises(ValueError, match="width must be positive"):
        create_model("tsc_fcn", width=0)


@pytest.mark.parametrize("name", list(MODELS))
def test_overhead_report_reads_a_series_shape(name: str) -> None:
    from srblock.analysis.overhead import overhead_report

    report = overhead_report(name, sr_stage=2, num_memories=10, hidden=8, input_size=(6, 100), timing=False)
    assert list(report["input_size"]) == [6, 100]
    channels = MODELS[name][1]
    assert report["sr_params"] == report["sr_params_formula"] == channels + 100 * 8 + 8 * 10 + 10 * channels * 100
