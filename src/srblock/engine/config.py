"""Recipes: YAML files with ``defaults:`` inheritance, dotted overrides, engine defaults and validation.

A recipe is a nested dict with the sections ``task``, ``seed``, ``data``, ``model``, ``optim``, ``schedule``,
``train``. The paper's hyperparameters live in the recipes (one ``_base.yaml`` per dataset that the table rows
inherit with ``defaults: _base.yaml``); the engine's own knobs (AMP, logging, ...) default here, in
:data:`ENGINE_DEFAULTS`, and nowhere else.

Overrides are ``"section.key=value"`` strings; the value is parsed as YAML (``4`` → int, ``[30, 60]`` → list,
``null`` → None, ``true`` → bool, and ``1e-3`` → float as a user means it, where plain YAML 1.1 reads a string).
Every section is validated before anything is built: unknown keys with a "did you mean", types against the
defaults (the ``model`` section against :func:`srblock.models.create_model` and the model's builder).

Changing ``train.epochs`` (or ``train.iterations``) scales the schedule's milestones proportionally (and
``train.eval_interval`` for iteration-counted runs) unless ``schedule.scale_milestones`` is false or the override
sets them itself, so ``--epochs 4`` is a faithful miniature of the full recipe.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import yaml

from ..io import write_text
from .lookahead import check_lookahead
from .optim import validate_groups
from .sr_balance import BALANCE_LOSSES

__all__ = [
    "ENGINE_DEFAULTS",
    "RESULT_NEUTRAL_KEYS",
    "RESUME_APPLIED_KEYS",
    "apply_overrides",
    "check_finite",
    "config_diff",
    "config_hash",
    "load_config",
    "load_yaml",
    "parse_override",
    "resolve_config",
]

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
        "name": "multistep",  # multistep | poly | cosine | piecewise | constant | plateau
        "milestones": [],  # multistep: in epochs (epoch-counted runs) or iterations (iteration-counted runs)
        "gamma": 0.1,  # multistep: lr factor at each milestone; plateau: at each plateau
        "patience": 10,  # plateau: epochs without a lower training loss before the lr drops (Keras' default)
        "min_delta": 1e-4,  # plateau: how much lower the training loss must be to count (Keras' default)
        "power": 0.9,  # poly: (1 - t/T)^power
        "min_lr": 0.0,  # poly/cosine/plateau: floor of the learning rate
        "points": [],  # piecewise: [[fraction of training, lr factor], ...], linear in between (e.g. a triangle)
        "warmup_steps": 0,  # linear warm-up from 0 over this many iterations
        "scale_milestones": True,  # scale milestones when train.epochs/iterations is overridden
    },
    "train": {
        "epochs": None,  # epoch-counted run (classification) ...
        "iterations": None,  # ... or iteration-counted run (segmentation); exactly one is set
        "eval_every": 1,  # epoch-counted: evaluate every this many epochs
        "select": "eval",  # the weights tested at the end: best on the eval split (eval) or train_loss (per epoch)
        "eval_interval": None,  # iteration-counted: evaluate every this many iterations (default: at the end)
        "batch_size": 128,  # in total over all ranks
        "eval_batch_size": None,  # default: batch_size
        "amp": None,  # null | bf16 | fp16
        "tf32": None,  # fp32 on GPUs with TF32: null = torch's default (TF32 convolutions, fp32 matmuls) | true | false
        "channels_last": False,
        "compile": False,  # torch.compile the training model: true, or a mode ("reduce-overhead": + CUDA graphs)
        "sync_bn": False,  # convert BatchNorm to SyncBatchNorm (CUDA + DDP only)
        "workers": 4,  # DataLoader worker processes (file-backed datasets only)
        "device": "auto",  # auto | cpu | cuda | cuda:N
        "log_interval": 50,  # iterations between progress lines (non-tty) / TensorBoard points
        "tensorboard": False,
        "grad_clip": None,  # max gradient norm, null = off
        "sr_balance": 0.0,  # weight of the SR routing's load-balancing loss, 0 = off (srblock.engine.sr_balance)
        "sr_balance_loss": "importance",  # which: importance | mutual_info
        "sr_balance_detach": False,  # true: its gradient trains the SR routing only, not the backbone it reads
        "find_unused_parameters": False,  # DDP
        "deterministic": False,  # torch.use_deterministic_algorithms (CPU runs are deterministic anyway)
    },
}

#: Keys that do not change a run's result (where the data is, which device, how much is printed). A sweep ignores
#: them when it decides whether a finished run is stale, :func:`config_hash` leaves them out, and a resumed run may
#: change them freely.
RESULT_NEUTRAL_KEYS = (
    "data.root",
    "data.download",
    "train.device",
    "train.workers",
    "train.log_interval",
    "train.tensorboard",
)

#: Keys a resumed run may change: they are applied from the resume on (the optimizer's hyperparameters overwrite the
#: restored ones, the LR schedule is recomputed at the current iteration, the run gets longer or shorter) and
#: recorded in ``config_changes`` of the checkpoint and ``summary.json``. Every other key (seed, task, data, model,
#: batch size, optimizer name, AMP) is refused on resume: it would make the checkpoint describe another run.
RESUME_APPLIED_KEYS = (
    "optim.lr",
    "optim.weight_decay",
    "optim.momentum",
    "optim.nesterov",
    "schedule.*",
    "train.epochs",
    "train.iterations",
    "train.eval_every",
    "train.eval_interval",
    "train.eval_batch_size",
    "train.grad_clip",
    "train.channels_last",
    "train.compile",
    "train.deterministic",
    "train.robustness",  # the classification task's end-of-training corruption benchmark: training is unchanged
)

_SCHEDULES = ("multistep", "poly", "cosine", "piecewise", "constant", "plateau")
_OPTIMIZERS = ("sgd", "adam", "adamw")
_SELECT = ("eval", "train_loss")
_AMP = (None, "bf16", "fp16")
_COMPILE = (False, True, "default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")  # torch's modes


def _deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(dict(base))
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _deep_merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


#: The most nodes a recipe or sweep file may expand to (aliases counted every time they are used): a recipe has
#: about a hundred, and nested aliases ("billion laughs") must not expand into gigabytes.
MAX_YAML_NODES = 10_000
#: The largest recipe or sweep file read (bytes).
MAX_YAML_BYTES = 1 << 20


class _Loader(yaml.SafeLoader):
    """YAML as a user writes it, read safely: ``1e-3`` and ``5E4`` are floats (YAML 1.1, PyYAML's, needs
    ``1.0e-3``); a key written twice in one mapping is refused (YAML says keys are unique, PyYAML keeps the last
    silently); a document that expands to more than :data:`MAX_YAML_NODES` nodes through aliases is refused."""

    def compose_mapping_node(self, anchor: Any) -> yaml.MappingNode:
        node = super().compose_mapping_node(anchor)
        seen: dict[tuple[str, str], yaml.Mark] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            first = seen.setdefault((key.tag, key.value), key.start_mark)
            if first is not key.start_mark:
                raise yaml.constructor.ConstructorError(
                    None,
                    None,
                    f"duplicate key {key.value!r} (first on line {first.line + 1}, again on line "
                    f"{key.start_mark.line + 1}): YAML keys are unique, write each once",
                    key.start_mark,
                )
        return node

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        sizes: dict[int, int] = {}

        def size(n: yaml.Node) -> int:  # memoised by node: an alias used N times counts N times, cheaply
            if id(n) not in sizes:
                children = n.value if isinstance(n, yaml.SequenceNode) else ()
                if isinstance(n, yaml.MappingNode):
                    children = [c for pair in n.value for c in pair]
                sizes[id(n)] = 1 + sum(size(c) for c in children)
                if sizes[id(n)] > MAX_YAML_NODES:
                    raise yaml.composer.ComposerError(
                        None,
                        None,
                        f"expands to more than {MAX_YAML_NODES:,} values through aliases (&anchor/*alias); "
                        "write the values out instead",
                        n.start_mark,
                    )
            return sizes[id(n)]

        if node is not None:
            size(node)
        return node


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)?(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789."),
)


def load_yaml(path: str | Path, *, what: str = "recipe") -> Any:
    """Read a recipe or sweep file with srblock's YAML rules (:class:`_Loader`); ``ValueError`` naming the file
    and what is wrong for a file that is too large, not UTF-8 or not valid YAML."""
    path = Path(path)
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise ValueError(f"{what} {path} is {size:,} bytes; a {what} file is at most {MAX_YAML_BYTES:,}")
    data = path.read_bytes()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as err:
        line = data[: err.start].count(b"\n") + 1
        raise ValueError(f"{what} {path} is not UTF-8 text (byte {err.start}, line {line}): save it as UTF-8") from None
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as err:
        raise ValueError(f"{what} {path} is not valid YAML: {' '.join(str(err).split())}") from None


def _read_yaml(path: Path, seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    path = path.resolve()
    if path in seen:
        raise ValueError(f"recipe inheritance cycle: {' -> '.join(str(p) for p in (*seen, path))}")
    if not path.is_file():
        raise FileNotFoundError(f"recipe not found: {path}")
    raw = load_yaml(path) or {}
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
    try:
        parsed = yaml.load(value, Loader=_Loader) if value.strip() else None
    except yaml.YAMLError as err:
        raise ValueError(f"override {text!r}: the value is not valid YAML ({str(err).splitlines()[0]})") from None
    return key.split("."), parsed


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


def check_keys(section: str, given: Mapping[str, Any], known: Iterable[str]) -> None:
    """``ValueError`` for the first key of ``given`` not in ``known``, with a "did you mean" or the known keys."""
    known = list(known)
    for key in given:
        if key not in known:
            close = difflib.get_close_matches(str(key), known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known keys: {sorted(known)}"
            raise ValueError(f"unknown key {section}.{key}{hint}")


def _type_name(default: Any) -> str:
    return {bool: "true or false", int: "an int", float: "a number", str: "a string", list: "a list"}.get(
        type(default), type(default).__name__
    )


def check_types(
    section: str, given: Mapping[str, Any], defaults: Mapping[str, Any], *, allow_none: bool = False
) -> None:
    """``ValueError`` when a value's type differs from its default's (an int is a valid float; keys whose default
    is ``None`` take anything and are checked one by one; ``allow_none``: ``None`` is valid everywhere)."""
    for key, value in given.items():
        default = defaults.get(key)
        if default is None or (allow_none and value is None):
            continue
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, (int, float)):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            ok = ok and (isinstance(value, int) or isinstance(default, float))
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, (list, tuple))
        else:
            ok = isinstance(value, type(default))
        if not ok:
            raise ValueError(f"{section}.{key} must be {_type_name(default)}, got {value!r}")


def check_finite(config: Any, where: str = "") -> None:
    """``ValueError`` naming the first number anywhere in ``config`` (every section, lists and nested mappings) that
    is NaN or ±inf: YAML's ``.nan``/``.inf`` pass every ``x <= 0`` check, so no key of any section may hold one.

    >>> check_finite({"optim": {"lr": float("nan")}})
    Traceback (most recent call last):
    ...
    ValueError: optim.lr must be a finite number, got nan
    """
    if isinstance(config, float) and not math.isfinite(config):
        raise ValueError(f"{where or 'the value'} must be a finite number, got {config}")
    if isinstance(config, Mapping):
        for key, value in config.items():
            check_finite(value, f"{where}.{key}" if where else str(key))
    elif isinstance(config, (list, tuple)):
        for i, value in enumerate(config):
            check_finite(value, f"{where}[{i}]")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


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
    check_keys("<top level>", config, SECTIONS)
    for section in ("data", "model", "optim", "schedule", "train"):
        if not isinstance(config[section], Mapping):
            raise ValueError(f"the recipe's {section!r} section must be a mapping of keys, got {config[section]!r}")
    for section in ("optim", "schedule", "train"):
        extra = list(task_train_keys) if section == "train" else []
        check_keys(section, config[section], [*ENGINE_DEFAULTS[section], *extra])
        # train.compile takes a bool or a mode string: checked below against _COMPILE, not by its default's type
        defaults = {**ENGINE_DEFAULTS[section], **({"compile": None} if section == "train" else {})}
        check_types(section, config[section], defaults)
    optim, schedule, train = config["optim"], config["schedule"], config["train"]
    if optim["name"] not in _OPTIMIZERS:
        raise ValueError(f"optim.name must be one of {_OPTIMIZERS}, got {optim['name']!r}")
    if not _number(optim["lr"]) or optim["lr"] <= 0:
        raise ValueError(f"optim.lr must be a positive number, got {optim['lr']!r}")
    validate_groups(optim["groups"])
    check_lookahead(optim["lookahead"])
    if optim["weight_decay"] < 0:
        raise ValueError(f"optim.weight_decay must be >= 0, got {optim['weight_decay']!r}")
    if not 0 <= optim["momentum"] < 1:
        raise ValueError(f"optim.momentum must be in [0, 1), got {optim['momentum']!r}")
    if schedule["name"] not in _SCHEDULES:
        raise ValueError(f"schedule.name must be one of {_SCHEDULES}, got {schedule['name']!r}")
    if schedule["name"] == "piecewise":
        _check_points(schedule["points"])
    milestones = schedule["milestones"]
    if not all(_number(m) and m >= 0 for m in milestones) or list(milestones) != sorted(milestones):
        raise ValueError(f"schedule.milestones must be increasing non-negative numbers, got {milestones}")
    if schedule["gamma"] <= 0 or schedule["min_lr"] < 0 or schedule["warmup_steps"] < 0:
        raise ValueError(
            "schedule.gamma must be > 0, schedule.min_lr and schedule.warmup_steps >= 0; got "
            f"gamma={schedule['gamma']!r}, min_lr={schedule['min_lr']!r}, warmup_steps={schedule['warmup_steps']!r}"
        )
    epochs, iterations = train["epochs"], train["iterations"]
    if (epochs is None) == (iterations is None):
        raise ValueError(
            f"set exactly one of train.epochs (epoch-counted) and train.iterations (iteration-counted), "
            f"got epochs={epochs!r}, iterations={iterations!r}"
        )
    for key in ("epochs", "iterations", "batch_size", "eval_every", "eval_interval", "eval_batch_size", "log_interval"):
        value = train[key]
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value <= 0):
            raise ValueError(f"train.{key} must be a positive int, got {value!r}")
    if train["workers"] < 0:
        raise ValueError(f"train.workers must be >= 0, got {train['workers']!r}")
    if train["grad_clip"] is not None and (not _number(train["grad_clip"]) or train["grad_clip"] <= 0):
        raise ValueError(f"train.grad_clip must be a positive number or null, got {train['grad_clip']!r}")
    if not _number(train["sr_balance"]) or train["sr_balance"] < 0:
        raise ValueError(f"train.sr_balance must be a number >= 0 (0 = off), got {train['sr_balance']!r}")
    if train["sr_balance_loss"] not in BALANCE_LOSSES:
        raise ValueError(f"train.sr_balance_loss must be one of {BALANCE_LOSSES}, got {train['sr_balance_loss']!r}")
    if train["compile"] not in _COMPILE:
        raise ValueError(f"train.compile must be one of {_COMPILE}, got {train['compile']!r}")
    if train["select"] not in _SELECT:
        raise ValueError(f"train.select must be one of {_SELECT}, got {train['select']!r}")
    if schedule["patience"] < 1 or schedule["min_delta"] < 0:
        raise ValueError(
            f"schedule.patience must be >= 1 and schedule.min_delta >= 0, got patience={schedule['patience']!r}, "
            f"min_delta={schedule['min_delta']!r}"
        )
    if train["amp"] not in _AMP:
        raise ValueError(f"train.amp must be one of {_AMP}, got {train['amp']!r}")
    if train["tf32"] is not None and not isinstance(train["tf32"], bool):
        raise ValueError(f"train.tf32 must be true, false or null (torch's default), got {train['tf32']!r}")
    if not isinstance(config["seed"], int) or isinstance(config["seed"], bool):
        raise ValueError(f"seed must be an int, got {config['seed']!r}")
    if not isinstance(config["task"], str):
        raise ValueError(f"task must be a name, got {config['task']!r}")


def _flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, Mapping) and value:
            out.update(_flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = list(value) if isinstance(value, tuple) else value
    return out


def key_matches(key: str, patterns: Iterable[str]) -> bool:
    """Whether dotted ``key`` is one of ``patterns`` (``"section.*"`` matches the whole section)."""
    return any(key == p or (p.endswith(".*") and key.startswith(p[:-1])) or key.startswith(f"{p}.") for p in patterns)


def config_diff(
    old: Mapping[str, Any], new: Mapping[str, Any], *, ignore: Iterable[str] = RESULT_NEUTRAL_KEYS
) -> dict[str, tuple[Any, Any]]:
    """``{dotted key: (old value, new value)}`` for every leaf that differs, keys in ``ignore`` left out.

    >>> config_diff({"seed": 0, "train": {"epochs": 2, "device": "cpu"}}, {"seed": 1, "train": {"epochs": 2}})
    {'seed': (0, 1)}
    """
    a, b = _flatten(old), _flatten(new)
    ignore = list(ignore)
    return {
        key: (a.get(key), b.get(key))
        for key in sorted(set(a) | set(b))
        if a.get(key) != b.get(key) and not key_matches(key, ignore)
    }


def config_hash(config: Mapping[str, Any]) -> str:
    """Short SHA-256 of a resolved config without :data:`RESULT_NEUTRAL_KEYS`: equal for runs that train alike.

    >>> config_hash({"seed": 0, "data": {"root": "/a"}}) == config_hash({"seed": 0, "data": {"root": "/b"}})
    True
    """
    flat = {k: v for k, v in _flatten(config).items() if not key_matches(k, RESULT_NEUTRAL_KEYS)}
    return hashlib.sha256(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()[:12]


def resolve_config(config: Mapping[str, Any], overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Engine defaults + ``config`` + ``overrides``, milestones scaled, the task's data defaults, validated.

    Idempotent: resolving a resolved config (e.g. a run folder's ``config.yaml``) changes nothing.
    """
    from .task import get_task

    overrides = list(overrides)
    before = _deep_merge(ENGINE_DEFAULTS, config)
    after = apply_overrides(before, overrides)
    check_finite(after)  # before any other check: NaN and inf compare False with every bound
    _scale_schedule(before, after, {".".join(parse_override(o)[0]) for o in overrides})
    if not isinstance(after["task"], str):
        raise ValueError(f"task must be a name, got {after['task']!r}")
    if not isinstance(after["train"], Mapping):
        raise ValueError(f"the recipe's 'train' section must be a mapping of keys, got {after['train']!r}")
    task = get_task(after["task"])
    after["train"] = _deep_merge(task.train_defaults, after["train"])
    validate_config(after, task.train_defaults)
    task.validate_train(after["train"])
    after["optim"]["lookahead"] = check_lookahead(after["optim"]["lookahead"])
    after["data"] = _deep_merge(task.data_defaults, after["data"])
    task.validate_data(after["data"])
    from .build import check_model_section

    check_model_section(after["model"])
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
    """Write a resolved config as YAML, atomically (the run folder's ``config.yaml``; :func:`load_config` reads it)."""
    write_text(path, yaml.safe_dump(dict(config), sort_keys=False))
