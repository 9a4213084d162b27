"""Models from recipes, trained models back from checkpoints, and checkpoints into weights to share."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoint import load_checkpoint

__all__ = ["build_model", "export_pretrained", "load_trained_model"]


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
    from srblock.models.registry import INIT_ONLY_KEYS

    state = load_checkpoint(checkpoint_path, map_location=map_location)
    config = state["config"]
    # every weight comes from the checkpoint: an ImageNet file or download named by the recipe is not needed any more
    model_cfg = {k: v for k, v in config["model"].items() if k not in INIT_ONLY_KEYS}
    model = build_model({**config, "model": model_cfg})
    model.load_state_dict(state["model"])
    if no_sr:
        remove_sr(model)
    return model.to(map_location).eval(), config


def export_pretrained(checkpoint_path: str | Path, output_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write the trained network of a checkpoint as weights to share: ``model.safetensors`` (weights only, no
    optimizer, no RNG state, no pickled code) and ``config.json`` (the recipe's model section) in ``output_dir``.

    The folder is written next to its destination and renamed into place; an existing non-empty folder is an error
    unless ``overwrite``. Read it back with :func:`srblock.models.hub.from_pretrained`; upload it with
    ``SRModel.from_pretrained(output_dir).push_to_hub(repo_id)``. Needs the ``hub`` extra.
    """
    from srblock.models.hub import save_pretrained

    model, config = load_trained_model(checkpoint_path)  # a strict load: the weights fit the config they ship with
    return save_pretrained(model, output_dir, config["model"], overwrite=overwrite)
