"""Models from recipes (checked before anything is built), trained models back from checkpoints, and checkpoints
into weights to share."""

from __future__ import annotations

import copy
import difflib
import inspect
import os
import re
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import torch
from torch import nn

from .checkpoint import load_checkpoint
from .config import check_keys

__all__ = ["build_model", "check_buildable", "check_model_section", "export_pretrained", "load_trained_model"]

# create_model's parameters that a recipe does not write under their own name
_NOT_RECIPE_KEYS = {"name", "sr_kwargs", "kwargs"}
# SRBlockNd's parameters that insert_sr fills in itself (the rest are the recipe's model.sr keys)
_SR_FILLED = {"self", "channels", "num_memories", "hidden", "device", "dtype"}  # feat_size: a coarser memory


def _keyword_params(fn: Callable[..., Any]) -> tuple[dict[str, inspect.Parameter], bool]:
    """``({name: parameter}, takes **kwargs)`` of ``fn``."""
    params = inspect.signature(fn).parameters
    named = {
        n: p for n, p in params.items() if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and n not in ("self",)
    }
    return named, any(p.kind is p.VAR_KEYWORD for p in params.values())


def _hints(fn: Callable[..., Any]) -> dict[str, Any]:
    try:
        return typing.get_type_hints(fn)
    except Exception:  # an annotation that does not evaluate: leave that function's types unchecked
        return {}


def _matches(value: Any, hint: Any) -> bool:
    """Whether a recipe value (YAML: None, bool, int, float, str, list, dict) fits a type annotation."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any or isinstance(hint, typing.TypeVar):
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_matches(value, a) for a in args)
    if hint is type(None):
        return value is None
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if isinstance(hint, type) and issubclass(hint, os.PathLike):
        return isinstance(value, (str, os.PathLike))
    container = origin or hint
    if container in (list, tuple, Sequence):
        if not isinstance(value, (list, tuple)):
            return False
        # list[int], Sequence[int], tuple[int, ...] check every element; tuple[int, str] only the container
        element = args[0] if len(args) == 1 or (len(args) == 2 and args[1] is Ellipsis) else Any
        return all(_matches(v, element) for v in value)
    if container in (dict, Mapping):
        return isinstance(value, Mapping)
    return True  # callables, classes, ...: a recipe cannot write them; the builder checks


def _hint_text(hint: Any) -> str:
    text = hint.__name__ if isinstance(hint, type) else str(hint)
    return re.sub(r"\b(typing|collections\.abc|pathlib)\.", "", text)


def _check_values(section: str, values: Mapping[str, Any], hints: Mapping[str, Any]) -> None:
    for key, value in values.items():
        if key in hints and not _matches(value, hints[key]):
            raise ValueError(f"{section}.{key} must be {_hint_text(hints[key])}, got {value!r}")


def check_model_section(model: Mapping[str, Any]) -> None:
    """Check a recipe's ``model`` section against the registry before anything is built.

    Every key must be a parameter of :func:`srblock.models.create_model` or of the model's registered builder
    (``sr`` holds the SR block's own options), with a value of the annotated type; a builder that forwards
    ``**kwargs`` further is asked once, on the meta device (no memory, no weights), about keys it does not name.
    Raises ``ValueError`` naming the key, with a "did you mean" when one is close.

    >>> check_model_section({"name": "cifar_resnet18", "num_classes": 10, "widht": 0.5})
    Traceback (most recent call last):
    ...
    ValueError: unknown key model.widht; did you mean 'width'?
    """
    from srblock.layers import SRBlockNd
    from srblock.models import create_model, get_model_entry, insert_sr

    if "name" not in model:
        raise ValueError(f"the recipe's model section needs a 'name' (a registered model), got keys {sorted(model)}")
    if not isinstance(model["name"], str):
        raise ValueError(f"model.name must be a registered model name, got {model['name']!r}")
    entry = get_model_entry(model["name"])
    top, _ = _keyword_params(create_model)
    builder, forwards = _keyword_params(entry.builder)
    known = {**{k: p for k, p in top.items() if k not in _NOT_RECIPE_KEYS}, **builder}
    hints = {**_hints(entry.builder), **_hints(create_model)}
    options = {k: v for k, v in model.items() if k not in ("name", "sr")}
    required = [k for k, p in top.items() if p.default is p.empty and k not in _NOT_RECIPE_KEYS]
    missing = [k for k in required if model.get(k) is None]
    if missing:
        raise ValueError(f"the recipe's model section needs {', '.join(f'model.{k}' for k in missing)}")
    unknown = [k for k in options if k not in known]
    if unknown and not forwards:
        check_keys("model", {unknown[0]: None}, [*known, "sr"])
    _check_values("model", {k: v for k, v in options.items() if k in known}, hints)
    sr = model.get("sr")
    if sr is not None:
        if not isinstance(sr, Mapping):
            raise ValueError(f"model.sr must be a mapping of SR block options, got {sr!r}")
        sr_params, _ = _keyword_params(SRBlockNd.__init__)
        sr_known = [k for k in sr_params if k not in _SR_FILLED]
        check_keys("model.sr", sr, sr_known)
        # the keys go through insert_sr, whose own annotation wins (feat_size: null is its default, the stage's size)
        _check_values("model.sr", sr, {**_hints(SRBlockNd.__init__), **_hints(insert_sr)})
    if unknown:  # the builder passes **kwargs on: let it say on the meta device whether it takes them
        try:
            _meta_build(model)
        except TypeError as err:
            bad = re.search(r"unexpected keyword argument '([^']+)'", str(err))
            if bad is None:
                raise ValueError(f"model section: {err}") from None
            close = difflib.get_close_matches(bad.group(1), [*known, "sr"], n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"{model['name']} does not take it ({err})"
            raise ValueError(f"unknown key model.{bad.group(1)}; {hint}") from None


def _meta_build(model: Mapping[str, Any]) -> nn.Module:
    from srblock.models.registry import INIT_ONLY_KEYS

    # initial weights are a file to read (checked for existence by check_buildable) or a download: the builder sees
    # the key (so a model that takes none still refuses it) but no value
    options = {k: None if k in INIT_ONLY_KEYS else copy.deepcopy(v) for k, v in model.items()}
    with torch.device("meta"):
        return build_model({"model": options})


def check_buildable(config: Mapping[str, Any]) -> None:
    """Build the recipe's model on the meta device (no memory, no weights, no data), after the task has checked the
    recipe (a task's constructor may check the model against the data), so every value error surfaces before a run
    starts. What a task does to the built model with real data (e.g. a data-dependent init) runs with the run.

    A missing ``model.backbone_weights`` file is a ``FileNotFoundError``; other problems are ``ValueError``.
    """
    from .distributed import DistInfo
    from .task import get_task

    config = copy.deepcopy(dict(config))
    weights = config["model"].get("backbone_weights")
    if weights and urlparse(str(weights)).scheme not in ("http", "https", "file") and not Path(weights).is_file():
        raise FileNotFoundError(f"model.backbone_weights: no file at {weights}")
    get_task(config["task"])(config, DistInfo(), torch.device("cpu"))
    try:
        _meta_build(config["model"])
    except TypeError as err:
        raise ValueError(f"model section: {err}") from None


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
