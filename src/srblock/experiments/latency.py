"""What each arm of a sweep costs in time: one training step and one inference forward of the arm's own network, as
a ratio to its control's (``srblock sweep -c SWEEP --time-arms``).

Issue 21's question 6 asks which plug-in block is worth its cost, so the sweep's table should carry accuracy,
parameters, FLOPs and latency side by side. Wall time per run cannot give latency on a shared machine (it moves 2×
between identical runs); here every arm's network, built from the arm's own config exactly as it trains (regulariser,
width, memory format), runs one step after another in rotating order (:func:`srblock.analysis.timing.
interleaved_timings`), and each arm's time is the median over the rounds of its ratio to its control's in the same
round, so a machine's drift cancels. The result goes to ``<output>/latency.json``; the sweep's table then shows it
(``train step ×``, ``inference ×``). The step uses SGD with momentum (the paper's optimiser) on random images of the
model's input size at the recipe's batch size; read ratios, not milliseconds.
"""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..analysis.timing import eval_step, interleaved_timings, ratios, train_step
from ..io import check_ours, write_json
from .sweep import LATENCY_FILE, LoadFn, Sweep

__all__ = ["measure_latency", "timed_network", "write_latency"]


def timed_network(
    config: dict[str, Any], batch: int, device: torch.device
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The network of a resolved config on ``device`` in the memory format the engine trains it in, a batch of
    ``batch`` random images of its input size (the config's ``model.input_size``, else the model's own) and random
    labels over its classes (a generator seeded 0), for timing its steps. The network's init and the images come from
    torch's global generator: seed it first for repeatable tensors."""
    from ..engine.build import build_model
    from ..models import get_model_entry

    model = build_model(config).to(device)
    size = tuple(config["model"].get("input_size") or get_model_entry(config["model"]["name"]).input_size)
    images = torch.randn(batch, *size, device=device)
    if config["train"].get("channels_last") and len(size) == 3:  # as the engine trains it
        model = model.to(memory_format=torch.channels_last)
        images = images.contiguous(memory_format=torch.channels_last)
    classes = int(config["model"].get("num_classes") or 10)
    labels = torch.randint(0, classes, (batch,), generator=torch.Generator().manual_seed(0)).to(device)
    return model, images, labels


def measure_latency(
    sweep: Sweep,
    *,
    repeats: int = 10,
    warmup: int = 2,
    batch: int | None = None,
    device: str | torch.device | None = None,
    load_fn: LoadFn | None = None,
) -> dict[str, Any]:
    """Time one training step and one inference forward of every arm's network, interleaved, and return
    ``{"arms": {arm: {"control", "train", "eval", "train_ms", "eval_ms"}}, ...}``: ``train``/``eval`` are the median
    per-round ratios to the arm's control (its ``baseline:``, else the sweep's), ``*_ms`` the median milliseconds.
    ``batch`` defaults to the baseline's ``train.batch_size``, ``device`` to CUDA when there is a GPU; ``load_fn``
    loads an arm's config (default: the engine's ``load_config``)."""
    from ..engine import load_config, resolve_config

    load = load_fn or load_config
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    configs = {arm.name: resolve_config(load(arm.recipe, [*sweep.overrides, *arm.overrides])) for arm in sweep.arms}
    batch = batch or int(configs[sweep.baseline]["train"]["batch_size"])
    networks = {}
    for arm, config in configs.items():
        torch.manual_seed(0)
        networks[arm] = timed_network(config, batch, device)
    started = time.perf_counter()
    samples = {}
    for mode in ("train", "eval"):
        steps: dict[str, Callable[[], object]] = {}
        for arm, (model, images, labels) in networks.items():
            steps[arm] = eval_step(model, images) if mode == "eval" else train_step(model, images, labels)
        samples[mode] = interleaved_timings(steps, repeats=repeats, warmup=warmup, device=device)
    controls = sweep.controls()
    arms = {}
    for arm, control in controls.items():
        row: dict[str, Any] = {"control": control}
        for mode, times in samples.items():
            row[mode] = ratios({arm: times[arm], control: times[control]}, control)[arm]
            row[f"{mode}_ms"] = 1e3 * statistics.median(times[arm])
        arms[arm] = row
    return {
        "sweep": sweep.name,
        "device": str(device) if device.type != "cpu" else f"cpu ({platform.machine()})",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "batch": batch,
        "repeats": repeats,
        "seconds": round(time.perf_counter() - started, 1),
        "arms": arms,
    }


def write_latency(sweep: Sweep, **options: Any) -> Path:
    """:func:`measure_latency` written to ``<output>/latency.json`` (never over a file srblock did not write)."""
    path = sweep.output / LATENCY_FILE
    check_ours(path)
    result = measure_latency(sweep, **options)
    return write_json(path, result, ours=True)
