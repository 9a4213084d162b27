"""torch.hub: the repository's hubconf.py loads every zoo model from this checkout (source="local")."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest
import torch

from srblock.models import create_model, list_models

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(not (REPO / "hubconf.py").is_file(), reason="hubconf.py ships with the repository")


def _hubconf() -> ModuleType:
    # torch.hub.list/help read GitHub repositories only; this is how torch.hub.load(source="local") imports the file
    spec = importlib.util.spec_from_file_location("hubconf", REPO / "hubconf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hub_lists_every_zoo_model() -> None:
    hubconf = _hubconf()
    entrypoints = [n for n in dir(hubconf) if callable(getattr(hubconf, n)) and not n.startswith("_")]  # torch.hub.list
    assert entrypoints == list_models()
    assert all(importlib.util.find_spec(dep) for dep in hubconf.dependencies)


def test_hub_load_passes_create_model_keywords() -> None:
    torch.manual_seed(0)
    model = torch.hub.load(
        str(REPO), "cifar_resnet18", source="local", num_classes=100, sr_stage=3, num_memories=6, width=0.25
    )
    torch.manual_seed(0)
    direct = create_model("cifar_resnet18", num_classes=100, sr_stage=3, num_memories=6, width=0.25)
    assert model.layer3.sr.memory.shape == (6, 64, 8, 8) and model.fc.out_features == 100
    for (key, ours), theirs in zip(model.state_dict().items(), direct.state_dict().values(), strict=True):
        torch.testing.assert_close(ours, theirs, msg=key)


def test_hub_help_describes_the_network() -> None:
    doc = _hubconf().resnet50.__doc__  # what torch.hub.help shows
    assert doc.startswith("ResNet50, torchvision ImageNet layout") and "create_model" in doc


def test_hub_unknown_model_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="Cannot find callable resnet5 in hubconf"):
        torch.hub.load(str(REPO), "resnet5", source="local")
