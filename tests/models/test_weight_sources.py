"""Where weights come from: torchvision's ``weights=`` through create_model, .safetensors files, URLs.

Nothing is downloaded: torchvision's download (``WeightsEnum.get_state_dict``) is replaced by a recorder, and URLs
are ``file://`` URLs into a private torch.hub cache.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import torch
import torchvision
from safetensors.torch import save_file
from torchvision.models import ResNet18_Weights, ResNet50_Weights
from torchvision.models._api import WeightsEnum
from torchvision.models.segmentation import DeepLabV3_ResNet50_Weights

from srblock.models import create_model, load_backbone_weights, load_torchvision_weights


class FakeDownloads:
    """Stands in for torchvision's download: records which weights were asked for, hands out a given state dict."""

    def __init__(self) -> None:
        self.asked: list[WeightsEnum] = []
        self.states: dict[str, dict[str, torch.Tensor]] = {}

    def __call__(self, weights: WeightsEnum, *args, **kwargs) -> dict[str, torch.Tensor]:
        self.asked.append(weights)
        return self.states[type(weights).__name__]


@pytest.fixture
def downloads(monkeypatch) -> Iterator[FakeDownloads]:
    fake = FakeDownloads()
    monkeypatch.setattr(WeightsEnum, "get_state_dict", lambda self, *a, **k: fake(self, *a, **k))
    yield fake


