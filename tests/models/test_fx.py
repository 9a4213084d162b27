"""torch.fx on the model zoo with SR: symbolic_trace and torchvision's feature extraction see the block."""

from __future__ import annotations

import pytest
import torch
import torch.fx
import torchvision
from torch import nn
from torchvision.models.feature_extraction import create_feature_extractor, get_graph_node_names

from srblock.layers import SRBlockNd
from srblock.models import create_model, find_sr_blocks, get_model_entry, insert_sr, list_models

SEGMENTATION_SIZE = (3, 32, 64)  # the Cityscapes nets with a small crop keep the memory small


def _meta_model(name: str, sr_stage: int) -> tuple[nn.Module, tuple[int, ...]]:
    size = SEGMENTATION_SIZE if "resnet50" in name and name != "resnet50" else get_model_entry(name).input_size
    extra = {"input_size": size} if size != get_model_entry(name).input_size else {}
    with torch.device("meta"):  # nothing is computed or allocated: tracing needs shapes only
        return create_model(name, num_classes=10, sr_stage=sr_stage, **extra), size


def _shapes(out) -> object:
    return {k: v.shape for k, v in out.items()} if isinstance(out, dict) else out.shape


@pytest.mark.parametrize("name", list_models())
def test_every_zoo_model_with_sr_traces(name):
    # M=3 is the paper's placement in every family; the CIFAR nets (fast to build) also at their last stage.
    stages = get_model_entry(name).stages
    for sr_stage in (3, len(stages)) if name.startswith("cifar") else (3,):
        model, size = _meta_model(name, sr_stage)
        (block_name,) = find_sr_blocks(model)
        traced = torch.fx.symbolic_trace(model)
        softmaxes = [n.target for n in traced.graph.nodes if n.op == "call_module" and n.target.endswith("softmax")]
        assert softmaxes == [f"{block_name}.softmax"]  # the block is traced, not dropped
        x = torch.zeros(2, *size, device="meta")
        for training in (True, False):
            assert _shapes(traced.train(training)(x)) == _shapes(model.train(training)(x))


@pytest.fixture
def small_sr_resnet() -> nn.Module:
    model = create_model("cifar_resnet18", num_classes=10, sr_stage=3, width=0.125, sr_kwargs={"memory_init": "normal"})
    return model.eval()


def test_traced_zoo_model_equals_eager_and_checks_its_input(small_sr_resnet):
    traced = torch.fx.symbolic_trace(small_sr_resnet)
    x = torch.randn(4, 3, 32, 32)
    torch.testing.assert_close(traced(x), small_sr_resnet(x), rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match=r"built for spatial size \(8, 8\), got \(16, 16\)"):
        traced(torch.randn(1, 3, 64, 64))


def test_feature_extractor_returns_the_output_after_sr(small_sr_resnet):
    seen = {}
    small_sr_resnet.layer3.register_forward_hook(lambda _m, _i, out: seen.setdefault("layer3", out))
    x = torch.randn(4, 3, 32, 32)
    logits = small_sr_resnet(x)
    extractor = create_feature_extractor(small_sr_resnet, {"layer3": "features", "fc": "logits"})
    out = extractor(x)
    torch.testing.assert_close(out["features"], seen["layer3"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(out["logits"], logits, rtol=1e-5, atol=1e-5)
    _, eval_nodes = get_graph_node_names(small_sr_resnet)
    assert "layer3.sr.softmax" in eval_nodes


def test_feature_extractor_with_the_block_as_a_leaf(small_sr_resnet):
    # What timm's feature extraction does once SRBlockNd is registered as a no-trace module.
    kwargs = {"leaf_modules": [SRBlockNd]}
    _, eval_nodes = get_graph_node_names(small_sr_resnet, tracer_kwargs=kwargs)
    assert "layer3.sr" in eval_nodes and "layer3.sr.softmax" not in eval_nodes
    extractor = create_feature_extractor(small_sr_resnet, {"layer3.sr": "sr"}, tracer_kwargs=kwargs)
    x = torch.randn(2, 3, 32, 32)
    seen = {}
    small_sr_resnet.layer3.sr.register_forward_hook(lambda _m, _i, out: seen.setdefault("sr", out))
    small_sr_resnet(x)
    torch.testing.assert_close(extractor(x)["sr"], seen["sr"], rtol=1e-5, atol=1e-5)


def test_hooked_block_inside_a_residual_block_is_traced():
    model = torchvision.models.resnet18().eval()
    insert_sr(model, "layer3.1", input_size=(3, 64, 64), memory_init="normal", memory_std=1.0)
    extractor = create_feature_extractor(model, {"layer3.1.sr": "sr", "layer3.1.relu_1": "before"})
    x = torch.randn(2, 3, 64, 64)
    out = extractor(x)
    seen = {}
    model.layer3[1].register_forward_hook(lambda _m, _i, o: seen.setdefault("block", o))
    model(x)
    torch.testing.assert_close(out["sr"], seen["block"], rtol=1e-5, atol=1e-5)  # the residual block's output, after SR
    torch.testing.assert_close(out["sr"], model.layer3[1].sr(out["before"]), rtol=1e-5, atol=1e-5)
    assert not torch.allclose(out["sr"], out["before"])
