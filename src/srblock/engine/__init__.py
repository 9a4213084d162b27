"""One training/evaluation engine for every task: recipes, the loop, DDP, checkpoints, metrics, logging.

>>> from srblock.engine import load_config, train
>>> config = load_config("cifar10/r18_d2d_sr", ["train.epochs=1", "data.train_subset=512"])
>>> summary = train(config, "runs/quick")  # doctest: +SKIP
"""

from .build import build_model, export_pretrained, load_trained_model
from .checkpoint import load_checkpoint, save_checkpoint
from .config import load_config, resolve_config
from .task import Loaders, Task, get_task, register_task

__all__ = [
    "Loaders",
    "Task",
    "build_model",
    "evaluate_checkpoint",
    "export_pretrained",
    "get_task",
    "load_checkpoint",
    "load_config",
    "load_trained_model",
    "register_task",
    "resolve_config",
    "save_checkpoint",
    "train",
]


def __getattr__(name: str):
    # The loop imports the model zoo; load it on first use so `srblock.engine.task` stays light for plug-ins.
    if name in ("train", "evaluate_checkpoint"):
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
