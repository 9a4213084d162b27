"""The zoo through timm: ``timm.create_model("srblock_...")``, features_only (hooks and FX), timm's conventions."""

from __future__ import annotations

import subprocess
import sys

import pytest
import timm
import torch
from safetensors.torch import save_file
from timm.models import FeatureGraphNet, FeatureListNet, create_feature_extractor

import srblock.models.timm_models  # noqa: F401  (registers the srblock_* models)
from srblock.layers import SRBlockNd
from srblock.models import create_model, get_model_entry, insert_sr, list_models

SMALL = {"width": 0.25}
SR = {"sr_stage": 3, "num_memories": 4, "hidden": 8, "sr_kwargs": {"memory_init": "normal", "memory_std": 1.0}}


def test_registration_waits_for_the_import() -> None:
    code = (
        "import sys, srblock, srblock.models; "
        "print('srblock.models.timm_models' in sys.modules, 'timm' in sys.modules and "
        "any(n.startswith('srblock_') for n in sys.modules['timm'].list_models()))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


SEGMENTATION = {"deeplabv3_resnet50", "fcn_resnet50"}  # dense predictors, not timm classifiers
# the zoo's own classifiers (other tests may register models of their own for a while)
# image classifiers: timm serves images (in_chans, mean/std, strides); the 1-D time-series models stay out of it
CLASSIFIERS = [
    n
    for n in list_models()
    if get_model_entry(n).builder.__module__.startswith("srblock.")
    and n not in SEGMENTATION
    and len(get_model_entry(n).input_size) == 3
]


def test_every_classification_model_of_the_zoo_is_registered() -> None:
    assert sorted(timm.list_models("srblock_*")) == sorted(f"srblock_{n}" for n in CLASSIFIERS)
    assert not timm.is_model("srblock_deeplabv3_resnet50")


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_registered_model_gives_its_features(name: str) -> None:
    """On the meta device (shapes only): each feature has the channels and stride its feature_info says."""
    features = timm.create_model(f"srblock_{name}", features_only=True, sr_stage=3, device="meta")
    size = features.pretrained_cfg["input_size"]
    outs = features(torch.zeros(2, *size, device="meta"))
    info = features.feature_info
    assert [o.shape[1] for o in outs] == info.channels()
    assert [size[-1] // o.shape[-1] for o in outs] == info.reduction()
    assert info.module_name()[-len(get_model_entry(name).stages) :] == list(get_model_entry(name).stages)


def test_keywords_pass_through_to_create_model() -> None:
    torch.manual_seed(0)
    via_timm = timm.create_model("srblock_cifar_resnet18", num_classes=100, regularizer="dropout2d", **SMALL, **SR)
    torch.manual_seed(0)
    direct = create_model("cifar_resnet18", num_classes=100, regularizer="dropout2d", **SMALL, **SR)
    assert via_timm.state_dict().keys() == direct.state_dict().keys()
    for (key, ours), theirs in zip(via_timm.state_dict().items(), direct.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, msg=key)
    assert via_timm.layer3.sr.memory.shape == (4, 64, 8, 8)
    assert via_timm.pretrained_cfg["num_classes"] == 10 and via_timm.pretrained_cfg["input_size"] == (3, 32, 32)


def _stage_outputs(model: torch.nn.Module, names: list[str], images: torch.Tensor) -> list[torch.Tensor]:
    seen: dict[str, torch.Tensor] = {}
    handles = [
        model.get_submodule(n).register_forward_hook(lambda _m, _i, out, n=n: seen.__setitem__(n, out)) for n in names
    ]
    with torch.no_grad():
        model(images)
    for handle in handles:
        handle.remove()
    return [seen[n] for n in names]


@pytest.mark.parametrize("feature_cls", ["list", "fx"])
def test_features_only_returns_the_stage_outputs_with_sr(feature_cls: str) -> None:
    torch.manual_seed(0)
    features = timm.create_model(
        "srblock_cifar_resnet18", features_only=True, feature_cls=feature_cls, **SMALL, **SR
    ).eval()
    assert isinstance(features, FeatureGraphNet if feature_cls == "fx" else FeatureListNet)
    assert features.feature_info.module_name() == ["relu", "layer1", "layer2", "layer3", "layer4"]
    assert features.feature_info.channels() == [16, 16, 32, 64, 128]
    assert features.feature_info.reduction() == [1, 1, 2, 4, 8]
    torch.manual_seed(0)
    full = create_model("cifar_resnet18", **SMALL, **SR).eval()
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        outs = features(images)
    expected = _stage_outputs(full, ["relu", "layer1", "layer2", "layer3", "layer4"], images)
    for out, ref, chans in zip(outs, expected, features.feature_info.channels(), strict=True):
        assert out.shape[1] == chans
        torch.testing.assert_close(out, ref)
    # the SR block's output is in the stage-3 feature: without the block it differs
    assert not torch.allclose(outs[3], full.layer3[:-1](expected[2]))


def test_fx_extraction_keeps_the_block_whole() -> None:
    features = timm.create_model("srblock_cifar_resnet18", features_only=True, feature_cls="fx", **SMALL, **SR)
    calls = [n for n in features.graph_module.graph.nodes if n.op == "call_module" and n.target == "layer3.sr"]
    assert len(calls) == 1
    assert isinstance(features.graph_module.get_submodule("layer3.sr"), SRBlockNd)


def test_vgg_features_are_its_five_blocks() -> None:
    features = timm.create_model("srblock_cifar_vgg16_bn", features_only=True, out_indices=(1, 4), sr_stage=2, **SMALL)
    assert features.feature_info.module_name() == ["features.block2", "features.block5"]
    outs = features(torch.randn(2, 3, 32, 32))
    assert [tuple(o.shape[1:]) for o in outs] == [(32, 8, 8), (128, 1, 1)]


def test_num_classes_zero_gives_pooled_features() -> None:
    model = timm.create_model("srblock_resnet18", num_classes=0, sr_stage=3).eval()
    with torch.no_grad():
        assert model(torch.randn(1, 3, 224, 224)).shape == (1, 512)
    vgg = timm.create_model("srblock_cifar_vgg16_bn", num_classes=0, **SMALL).eval()
    with torch.no_grad():
        assert vgg(torch.randn(1, 3, 32, 32)).shape == (1, 128)


def test_pretrained_loads_a_local_file_strictly(tmp_path) -> None:
    trained = create_model("cifar_resnet18", **SMALL, **SR)
    path = tmp_path / "model.safetensors"
    save_file(trained.state_dict(), path)
    from_file = {"pretrained": True, "pretrained_cfg_overlay": {"file": str(path)}}
    loaded = timm.create_model("srblock_cifar_resnet18", **from_file, **SMALL, **SR)
    for key, value in trained.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, msg=key)
    with pytest.raises(RuntimeError, match=r"layer3\.sr"):  # the same file into a model without SR: no silent load
        timm.create_model("srblock_cifar_resnet18", **from_file, **SMALL)


def test_other_input_channels_are_refused() -> None:
    with pytest.raises(ValueError, match="takes 3-channel images, got in_chans=1"):
        timm.create_model("srblock_cifar_resnet18", in_chans=1)


def test_timm_fx_extractor_on_a_timm_model_with_an_inserted_block() -> None:
    model = timm.create_model("convnext_atto").eval()
    insert_sr(model, "stages.2", (3, 64, 64), num_memories=3, hidden=4, memory_init="normal")  # a hook: not Sequential
    extractor = create_feature_extractor(model, {"stages.2": "feat"})
    images = torch.randn(2, 3, 64, 64)
    (expected,) = _stage_outputs(model, ["stages.2"], images)
    with torch.no_grad():
        torch.testing.assert_close(extractor(images)["feat"], expected)
    assert [n.target for n in extractor.graph.nodes if n.op == "call_module" and ".sr" in str(n.target)] == [
        "stages.2.sr"
    ]