def _random_state(model: torch.nn.Module, seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return {
        k: torch.randn(v.shape, generator=gen) if v.is_floating_point() else v for k, v in model.state_dict().items()
    }


def test_weights_none_downloads_nothing(downloads: FakeDownloads) -> None:
    create_model("resnet18", weights=None, sr_stage=3)
    assert downloads.asked == []


@pytest.mark.parametrize("weights", [ResNet18_Weights.IMAGENET1K_V1, "IMAGENET1K_V1", "DEFAULT"])
def test_weights_are_forwarded_and_loaded_under_the_sr_block(downloads: FakeDownloads, weights: object) -> None:
    pretrained = torchvision.models.resnet18()
    downloads.states["ResNet18_Weights"] = _random_state(pretrained)
    model = create_model("resnet18", weights=weights, sr_stage=3, num_memories=4, hidden=8)
    assert downloads.asked == [ResNet18_Weights.IMAGENET1K_V1]
    state = model.state_dict()
    for key, value in downloads.states["ResNet18_Weights"].items():
        torch.testing.assert_close(state[key], value)
    assert not model.layer3.sr.memory.any()  # the block came in after the weights, as the identity


def test_weights_with_another_number_of_classes_keep_a_fresh_head(downloads: FakeDownloads) -> None:
    downloads.states["ResNet18_Weights"] = _random_state(torchvision.models.resnet18())
    model = create_model("resnet18", num_classes=10, weights="IMAGENET1K_V1")
    assert model.fc.weight.shape == (10, 512)
    torch.testing.assert_close(model.conv1.weight, downloads.states["ResNet18_Weights"]["conv1.weight"])


def test_unknown_or_foreign_weights_are_clear_errors(downloads: FakeDownloads) -> None:
    with pytest.raises(ValueError, match=r"unknown weights 'IMAGENET9K' for resnet18; expected one of .*IMAGENET1K_V1"):
        create_model("resnet18", weights="IMAGENET9K")
    with pytest.raises(TypeError, match="expected ResNet18_Weights but received ResNet50_Weights"):
        create_model("resnet18", weights=ResNet50_Weights.IMAGENET1K_V2)
    assert downloads.asked == []


def test_segmentation_weights_and_backbone_weights_are_forwarded(downloads: FakeDownloads) -> None:
    coco = torchvision.models.segmentation.deeplabv3_resnet50(weights=None, weights_backbone=None, aux_loss=True)
    downloads.states["DeepLabV3_ResNet50_Weights"] = _random_state(coco)
    model = create_model("deeplabv3_resnet50", weights="COCO_WITH_VOC_LABELS_V1", sr_stage=3, input_size=(3, 32, 32))
    assert downloads.asked == [DeepLabV3_ResNet50_Weights.COCO_WITH_VOC_LABELS_V1]
    expected = downloads.states["DeepLabV3_ResNet50_Weights"]
    torch.testing.assert_close(model.backbone.layer3[0].conv1.weight, expected["backbone.layer3.0.conv1.weight"])
    assert model.classifier[4].weight.shape[0] == 19  # the 21-class COCO/VOC head was not forced on Cityscapes

    no_aux = create_model("deeplabv3_resnet50", weights="COCO_WITH_VOC_LABELS_V1", aux_weight=0)
    assert no_aux.aux_classifier is None  # the checkpoint's auxiliary head is skipped, nothing else

    downloads.states["ResNet50_Weights"] = _random_state(torchvision.models.resnet50())
    model = create_model("fcn_resnet50", weights_backbone=ResNet50_Weights.IMAGENET1K_V2)
    assert downloads.asked[-1] == ResNet50_Weights.IMAGENET1K_V2
    torch.testing.assert_close(model.backbone.conv1.weight, downloads.states["ResNet50_Weights"]["conv1.weight"])
    with pytest.raises(ValueError, match="either weights or backbone weights"):
        create_model("fcn_resnet50", weights="DEFAULT", weights_backbone="DEFAULT")


def test_load_torchvision_weights_reports_the_source(downloads: FakeDownloads) -> None:
    downloads.states["ResNet18_Weights"] = _random_state(torchvision.models.resnet18())
    model = create_model("resnet18", sr_stage=4)
    report = load_torchvision_weights(model, "resnet18", "DEFAULT")
    assert report.source == "torchvision ResNet18_Weights.IMAGENET1K_V1"
    assert sorted(report.missing_sr) == [
        f"layer4.sr.{k}" for k in ("fc1.weight", "fc2.weight", "memory", "squeeze.weight")
    ]


@pytest.fixture
def plain_resnet18() -> dict[str, torch.Tensor]:
    return _random_state(torchvision.models.resnet18(), seed=1)


def test_safetensors_file_loads(tmp_path, plain_resnet18) -> None:
    path = tmp_path / "resnet18.safetensors"
    save_file(plain_resnet18, path)
    model = create_model("resnet18", sr_stage=3)
    report = load_backbone_weights(model, path)
    assert report.source == str(path) and len(report.missing_sr) == 4
    torch.testing.assert_close(model.fc.weight, plain_resnet18["fc.weight"])


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_url_is_downloaded_once_into_the_hub_cache(tmp_path, monkeypatch, plain_resnet18, suffix) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch_home"))
    source = tmp_path / f"published{suffix}"
    if suffix == ".pth":
        torch.save({"model": plain_resnet18, "epoch": 3}, source)
    else:
        save_file(plain_resnet18, source)
    url = source.as_uri()
    model = create_model("resnet18", sr_stage=3)
    report = load_backbone_weights(model, url)
    assert report.source == url
    torch.testing.assert_close(model.layer2[0].conv1.weight, plain_resnet18["layer2.0.conv1.weight"])
    cached = tmp_path / "torch_home" / "hub" / "checkpoints" / source.name
    assert cached.is_file()
    source.unlink()  # the second load reads the cache
    load_backbone_weights(create_model("resnet18"), url)


def test_missing_file_names_the_path(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match=r"no checkpoint file at .*none\.safetensors"):
        load_backbone_weights(create_model("resnet18"), tmp_path / "none.safetensors")


def test_recipe_check_sees_weights_without_downloading(downloads: FakeDownloads) -> None:
    from srblock.engine.build import check_model_section

    check_model_section({"name": "resnet18", "num_classes": 10, "sr_stage": 3, "weights": "IMAGENET1K_V1"})
    check_model_section({"name": "fcn_resnet50", "weights_backbone": "IMAGENET1K_V2"})
    assert downloads.asked == []
    with pytest.raises(ValueError, match=r"model\.weights"):  # the CIFAR nets take no torchvision weights
        check_model_section({"name": "cifar_resnet18", "weights": "IMAGENET1K_V1"})
