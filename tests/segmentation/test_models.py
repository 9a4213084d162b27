"""The Cityscapes networks: torchvision's layout at output stride 8, the SR block after layer3, backbone loading."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torchvision.models.segmentation.deeplabv3 import ASPP, ASPPConv

from srblock.engine import build_model, load_trained_model, save_checkpoint
from srblock.layers import sr_param_count
from srblock.models import create_model, find_sr_blocks, list_models, remove_sr
from srblock.models.segmentation import load_segmentation_backbone

CROP = (32, 64)  # cheap; the paper's 512x1024 only changes the memory size (checked on the meta device below)


@pytest.fixture(scope="module")
def deeplab_sr():
    torch.manual_seed(0)
    return create_model(
        "deeplabv3_resnet50", num_classes=19, sr_stage=3, num_memories=2, hidden=16, input_size=(3, *CROP)
    ).eval()


def test_registered_in_the_zoo():
    assert {"deeplabv3_resnet50", "fcn_resnet50"} <= set(list_models())


@pytest.mark.parametrize(
    ("name", "factory"),
    [
        ("deeplabv3_resnet50", torchvision.models.segmentation.deeplabv3_resnet50),
        ("fcn_resnet50", torchvision.models.segmentation.fcn_resnet50),
    ],
)
def test_same_layout_as_torchvision(name, factory):
    """Same state-dict keys and shapes as torchvision's builder, so its checkpoints load; output stride 8."""
    ours = create_model(name, num_classes=19).state_dict()
    theirs = factory(weights=None, weights_backbone=None, num_classes=19, aux_loss=True).state_dict()
    assert {k: v.shape for k, v in ours.items()} == {k: v.shape for k, v in theirs.items()}


def test_deeplab_has_aspp_12_24_36_and_head_dropout_0_1(deeplab_sr):
    aspp = deeplab_sr.classifier[0]
    assert isinstance(aspp, ASPP)
    assert [m[0].dilation for m in aspp.convs if isinstance(m, ASPPConv)] == [(12, 12), (24, 24), (36, 36)]
    assert {m.p for m in deeplab_sr.modules() if isinstance(m, torch.nn.Dropout)} == {0.1}
    assert deeplab_sr.aux_weight == 0.4


def test_sr_after_layer3_sized_from_the_crop(deeplab_sr):
    blocks = find_sr_blocks(deeplab_sr)
    assert list(blocks) == ["backbone.layer3.sr"]
    block = blocks["backbone.layer3.sr"]
    assert block.memory.shape == (2, 1024, CROP[0] // 8, CROP[1] // 8)  # output stride 8
    assert sum(p.numel() for p in block.parameters()) == sr_param_count(1024, (4, 8), hidden=16, num_memories=2)
    out = deeplab_sr(torch.randn(1, 3, *CROP))
    assert out["out"].shape == out["aux"].shape == (1, 19, *CROP)


def test_paper_crop_gives_memory_1024x64x128():
    """PAPER.md §2: memory 1024 x 64 x 128 for a 512 x 1024 crop (P=3 for FCN), without running a real forward."""
    with torch.device("meta"):
        model = create_model("fcn_resnet50", num_classes=19, sr_stage=3, num_memories=3, hidden=16)
    assert find_sr_blocks(model)["backbone.layer3.sr"].memory.shape == (3, 1024, 64, 128)


@pytest.mark.slow
def test_sr_is_identity_at_init(deeplab_sr):
    x = torch.randn(1, 3, *CROP)
    plain = create_model("deeplabv3_resnet50", num_classes=19).eval()
    plain.load_state_dict({k: v for k, v in deeplab_sr.state_dict().items() if ".sr." not in k})
    with torch.no_grad():
        torch.testing.assert_close(deeplab_sr(x)["out"], plain(x)["out"])


def test_strict_sr_rejects_another_size(deeplab_sr):
    with pytest.raises(ValueError, match="spatial size"):
        deeplab_sr(torch.randn(1, 3, 48, 64))


def test_unsupported_options_are_errors():
    with pytest.raises(ValueError, match="regularizer"):
        create_model("fcn_resnet50", num_classes=19, regularizer="dropout2d")


def test_no_aux_head_when_aux_weight_is_zero():
    model = create_model("fcn_resnet50", num_classes=11, aux_weight=0)
    assert model.aux_classifier is None and model.aux_weight == 0


def test_imagenet_backbone_loads_from_a_local_file(tmp_path):
    """A torchvision resnet50 state dict saved to a file (its fc dropped) fills the backbone; SR stays at init."""
    torch.manual_seed(1)
    imagenet = torchvision.models.resnet50(weights=None)
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(imagenet.state_dict(), path)
    model = create_model(
        "deeplabv3_resnet50", num_classes=19, sr_stage=3, hidden=16, input_size=(3, *CROP), backbone_weights=path
    )
    torch.testing.assert_close(model.backbone.layer2[0].conv1.weight, imagenet.layer2[0].conv1.weight)
    # Loading after the block was inserted works too and reports the SR tensors kept at init.
    report = load_segmentation_backbone(model, {"model": imagenet.state_dict()})
    assert len(report.missing_sr) == 4 and all(k.startswith("layer3.sr.") for k in report.missing_sr)
    assert not torch.count_nonzero(model.backbone.layer3.sr.memory)
    remove_sr(model)
    assert not find_sr_blocks(model)


def test_backbone_file_missing_or_wrong_is_a_clear_error(tmp_path):
    model = create_model("fcn_resnet50", num_classes=19)
    with pytest.raises(FileNotFoundError, match="resnet50"):
        load_segmentation_backbone(model, tmp_path / "none.pth")
    with pytest.raises(ValueError, match="missing"):
        load_segmentation_backbone(model, torchvision.models.resnet18(weights=None).state_dict())


def test_trained_model_loads_after_the_backbone_file_is_gone(tmp_path):
    """A checkpoint holds every weight: rebuilding it must not need the ImageNet file its recipe named."""
    path = tmp_path / "resnet50_imagenet.pth"
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), path)
    model_cfg = {"name": "fcn_resnet50", "num_classes": 11, "sr_stage": 3, "num_memories": 3, "hidden": 16}
    model_cfg |= {"input_size": [3, *CROP], "backbone_weights": str(path)}
    model = build_model({"model": model_cfg})
    with torch.no_grad():
        model.backbone.layer3.sr.memory.normal_()
    save_checkpoint({"model": model.state_dict(), "config": {"model": model_cfg}}, tmp_path / "checkpoint_best.pt")
    path.unlink()
    loaded, config = load_trained_model(tmp_path / "checkpoint_best.pt")
    assert config["model"]["backbone_weights"] == str(path)
    torch.testing.assert_close(loaded.backbone.layer3.sr.memory, model.backbone.layer3.sr.memory)
