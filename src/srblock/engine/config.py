"""Recipes: YAML files with ``defaults:`` inheritance, dotted overrides, engine defaults and validation.

A recipe is a nested dict with the sections ``task``, ``seed``, ``data``, ``model``, ``optim``, ``schedule``,
``train``. The paper's hyperparameters live in the recipes (one ``_base.yaml`` per dataset that the table rows
inherit with ``defaults: _base.yaml``); the engine's own knobs (AMP, logging, ...) default here, in
:data:`ENGINE_DEFAULTS`, and nowhere else.

Overrides are ``"section.key=value"`` strings; the value is parsed as YAML (``4`` → int, ``[30, 60]`` → list,
``null`` → None, ``true`` → bool). Changing ``train.epochs`` (or ``train.iterations``) scales the schedule's
milestones proportionally (and ``train.eval_interval`` for iteration-counted runs) unless
``schedule.scale_milestones`` is false or the override sets them itself, so ``--epochs 4`` is a faithful
miniature of the full recipe.
"""

from __future__ import annotations

import copy
import difflib
import itertools
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from .lookahead import check_lookahead
from .optim import validate_groups

__all__ = ["ENGINE_DEFAULTS", "apply_overrides", "load_config", "parse_override", "resolve_config"]

SECTIONS = ("task", "seed", "data", "model", "optim", "schedule", "train")

#: The engine's knobs. The paper's hyperparameters (lr, milestones, weight decay, epochs, batch) are in the recipes.
ENGINE_DEFAULTS: dict[str, Any] = {
    "task": "classification",
    "seed": 0,
    "data": {},
    "model": {},
    "optim": {
        "name": "sgd",
        "lr": None,
        "momentum": 0.0,
        "weight_decay": 0.0,
        "nesterov": False,
        "groups": {},  # parameter groups with their own lr_mult / weight_decay / frozen (engine/optim.py)
        "lookahead": None,  # null | true | {start, every, decay, power} (airbench's; srblock.engine.lookahead)
    },
    "schedule": {
        "name": "multistep",  # multistep | poly | cosine | piecewise | constant
        "milestones": [],  # multistep: in epochs (epoch-counted runs) or iterations (iteration-counted runs)
        "gamma": 0.1,  # multistep: lr factor at each milestone
        "power": 0.9,  # poly: (1 - t/T)^power
        "min_lr": 0.0,  # poly/cosine: floor of the learning rate
        "points": [],  # piecewise: [[fraction of training, lr factor], ...], linear in between (e.g. a triangle)
        "warmup_steps": 0,  # linear warm-up from 0 over this many iterations
        "scale_milestones": True,  # scale milestones when train.epochs/iterations is overridden
    },
    "train": {
        "epochs": None,  # epoch-counted run (classification) ...
        "iterations": None,  # ... or iteration-counted run (segmentation); exactly one is set
        "eval_every": 1,  # epoch-counted: evaluate every this many epochs
        "eval_interval": None,  # iteration-counted: evaluate every this many iterations (default: at the end)
        "batch_size": 128,  # in total over all ranks
        "eval_batch_size": None,  # default: batch_size
        "amp": None,  # null | bf16 | fp16
        "channels_last": False,
        "compile": False,  # torch.compile the training forward
        "sync_bn": False,  # convert BatchNorm to SyncBatchNorm (CUDA + DDP only)
        "workers": 4,  # DataLoader worker processes (file-backed datasets only)
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "log_interval": 50,  # iterations between progress lines (non-tty) / TensorBoard points
        "tensorboard": False,
        "grad_clip": None,  # max gradient norm, null = off
        "find_unused_parameters": False,  # DDP
        "deterministic": False,  # torch.use_deterministic_algorithms (CPU runs are deterministic anyway)
    },
}

