"""Weights to share through huggingface_hub's mixin: a folder round trip equals the model; nothing is overwritten."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import load_file

from srblock.models import create_model, load_backbone_weights, model_from_config
from srblock.models.hub import CONFIG_NAME, WEIGHTS_NAME, SRModel, from_pretrained, save_pretrained

SECTION = {
    "name": "cifar_resnet18",
    "num_classes": 7,
    "width": 0.25,
    "sr_stage": 3,
    "num_memories": 4,
    "hidden": 8,
    "regularizer": "dropout2d",
    "sr": {"memory_init": "normal", "memory_std": 0.5},  # a non-zero memory: the block changes the output
}


@pytest.fixture
def model() -> torch.nn.Module:
    return model_from_config(SECTION).eval()


def test_round_trip_equals_the_model(tmp_path, model) -> None:
    save_pretrained(model, tmp_path / "shared", SECTION)
    loaded = from_pretrained(tmp_path / "shared")
    assert type(loaded) is type(model) and not loaded.training
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0, msg=key)
    images = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)


def test_folder_holds_the_model_section_and_the_plain_networks_keys(tmp_path, model) -> None:
    with_init_only = {**SECTION, "weights": None, "backbone_weights": "imagenet.pth"}
    SRModel.from_model(model, with_init_only).save_pretrained(tmp_path / "shared")
    assert sorted(p.name for p in (tmp_path / "shared").iterdir()) == ["README.md", CONFIG_NAME, WEIGHTS_NAME]
    assert json.loads((tmp_path / "shared" / CONFIG_NAME).read_text()) == SECTION  # initial-weight keys dropped
    weights = load_file(tmp_path / "shared" / WEIGHTS_NAME)
    assert weights.keys() == model.state_dict().keys()  # no "model." prefix: the file is the network's own
    plain = create_model("cifar_resnet18", num_classes=7, width=0.25, sr_stage=3, num_memories=4, hidden=8)
    assert len(load_backbone_weights(plain, tmp_path / "shared" / WEIGHTS_NAME).loaded) == len(weights)


def test_srmodel_is_built_from_a_model_section_and_saves_its_config(tmp_path) -> None:
    wrapper = SRModel(**SECTION)
    assert wrapper.model.layer3.sr.memory.shape == (4, 64, 8, 8)
    wrapper.save_pretrained(tmp_path / "a")
    again = SRModel.from_pretrained(tmp_path / "a")
    assert again.config == SECTION
    again.save_pretrained(tmp_path / "b")  # what from_pretrained returns saves again (as push_to_hub would)
    assert (tmp_path / "a" / CONFIG_NAME).read_text() == (tmp_path / "b" / CONFIG_NAME).read_text()


def test_existing_folder_is_not_overwritten_unless_asked(tmp_path, model) -> None:
    target = tmp_path / "shared"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="exists and is not empty; choose another folder"):
        save_pretrained(model, target, SECTION)
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    with pytest.raises(FileExistsError, match=r"is not an srblock export \(it holds notes.txt\)"):
        save_pretrained(model, target, SECTION, overwrite=True)  # overwrite replaces only an export
    assert [p.name for p in target.iterdir()] == ["notes.txt"]
    (target / "notes.txt").unlink()
    save_pretrained(model, target, SECTION)
    save_pretrained(model, target, SECTION, overwrite=True)
    assert sorted(p.name for p in target.iterdir()) == ["README.md", CONFIG_NAME, WEIGHTS_NAME]
    assert [p.name for p in tmp_path.iterdir()] == ["shared"]  # no staging folder left behind


def test_weights_that_do_not_fit_the_config_are_an_error(tmp_path, model) -> None:
    save_pretrained(model, tmp_path / "shared", SECTION)
    config = tmp_path / "shared" / CONFIG_NAME
    config.write_text(json.dumps({**SECTION, "num_memories": 5}))
    with pytest.raises(RuntimeError, match=r"size mismatch for layer3\.sr\.memory"):
        from_pretrained(tmp_path / "shared")
    config.unlink()
    with pytest.raises(FileNotFoundError, match=r"no config\.json with a model 'name'"):
        from_pretrained(tmp_path / "shared")


def test_config_must_be_json(model) -> None:
    with pytest.raises(ValueError, match="must be JSON"):
        SRModel.from_model(model, {**SECTION, "sr": {"act_layer": torch.nn.ReLU}})


def test_push_to_hub_gets_the_folder_name_by_default(tmp_path, model, monkeypatch) -> None:
    pushed = []
    monkeypatch.setattr(SRModel, "push_to_hub", lambda self, repo_id, **kw: pushed.append((repo_id, kw)) or "url")
    assert SRModel.from_model(model, SECTION).save_pretrained(tmp_path / "my-sr-net", push_to_hub=True) == "url"
    assert pushed == [("my-sr-net", {"config": SECTION})]


def test_a_model_with_several_sr_blocks_round_trips(tmp_path) -> None:
    section = {**SECTION, "sr_stage": [3, 4]}
    model = model_from_config(section).eval()
    save_pretrained(model, tmp_path / "shared", section)
    loaded = from_pretrained(tmp_path / "shared")
    assert loaded.layer4.sr.memory.shape == (4, 128, 4, 4)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(images), model(images), rtol=0, atol=0)
