"""Checkpoints: plain dicts of state dicts, written atomically, read with ``weights_only=True``.

A checkpoint holds ``model``, ``optimizer``, ``scheduler``, ``scaler`` (state dicts), ``step``, ``epoch``,
``config``, ``best_metric``, ``best_step``, ``history`` (the metrics rows so far), ``config_changes`` (keys changed
on resume), ``wall_time_s`` and ``rng`` (torch/CUDA/numpy/python generator states), so ``--resume`` continues
exactly. Everything in it is a tensor, number, string, list or dict, which is what
``torch.load(weights_only=True)`` accepts: a file that needs more (a pickled object, a foreign format) is refused
with :class:`CheckpointError`, never loaded with arbitrary code execution.
"""

from __future__ import annotations

import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..io import atomic_open, signals_held

__all__ = [
    "CheckpointError",
    "get_rng_state",
    "kept_checkpoint",
    "load_checkpoint",
    "save_checkpoint",
    "set_rng_state",
]

#: the two checkpoints of a run folder; a damaged one is reported with a pointer to the other.
CHECKPOINTS = ("checkpoint_last.pt", "checkpoint_best.pt")


class CheckpointError(ValueError):
    """A checkpoint file is damaged (truncated, not a torch file) or not an srblock checkpoint."""


def kept_checkpoint(run: str | Path) -> Path | None:
    """The checkpoint a finished run folder kept: the best (whose test accuracy its summary reports), else the last;
    ``None`` when it kept neither."""
    run = Path(run)
    return next((run / n for n in ("checkpoint_best.pt", "checkpoint_last.pt") if (run / n).is_file()), None)


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (:func:`srblock.io.atomic_open`).

    A crash, signal or full disk mid-write leaves the previous file intact, never a truncated one. Ctrl-C and
    SIGTERM wait until the file is written (:func:`srblock.io.signals_held`): inside ``torch.save`` they would
    surface as an unrelated ``RuntimeError`` instead of the interrupt.
    """
    with signals_held(), atomic_open(path, "wb") as f:
        torch.save(state, f)


def _other_checkpoint(path: Path) -> str:
    if path.name not in CHECKPOINTS:
        return ""
    others = [path.with_name(n) for n in CHECKPOINTS if n != path.name and path.with_name(n).is_file()]
    return f"; {others[0]} is another checkpoint of the same run" if others else ""


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint` (``weights_only=True``: no arbitrary code runs).

    Raises ``FileNotFoundError`` for a missing file and :class:`CheckpointError` (naming the file, saying whether
    it is damaged or foreign, and pointing to the run's other checkpoint) for anything else that cannot be used.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut-off one has lost its directory
        raise CheckpointError(
            f"{path} is damaged (truncated, or not a file written by torch.save){_other_checkpoint(path)}"
        )
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch's message advises weights_only=False (arbitrary code execution); name only what was refused.
        found = re.search(r"[Uu]nsupported (global|GLOBAL|operand):?\s*(?:GLOBAL\s+)?([\w.]+)", str(err))
        what = f"{found.group(1).lower()} {found.group(2)}" if found else "not only tensors and plain containers"
        raise CheckpointError(
            f"{path} is not an srblock checkpoint: it holds Python objects that a weights-only load refuses "
            f"({what}); srblock never unpickles such files{_other_checkpoint(path)}"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, KeyError, ValueError) as err:
        if isinstance(err, RuntimeError) and not re.search(r"zip archive|PytorchStreamReader|corrupt", str(err)):
            raise  # e.g. a device problem of map_location: not the file's fault
        reason = str(err).split(".")[0].strip() or type(err).__name__
        raise CheckpointError(
            f"{path} is damaged (truncated or not a torch file: {reason}){_other_checkpoint(path)}"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        keys = sorted(map(str, state))[:8] if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(
            f"{path} is not an srblock checkpoint (expected a dict with 'model' and 'config', found {keys}); "
            "backbone weights go through srblock.models.load_backbone_weights"
        )
    return state


def get_rng_state() -> dict[str, Any]:
    """Every generator a training step may draw from, in a ``weights_only``-loadable form."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": [py_state[0], list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`get_rng_state` saved."""
    torch.set_rng_state(state["torch"].cpu())
    kind, keys, pos, has_gauss, gauss = state["numpy"]
    np.random.set_state((kind, keys.cpu().numpy().astype(np.uint32), int(pos), int(has_gauss), float(gauss)))
    version, internal, gauss_next = state["python"]
    random.setstate((version, tuple(internal), gauss_next))
    if "cuda" in state and torch.cuda.is_available():
        cuda_states = [s.cpu() for s in state["cuda"]]
        if len(cuda_states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda_states)
