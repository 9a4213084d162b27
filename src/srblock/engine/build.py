"""Models from recipes, and trained models back from checkpoints."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_checkpoint

__all__ = ["build_model", "load_trained_model"]


def build_model(config: Mapping[str, Any]) -> nn.Module:
    """The network of a recipe: :func:`srblock.models.model_from_config` of its ``model`` section.

    >>> model = build_model({"model": {"name": "cifar_resnet18", "num_classes": 10, "sr_stage": 3, "width": 0.25}})
    """
    from srblock.models import model_from_config

    return model_from_config(config["model"])


def load_trained_model(
    checkpoint_path: str | Path, *, no_sr: bool = False, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """``(model, config)`` from a checkpoint written by :func:`srblock.engine.train`, in eval mode.

    ``no_sr=True`` replaces every SR block by ``nn.Identity`` after loading: the paper's ablation (PAPER.md §5).
    """
    from srblock.models import remove_sr

    state = load_checkpoint(checkpoint_path, map_location=map_location)
    config = state["config"]
    model_cfg = dict(config["model"])
    if model_cfg.get("backbone_weights"):  # every weight comes from the checkpoint: that file need not exist any more
        model_cfg["backbone_weights"] = None
    model = build_model({**config, "model": model_cfg})
    model.load_state_dict(state["model"])
    if no_sr:
        remove_sr(model)
    return model.to(map_location).eval(), config