_SCHEDULES = ("multistep", "poly", "cosine", "piecewise", "constant")
_OPTIMIZERS = ("sgd", "adamw")
_AMP = (None, "bf16", "fp16")


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ValueError(f"recipe inheritance cycle: {' -> '.join(str(p) for p in (*seen, path))}")
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    with path.open() as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ValueError(f"recipe {path} must be a YAML mapping, got {type(raw).__name__}")
    parents = raw.pop("defaults", None) or []
    if isinstance(parents, str):
        parents = [parents]
    merged: dict[str, Any] = {}
    for parent in parents:
        merged = _deep_merge(merged, _read_yaml(path.parent / parent, (*seen, path)))
    return _deep_merge(merged, raw)


def parse_override(text: str) -> tuple[list[str], Any]:
    """``"model.num_memories=4"`` → ``(["model", "num_memories"], 4)`` (the value parsed as YAML)."""
    key, sep, value = text.partition("=")
    key = key.strip().lstrip("-")
    if not sep or not key:
        raise ValueError(f"override must look like 'section.key=value', got {text!r}")
    return key.split("."), yaml.safe_load(value) if value.strip() else None


def apply_overrides(config: Mapping[str, Any], overrides: Iterable[str]) -> dict[str, Any]:
    """A copy of ``config`` with each ``"a.b.c=value"`` override applied (intermediate dicts are created)."""
    config = copy.deepcopy(dict(config))
    for text in overrides:
        path, value = parse_override(text)
        node = config
        for part in path[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ValueError(f"override {text!r}: {part!r} is a {type(child).__name__}, not a section")
            node = child
        node[path[-1]] = value
    return config


def _scale_schedule(before: Mapping[str, Any], after: dict[str, Any], overridden: set[str]) -> None:
    """Scale milestones (and the eval interval) by the ratio of the new to the recipe's run length."""
    if not after["schedule"].get("scale_milestones", True):
        return
    for unit in ("epochs", "iterations"):
        old, new = before.get("train", {}).get(unit), after["train"].get(unit)
        if not old or not new or old == new:
            continue
        ratio = new / old
        if "schedule.milestones" not in overridden:
            after["schedule"]["milestones"] = [round(m * ratio, 4) for m in after["schedule"].get("milestones", [])]
        if unit == "iterations" and after["train"].get("eval_interval") and "train.eval_interval" not in overridden:
            after["train"]["eval_interval"] = max(1, round(after["train"]["eval_interval"] * ratio))
        if after["schedule"].get("warmup_steps") and "schedule.warmup_steps" not in overridden:
            after["schedule"]["warmup_steps"] = round(after["schedule"]["warmup_steps"] * ratio)


def _check_keys(section: str, given: Mapping[str, Any], known: Iterable[str]) -> None:
    known = list(known)
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(known)}"
            raise ValueError(f"unknown key {section}.{key}{hint}")


def _check_points(points: Any) -> None:
    """``schedule.points`` of the piecewise schedule: [fraction, factor] pairs, fractions from 0 to 1, increasing."""
    expected = "a list of [fraction of training, lr factor] pairs with fractions increasing from 0 to 1"
    pairs = points if isinstance(points, (list, tuple)) else None
    if not pairs or not all(
        isinstance(pt, (list, tuple)) and len(pt) == 2 and all(isinstance(v, (int, float)) for v in pt) for pt in pairs
    ):
        raise ValueError(f"schedule.points must be {expected}, got {points!r}")
    fractions = [pt[0] for pt in pairs]
    if fractions[0] != 0 or fractions[-1] != 1 or any(b <= a for a, b in itertools.pairwise(fractions)):
        raise ValueError(f"schedule.points must be {expected}, got fractions {fractions}")
    if any(pt[1] < 0 for pt in pairs):
        raise ValueError(f"schedule.points: lr factors must be >= 0, got {[pt[1] for pt in pairs]}")


