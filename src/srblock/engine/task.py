"""The task interface: what a task (classification, segmentation, ...) plugs into the one training engine.

The engine (:mod:`srblock.engine.trainer`) owns everything that is the same for every task: the step loop, the
evaluation interval, optimizer and LR schedule, checkpoints and exact resume, DDP (torchrun), mixed precision,
channels_last, ``torch.compile``, the non-finite-loss guard, logging (``metrics.csv``, tqdm/lines, TensorBoard) and
``summary.json``. A task supplies only what differs, by subclassing :class:`Task` and registering itself::

    from srblock.engine.task import Loaders, Task, register_task

    @register_task("segmentation")
    class SegmentationTask(Task):
        primary_metric = "miou"                       # key of evaluate()'s dict that picks checkpoint_best.pt
        data_defaults = {"dataset": "camvid", "root": None, "crop_size": [360, 480]}

        def build_loaders(self) -> Loaders: ...       # train/val/test batch loaders (see below)
        def loss(self, model, batch): ...             # -> (scalar loss, {"loss": detached batch-mean, ...})
        def evaluate(self, model, loader): ...        # -> {"miou": ..., "macc": ...}, all-reduced over ranks
        def summarize(self, val, test): ...           # -> {"best_val_miou": ..., "test_miou": ...}

``config["task"]`` names the task. ``get_task("segmentation")`` imports ``srblock.engine.segmentation`` lazily,
so a task module only has to exist and call :func:`register_task` at import time.

The config a task sees (``self.config``) is the resolved recipe (see :mod:`srblock.engine.config`): sections
``data``, ``model``, ``optim``, ``schedule``, ``train`` and ``seed``. ``data`` is the task's own section:
``data_defaults`` are merged under it and the task validates it (``validate_data``); a task may add keys of its own
to ``train`` the same way (``train_defaults``, ``validate_train``). The engine reads
``train.epochs`` (epoch-counted runs, classification: evaluate every ``train.eval_every`` epochs) or
``train.iterations`` (iteration-counted runs, segmentation: evaluate every ``train.eval_interval`` steps); the LR
schedule is stepped once per iteration either way (``multistep`` milestones are in epochs or iterations
accordingly; ``poly`` decays over all iterations).

Batch loaders. ``Loaders.train``/``val``/``test`` are objects with ``__iter__`` (yielding batches: any nesting of
tuples/lists/dicts of tensors, moved to the device by :meth:`Task.to_device`), ``__len__`` (batches per epoch on
this rank) and ``set_epoch(epoch, start_batch=0)`` (reshuffle for that epoch; ``start_batch`` skips the batches a
resumed run has already trained on). :mod:`srblock.data.loader` provides two that follow the protocol and are
DDP-aware (each rank gets a disjoint shard; evaluation sees every sample exactly once across ranks):
``InMemoryLoader`` (uint8 tensors with batched augmentation, no worker processes) and ``make_loader`` (any
map-style dataset through a ``DataLoader`` with :class:`srblock.data.loader.ShardSampler`). ``val`` may be
``None`` (no validation split: the engine then evaluates ``test`` each period and keeps the last checkpoint as
"best"); ``test`` may be ``None`` (no test evaluation at the end).

Evaluation runs on the bare model (never the DDP wrapper), under ``torch.no_grad()``, in ``model.eval()`` mode and
inside the engine's autocast context; the task must all-reduce its sums itself (``self.dist.all_reduce``) so that
every rank returns the same dict.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

import torch
from torch import nn

from .distributed import DistInfo

__all__ = ["BatchLoader", "Loaders", "Task", "get_task", "register_task"]


class BatchLoader(Protocol):
    """What the engine needs from a loader (see the module docstring)."""

    def __iter__(self) -> Iterator[Any]: ...

    def __len__(self) -> int: ...

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None: ...


@dataclass
class Loaders:
    """The three splits of a task. ``val``/``test`` may be ``None`` (see the module docstring)."""

    train: BatchLoader
    val: BatchLoader | None
    test: BatchLoader | None


class Task:
    """Base class of a task plug-in. Override the methods marked *required*; the rest have working defaults.

    Attributes set by the engine before any method is called:
        config: the resolved recipe (nested dict); ``config["data"]`` already has ``data_defaults`` merged in.
        dist: rank/world size/all-reduce helpers (:class:`srblock.engine.distributed.DistInfo`).
        device: the device batches and the model live on.
    """

    #: key of :meth:`evaluate`'s result that selects ``checkpoint_best.pt`` and is shown in progress lines.
    primary_metric: ClassVar[str] = "acc1"
    #: whether a larger primary metric is better.
    higher_is_better: ClassVar[bool] = True
    #: defaults for the task's ``data`` section; ``validate_data`` rejects keys outside it, and values whose type
    #: differs from the default's unless :attr:`data_types` lists more types for that key.
    data_defaults: ClassVar[dict[str, Any]] = {}
    #: the accepted types of ``data`` keys that take more than their default's type (e.g. ``flip``: bool or a mode).
    data_types: ClassVar[dict[str, tuple[type, ...]]] = {}
    #: the task's own keys of the ``train`` section (e.g. classification's ``label_smoothing``), merged under the
    #: engine's; the config accepts them in recipes of this task only.
    train_defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: dict[str, Any], dist: DistInfo, device: torch.device) -> None:
        # A config saved before a key existed (an older run's checkpoint) runs with that key's default.
        self.config = {
            **config,
            "data": {**self.data_defaults, **config.get("data", {})},
            "train": {**self.train_defaults, **config.get("train", {})},
        }
        self.dist = dist
        self.device = torch.device(device)
        self.channels_last = bool(config.get("train", {}).get("channels_last", False))

    # -- configuration ------------------------------------------------------------------------------------------
    @classmethod
    def validate_data(cls, data: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` for a key of ``config["data"]`` that the task does not know (catches typos, with a
        "did you mean") or a value whose type differs from its default's."""
        from .config import check_keys, check_types

        check_keys("data", data, cls.data_defaults)
        # lists are left to the task (a crop may be written as one int); None means "off"/"default" throughout
        scalars = {
            k: v
            for k, v in data.items()
            if not isinstance(cls.data_defaults[k], list) and not isinstance(v, cls.data_types.get(k, ()))
        }
        check_types("data", scalars, cls.data_defaults, allow_none=True)

    @classmethod
    def validate_train(cls, train: Mapping[str, Any]) -> None:
        """Raise ``ValueError`` for a bad value of one of the task's own ``train`` keys (:attr:`train_defaults`)."""

    # -- required -----------------------------------------------------------------------------------------------
    def build_loaders(self) -> Loaders:
        """*Required.* The train/val/test batch loaders for this rank (shard with ``self.dist``)."""
        raise NotImplementedError

    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """*Required.* Forward one training batch; return the scalar loss to backpropagate and a dict of detached
        0-d tensors (batch means, e.g. ``{"loss": ..., "acc1": ...}``) that the engine averages over the period
        (weighted by :meth:`batch_size`) without a device sync per step."""
        raise NotImplementedError

    def evaluate(self, model: nn.Module, loader: BatchLoader) -> dict[str, float]:
        """*Required.* Metrics over the whole split, all-reduced over ranks; must contain :attr:`primary_metric`."""
        raise NotImplementedError

    # -- optional -----------------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        """The model from ``config["model"]`` through the model zoo (``srblock.models.create_model``)."""
        from .build import build_model

        return build_model(self.config)

    def summarize(self, val: Mapping[str, float] | None, test: Mapping[str, float] | None) -> dict[str, Any]:
        """Task-specific keys of ``summary.json`` from the best validation metrics and the final test metrics."""
        key = self.primary_metric
        return {
            f"best_val_{key}": None if val is None else val.get(key),
            f"test_{key}": None if test is None else test.get(key),
        }

    def after_test(
        self, model: nn.Module, test: BatchLoader, evaluate: Callable[[BatchLoader, str], dict[str, Any]]
    ) -> dict[str, Any]:
        """Extra keys of ``summary.json``, computed once at the end of training with the tested (best) weights;
        ``evaluate(loader, name)`` runs :meth:`evaluate` as the engine does. None by default (the classification
        task evaluates the corruption benchmark here when ``train.robustness`` is set)."""
        return {}

    def on_train_step(self, model: nn.Module, progress: float) -> None:
        """Called before every training step with ``progress = step / total_steps`` in [0, 1).

        A task whose models change with training progress acts here (the classification task ramps DropBlock); the
        base passes ``progress`` to a model's own ``set_train_progress(progress)`` when it has that method (airbench
        freezes its whitening bias on time).
        """
        set_progress = getattr(model, "set_train_progress", None)
        if callable(set_progress):
            set_progress(progress)

    def batch_sizes(self) -> tuple[int, int]:
        """(train, eval) batch per rank: the recipe's totals ``train.batch_size`` and ``train.eval_batch_size``
        (default: the training batch) divided by the world size."""
        train_cfg, world = self.config["train"], self.dist.world_size
        return train_cfg["batch_size"] // world, (train_cfg["eval_batch_size"] or train_cfg["batch_size"]) // world or 1

    def loader_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`srblock.data.loader.make_loader` that every split of this rank shares."""
        return {
            "seed": self.config["seed"],
            "rank": self.dist.rank,
            "world_size": self.dist.world_size,
            "workers": self.config["train"]["workers"],
            "pin_memory": self.device.type == "cuda",
        }

    def batch_size(self, batch: Any) -> int:
        """Number of samples in a batch (used to weight the running means of :meth:`loss`'s logs)."""
        first = batch
        while isinstance(first, (list, tuple)):
            first = first[0]
        if isinstance(first, Mapping):
            first = next(iter(first.values()))
        return int(first.shape[0])

    def to_device(self, batch: Any) -> Any:
        """Move a batch to ``self.device`` (4-d float tensors in channels_last when the recipe asks for it)."""
        if isinstance(batch, torch.Tensor):
            batch = batch.to(self.device, non_blocking=True)
            if self.channels_last and batch.dim() == 4 and batch.is_floating_point():
                batch = batch.contiguous(memory_format=torch.channels_last)
            return batch
        if isinstance(batch, Mapping):
            return {k: self.to_device(v) for k, v in batch.items()}
        if isinstance(batch, Sequence) and not isinstance(batch, str):
            return type(batch)(self.to_device(v) for v in batch)
        return batch


_TASKS: dict[str, type[Task]] = {}
_TASK_MODULES = {
    "classification": "srblock.engine.classification",
    "segmentation": "srblock.engine.segmentation",
    "timeseries": "srblock.engine.timeseries",
}


def register_task(name: str):
    """Class decorator: make a :class:`Task` subclass available as ``config["task"] == name``."""

    def decorator(cls: type[Task]) -> type[Task]:
        if not (isinstance(cls, type) and issubclass(cls, Task)):
            raise TypeError(f"register_task expects a Task subclass, got {cls!r}")
        _TASKS[name] = cls
        cls.name = name
        return cls

    return decorator


def get_task(name: str) -> type[Task]:
    """The task class registered as ``name`` (built-in task modules are imported on first use)."""
    if name not in _TASKS and name in _TASK_MODULES:
        importlib.import_module(_TASK_MODULES[name])
    if name not in _TASKS:
        raise ValueError(f"unknown task {name!r}; known tasks: {sorted(set(_TASKS) | set(_TASK_MODULES))}")
    return _TASKS[name]
