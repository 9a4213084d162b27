"""load_backbone_weights: plain checkpoints into SR models; only SR (and, if asked, head) tensors may be missing."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from srblock.models import create_model, insert_sr, load_backbone_weights

README_SNIPPET = """
import torch
import torchvision
from srblock.models import insert_sr, load_backbone_weights

torch.save(torchvision.models.resnet50().state_dict(), "resnet50.pth")  # stand-in for your pretrained weights

model = torchvision.models.resnet50()                    # the architecture only, nothing is downloaded
insert_sr(model, "layer3", num_memories=10, hidden=16)   # SR after stage 3: memory 10x1024x14x14, zero at init
print(load_backbone_weights(model, "resnet50.pth"))      # fails unless only SR tensors are missing
model.eval()
with torch.no_grad():
    logits = model(torch.randn(1, 3, 224, 224))          # = the plain network's logits until the memory trains
print(logits.shape)
"""


def test_readme_snippet_runs(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(README_SNIPPET, "README snippet", "exec"), namespace)
    out = capsys.readouterr().out
    assert "loaded 320 tensors from resnet50.pth" in out and "layer3.sr.memory" in out
    assert "torch.Size([1, 1000])" in out
    saved = torch.load(tmp_path / "resnet50.pth", weights_only=True)
    loaded = namespace["model"].state_dict()
    assert set(loaded) - set(saved) == {
        f"layer3.sr.{k}" for k in ("memory", "squeeze.weight", "fc1.weight", "fc2.weight")
    }
    for key, value in saved.items():
        torch.testing.assert_close(loaded[key], value)
    assert not loaded["layer3.sr.memory"].any()  # zero memory: the logits are the plain network's


@pytest.fixture
def plain_state() -> dict[str, torch.Tensor]:
    return create_model("cifar_resnet18", num_classes=10, width=0.25).state_dict()


def sr_model(num_classes: int = 10) -> nn.Module:
    return create_model("cifar_resnet18", num_classes=num_classes, width=0.25, sr_stage=3)


def test_accepts_sr_only_missing_keys(plain_state) -> None:
    model = sr_model()
    report = load_backbone_weights(model, plain_state)
    assert sorted(report.missing_sr) == sorted(k for k in model.state_dict() if k.startswith("layer3.sr."))
    assert len(report.loaded) == len(plain_state) and not report.skipped_head
    torch.testing.assert_close(model.state_dict()["layer1.0.conv1.weight"], plain_state["layer1.0.conv1.weight"])
    assert "SR block tensors kept at init (4)" in str(report)


def test_rejects_other_missing_keys_before_touching_the_model(plain_state) -> None:
    model = sr_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    del plain_state["layer2.0.bn1.weight"]
    with pytest.raises(ValueError, match=r"missing \(not part of an SR block\): layer2\.0\.bn1\.weight"):
        load_backbone_weights(model, plain_state)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(value, before[key])


def test_rejects_unexpected_keys(plain_state) -> None:
    plain_state["extra.weight"] = torch.zeros(3)
    with pytest.raises(ValueError, match=r"unexpected \(not in the model\): extra\.weight"):
        load_backbone_weights(sr_model(), plain_state)


def test_rejects_attention_keys_missing(plain_state) -> None:
    model = create_model("cifar_resnet18", num_classes=10, width=0.25, attention="se")
    with pytest.raises(ValueError, match=r"missing .*layer1\.0\.attn\.fc1\.weight"):
        load_backbone_weights(model, plain_state)


def test_head_mismatch_only_when_allowed(plain_state) -> None:
    model = sr_model(num_classes=100)
    with pytest.raises(ValueError, match=r"shape mismatch \(pass allow_head_mismatch=True.*fc\.weight: \[10, 128\]"):
        load_backbone_weights(model, plain_state)
    report = load_backbone_weights(model, plain_state, allow_head_mismatch=True)
    assert report.skipped_head == {"fc.weight": ((10, 128), (100, 128)), "fc.bias": ((10,), (100,))}
    assert "head tensor skipped" in str(report)


def test_allow_head_mismatch_does_not_excuse_backbone_shapes(plain_state) -> None:
    plain_state["conv1.weight"] = torch.zeros(16, 1, 3, 3)
    with pytest.raises(ValueError, match=r"conv1\.weight: \[16, 1, 3, 3\]"):
        load_backbone_weights(sr_model(), plain_state, allow_head_mismatch=True)


@pytest.mark.parametrize("wrapper", ["model", "state_dict"])
def test_reads_training_checkpoint_files(tmp_path, plain_state, wrapper: str) -> None:
    path = tmp_path / "checkpoint.pt"
    torch.save({wrapper: plain_state, "epoch": 3}, path)
    report = load_backbone_weights(sr_model(), path)
    assert report.source == str(path) and len(report.loaded) == len(plain_state)


def test_strips_ddp_prefix_and_fills_old_bn_counters(plain_state) -> None:
    state = {f"module.{k}": v for k, v in plain_state.items() if not k.endswith("num_batches_tracked")}
    report = load_backbone_weights(sr_model(), state)
    assert report.missing_sr and len(report.loaded) == len(state)


def test_missing_file_is_file_not_found(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no checkpoint file"):
        load_backbone_weights(sr_model(), tmp_path / "nope.pt")


def test_works_with_hooked_blocks_on_torchvision_models() -> None:
    plain = torchvision.models.resnet18().state_dict()
    model = torchvision.models.resnet18(num_classes=7)
    insert_sr(model, "layer3.1", input_size=(3, 64, 64))
    report = load_backbone_weights(model, plain, allow_head_mismatch=True)
    assert all(k.startswith("layer3.1.sr.") for k in report.missing_sr) and len(report.missing_sr) == 4