def validate_config(config: Mapping[str, Any], task_train_keys: Iterable[str] = ()) -> None:
    """Raise ``ValueError`` naming the offending key for anything the engine cannot run.

    ``task_train_keys``: the task's own keys of the ``train`` section (:attr:`srblock.engine.task.Task.train_defaults`).
    """
    _check_keys("<top level>", config, SECTIONS)
    for section in ("optim", "schedule", "train"):
        extra = list(task_train_keys) if section == "train" else []
        _check_keys(section, config[section], [*ENGINE_DEFAULTS[section], *extra])
    optim, schedule, train = config["optim"], config["schedule"], config["train"]
    if optim["name"] not in _OPTIMIZERS:
        raise ValueError(f"optim.name must be one of {_OPTIMIZERS}, got {optim['name']!r}")
    if not isinstance(optim["lr"], (int, float)) or optim["lr"] <= 0:
        raise ValueError(f"optim.lr must be a positive number, got {optim['lr']!r}")
    validate_groups(optim["groups"])
    check_lookahead(optim["lookahead"])
    if schedule["name"] not in _SCHEDULES:
        raise ValueError(f"schedule.name must be one of {_SCHEDULES}, got {schedule['name']!r}")
    if list(schedule["milestones"]) != sorted(schedule["milestones"]):
        raise ValueError(f"schedule.milestones must be increasing, got {schedule['milestones']}")
    if schedule["name"] == "piecewise":
        _check_points(schedule["points"])
    epochs, iterations = train["epochs"], train["iterations"]
    if (epochs is None) == (iterations is None):
        raise ValueError(
            f"set exactly one of train.epochs (epoch-counted) and train.iterations (iteration-counted), "
            f"got epochs={epochs!r}, iterations={iterations!r}"
        )
    for key in ("epochs", "iterations", "batch_size", "eval_every", "log_interval"):
        value = train[key]
        if value is not None and (not isinstance(value, int) or value <= 0):
            raise ValueError(f"train.{key} must be a positive int, got {value!r}")
    if train["amp"] not in _AMP:
        raise ValueError(f"train.amp must be one of {_AMP}, got {train['amp']!r}")
    if not isinstance(config["seed"], int):
        raise ValueError(f"seed must be an int, got {config['seed']!r}")
    if not isinstance(config["task"], str):
        raise ValueError(f"task must be a name, got {config['task']!r}")


def resolve_config(config: Mapping[str, Any], overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Engine defaults + ``config`` + ``overrides``, milestones scaled, the task's data defaults, validated.

    Idempotent: resolving a resolved config (e.g. a run folder's ``config.yaml``) changes nothing.
    """
    from .task import get_task

    overrides = list(overrides)
    before = _deep_merge(ENGINE_DEFAULTS, config)
    after = apply_overrides(before, overrides)
    _scale_schedule(before, after, {".".join(parse_override(o)[0]) for o in overrides})
    if not isinstance(after["task"], str):
        raise ValueError(f"task must be a name, got {after['task']!r}")
    task = get_task(after["task"])
    after["train"] = _deep_merge(task.train_defaults, after["train"])
    validate_config(after, task.train_defaults)
    task.validate_train(after["train"])
    after["optim"]["lookahead"] = check_lookahead(after["optim"]["lookahead"])
    after["data"] = _deep_merge(task.data_defaults, after["data"])
    task.validate_data(after["data"])
    return after


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Read a recipe (following ``defaults:``), apply ``"section.key=value"`` overrides, fill defaults, validate.

    ``path`` is a YAML file or a built-in recipe name (:func:`srblock.recipes.find_recipe`).

    >>> cfg = load_config("cifar10/r18_d2d_sr", ["train.epochs=2", "model.width=0.25"])
    >>> cfg["train"]["epochs"], cfg["schedule"]["milestones"]  # milestones scaled from [90, 136] of 182 epochs
    (2, [0.989, 1.4945])
    """
    from srblock.recipes import find_recipe

    return resolve_config(_read_yaml(find_recipe(path)), overrides)


def dump_config(config: Mapping[str, Any], path: str | Path) -> None:
    """Write a resolved config as YAML (the run folder's ``config.yaml``; loadable with :func:`load_config`)."""
    with Path(path).open("w") as f:
        yaml.safe_dump(dict(config), f, sort_keys=False)
