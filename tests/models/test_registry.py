"""The registry: names, errors naming the valid choices, custom registration."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.models import create_model, find_sr_blocks, list_models, register_model, registry


def test_list_models_has_the_papers_networks() -> None:
    names = list_models()
    papers = ["cifar_resnet18", "cifar_resnet34", "cifar_resnet50", "cifar_vgg16_bn", "cifar_vgg19_bn"]
    for name in [*papers, "resnet18", "resnet34", "resnet50", "resnet101"]:
        assert name in names
    assert list_models("cifar_resnet*") == ["cifar_resnet18", "cifar_resnet34", "cifar_resnet50"]


def test_unknown_name_lists_choices() -> None:
    with pytest.raises(ValueError, match=r"did you mean 'cifar_resnet18'.*Registered models: .*resnet50"):
        create_model("cifar_resnet81", num_classes=10)


@pytest.mark.parametrize("bad", [0, 5, True, "3"])
def test_invalid_sr_stage_names_valid_stages(bad: object) -> None:
    with pytest.raises(ValueError, match=r"sr_stage must be one of \[1, 2, 3, 4\]"):
        create_model("cifar_resnet18", num_classes=10, sr_stage=bad)


@pytest.mark.parametrize("bad", [[], [3, 3], [2, 5], (1, True)])
def test_invalid_sr_stage_lists_name_valid_stages(bad: object) -> None:
    with pytest.raises(ValueError, match=r"sr_stage must be one of \[1, 2, 3, 4\] .*a list of distinct ones"):
        create_model("cifar_resnet18", num_classes=10, sr_stage=bad)


def test_several_sr_stages_get_one_block_each_sized_by_the_dry_run() -> None:
    from srblock import count_sr_params, sr_param_count
    from srblock.models import remove_sr

    model = create_model("cifar_resnet18", sr_stage=(4, 2, 3), num_memories=3, hidden=4, width=0.25)
    shapes = {name: tuple(block.memory.shape) for name, block in find_sr_blocks(model).items()}
    assert shapes == {"layer2.sr": (3, 32, 16, 16), "layer3.sr": (3, 64, 8, 8), "layer4.sr": (3, 128, 4, 4)}
    expected = sum(sr_param_count(c, s, hidden=4, num_memories=3) for c, s in ((32, 16), (64, 8), (128, 4)))
    assert count_sr_params(model) == expected
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)
    one = create_model("cifar_resnet18", sr_stage=3, num_memories=3, hidden=4, width=0.25)
    assert one.layer3.sr.memory.shape == model.layer3.sr.memory.shape  # a list of one stage is the int
    assert find_sr_blocks(remove_sr(model)) == {}


def test_airbench_takes_an_sr_block_after_each_of_its_stages() -> None:
    model = create_model("cifar_airbench", sr_stage=[1, 2, 3], num_memories=2, width=0.25)
    shapes = {name: tuple(block.memory.shape[1:]) for name, block in find_sr_blocks(model).items()}
    assert shapes == {"block1.sr": (16, 15, 15), "block2.sr": (64, 7, 7), "block3.sr": (64, 3, 3)}
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_invalid_regularizer_and_attention_name_choices() -> None:
    with pytest.raises(ValueError, match=r"regularizer must be one of .*dropblock"):
        create_model("cifar_resnet18", num_classes=10, regularizer="dropconnect")
    with pytest.raises(ValueError, match=r"attention must be one of .*cbam"):
        create_model("cifar_resnet18", num_classes=10, attention="gc")


def test_register_model_returns_builder_and_rejects_duplicates() -> None:
    @register_model(name="test_tiny_net", input_size=(3, 16, 16))
    def tiny(num_classes: int) -> nn.Module:
        return nn.Linear(4, num_classes)

    try:
        assert isinstance(tiny(num_classes=3), nn.Linear)
        with pytest.raises(ValueError, match="already registered"):
            register_model(tiny, name="test_tiny_net")
        with pytest.raises(ValueError, match=r"sr_stage must be one of \[\]"):
            create_model("test_tiny_net", num_classes=3, sr_stage=1)
    finally:
        registry._MODELS.pop("test_tiny_net")


def test_register_model_stage_names_drive_sr_placement() -> None:
    class Tiny(nn.Module):
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.body = nn.Sequential(nn.Conv2d(3, 4, 3, stride=2, padding=1))
            self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, num_classes))

        def forward(self, x):
            return self.head(self.body(x))

    register_model(Tiny, name="test_tiny_cls", input_size=(3, 16, 16), stages=("body",))
    try:
        model = create_model("test_tiny_cls", num_classes=3, sr_stage=1, num_memories=5, hidden=2)
        assert model.body.sr.memory.shape == (5, 4, 8, 8)
        with pytest.raises(ValueError, match=r"sr_stage must be one of \[1\]"):
            create_model("test_tiny_cls", num_classes=3, sr_stage=2)
    finally:
        registry._MODELS.pop("test_tiny_cls")


def test_drop_rate_without_a_regularizer_is_an_error() -> None:
    with pytest.raises(ValueError, match=r"drop_rate=0\.2 is the rate of a regularizer; choose one too"):
        create_model("cifar_resnet18", drop_rate=0.2)


@pytest.mark.parametrize("name", list_models())
def test_registered_num_classes_is_the_builders_own_default(name: str) -> None:
    entry = registry.get_model_entry(name)
    with torch.device("meta"):  # shapes only
        assert _shapes(create_model(name)) == _shapes(entry.builder())


def _shapes(model: nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_num_classes_defaults_to_the_dataset_the_network_is_made_for() -> None:
    assert create_model("cifar_resnet18", width=0.25).fc.out_features == 10
    assert create_model("resnet18").fc.out_features == 1000
    assert create_model("cifar_vgg16_bn", width=0.25, num_classes=100).classifier[-1].out_features == 100
