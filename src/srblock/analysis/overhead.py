"""What SR costs: parameters (the paper's OH column, checked against Eq. 1), multiply-accumulates and latency.

The comparison is always between a model and the *same* model without SR (same attention, regularizer, width and
input size), so the numbers isolate the block.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..layers.modes import eval_mode
from ..layers.sr import SRBlockNd, sr_param_count
from .timing import eval_step, interleaved_timings, ratios, sr_block_step, train_step

__all__ = ["count_macs", "count_params", "format_overhead", "overhead_report", "sr_blocks_formula"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, images: torch.Tensor) -> int:
    """Multiply-accumulates of one eval-mode forward pass on ``images``, from ``torch.utils.flop_counter``.

    The counter counts matrix products and convolutions (2 FLOPs per MAC); element-wise work (the residual add of SR,
    activations, normalisation) is not counted, as is customary for GMACs tables.
    """
    with eval_mode(model), torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(images)
    return counter.get_total_flops() // 2


def sr_blocks_formula(model: nn.Module, images: torch.Tensor) -> tuple[int, dict[str, tuple[int, ...]]]:
    """Eq. (1) summed over the SR blocks of ``model``, with C and H·W read from the tensor each block really sees.

    Returns the parameter count and the observed input shape (C, *S) per block name. Reading the shapes from a
    forward pass (not from the block's own attributes) makes this an independent check of how the block was sized.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    blocks = {name: m for name, m in model.named_modules() if isinstance(m, SRBlockNd)}

    def recorder(name: str):
        def hook(_module: nn.Module, inputs: tuple) -> None:
            shapes[name] = tuple(inputs[0].shape[1:])

        return hook

    handles = [block.register_forward_pre_hook(recorder(name)) for name, block in blocks.items()]
    try:
        with eval_mode(model), torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
    total = 0
    for name, block in blocks.items():
        channels, *spatial = shapes[name]
        total += sr_param_count(
            channels, tuple(spatial), block.hidden, block.num_memories, spatial_dims=block.spatial_dims
        )
    return total, shapes


def _input_shape(input_size: int | Sequence[int]) -> tuple[int, int, int]:
    if isinstance(input_size, int):
        return (3, input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (3, *size)
    if len(size) == 3:
        return size  # type: ignore[return-value]
    raise ValueError(f"input_size must be S, (H, W) or (C, H, W), got {input_size!r}")


def overhead_report(
    model_name: str,
    *,
    sr_stage: int,
    num_memories: int,
    hidden: int,
    input_size: int | Sequence[int] | None = None,
    num_classes: int | None = None,
    attention: str | None = None,
    regularizer: str | None = None,
    width: float = 1.0,
    sr_kwargs: dict[str, Any] | None = None,
    timing: bool = True,
    batch_size: int = 1,
    repeats: int = 10,
    warmup: int = 2,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """Parameter, MAC and latency overhead of an SR block at stage ``sr_stage`` of a model of the zoo.

    Builds ``model_name`` twice with :func:`srblock.models.create_model`, with and without SR (everything else equal),
    and returns a dict with ``params_base``, ``params_sr``, ``sr_params`` (parameters inside SR blocks),
    ``overhead_pct`` (100·sr_params/params_base, the paper's OH column), ``sr_params_formula`` (Eq. 1 for the shapes
    the block sees), ``gmacs_base``, ``gmacs_sr`` (one image, eval mode), ``latency_ratio_eval`` and
    ``latency_ratio_train`` (SR / no-SR, median of ``repeats`` interleaved runs at ``batch_size``; ``None`` when
    ``timing`` is off), plus the settings used. ``timing`` also holds the SR block's own time (``block_ms``) and its
    share of the baseline step (``block_share_pct``), measured in the same run: on a busy machine the whole-model
    ratio is noisy by a few percent, the block's share is not.

    Defaults: each model's native input size from the registry (CIFAR models 32², ImageNet models 224²); 10 classes
    for CIFAR models (``cifar_*``), 1000 otherwise.

    >>> r = overhead_report("cifar_resnet18", sr_stage=3, num_memories=10, hidden=8, timing=False)
    >>> r["sr_params"], round(r["overhead_pct"], 2)
    (164688, 1.47)
    """
    from ..models import create_model, find_sr_blocks, get_model_entry

    if num_classes is None:
        num_classes = 10 if model_name.startswith("cifar") else 1000
    # The registry knows each network's native input (CIFAR 32², ImageNet 224²), the size its memory is built for.
    shape = _input_shape(input_size if input_size is not None else get_model_entry(model_name).input_size)
    device = torch.device(device) if device is not None else torch.device("cpu")
    common: dict[str, Any] = {"num_classes": num_classes, "attention": attention, "regularizer": regularizer}
    if width != 1.0:
        common["width"] = width
    if input_size is not None:
        common["input_size"] = shape
    base = create_model(model_name, sr_stage=None, **common).to(device)
    with_sr = create_model(
        model_name, sr_stage=sr_stage, num_memories=num_memories, hidden=hidden, sr_kwargs=sr_kwargs, **common
    ).to(device)
    blocks = find_sr_blocks(with_sr)
    if not blocks:
        raise ValueError(f"{model_name} with sr_stage={sr_stage} has no SR block; check the stage number")

    one = torch.randn(1, *shape, device=device)
    sr_formula, shapes = sr_blocks_formula(with_sr, one)
    params_base, params_sr = count_params(base), count_params(with_sr)
    sr_params = sum(count_params(block) for block in blocks.values())
    report: dict[str, Any] = {
        "model": model_name,
        "sr_stage": sr_stage,
        "num_memories": num_memories,
        "hidden": hidden,
        "num_classes": num_classes,
        "attention": attention,
        "regularizer": regularizer,
        "width": width,
        "input_size": list(shape),
        "sr_input_shapes": {name: list(s) for name, s in shapes.items()},
        "params_base": params_base,
        "params_sr": params_sr,
        "sr_params": sr_params,
        "overhead_pct": 100.0 * sr_params / params_base,
        "sr_params_formula": sr_formula,
        "gmacs_base": count_macs(base, one) / 1e9,
        "gmacs_sr": count_macs(with_sr, one) / 1e9,
        "latency_ratio_eval": None,
        "latency_ratio_train": None,
        "timing": None,
    }
    if timing:
        report["timing"] = _time_pair(base, with_sr, shape, num_classes, batch_size, repeats, warmup, device)
        report["latency_ratio_eval"] = report["timing"]["eval"]["ratio"]
        report["latency_ratio_train"] = report["timing"]["train"]["ratio"]
    return report


def _time_pair(
    base: nn.Module,
    with_sr: nn.Module,
    shape: tuple[int, ...],
    num_classes: int,
    batch_size: int,
    repeats: int,
    warmup: int,
    device: torch.device,
) -> dict[str, Any]:
    """Eval at ``batch_size``; train at least 2 images per batch so BatchNorm in train mode sees > 1 sample."""
    out: dict[str, Any] = {"device": str(device), "repeats": repeats, "threads": torch.get_num_threads()}
    train_batch = max(batch_size, 2)
    images = torch.randn(batch_size, *shape, device=device)
    train_images = torch.randn(train_batch, *shape, device=device)
    labels = torch.randint(0, num_classes, (train_batch,), device=device)
    for mode, steps in (
        ("eval", {"base": eval_step(base, images), "sr": eval_step(with_sr, images)}),
        ("train", {"base": train_step(base, train_images, labels), "sr": train_step(with_sr, train_images, labels)}),
    ):
        steps["block"] = sr_block_step(with_sr, images if mode == "eval" else train_images, mode)
        samples = interleaved_timings(steps, repeats=repeats, warmup=warmup, device=device)
        med = {name: sorted(t)[len(t) // 2] for name, t in samples.items()}
        rel = ratios(samples, "base")
        out[mode] = {
            "batch_size": batch_size if mode == "eval" else train_batch,
            "base_ms": 1e3 * med["base"],
            "sr_ms": 1e3 * med["sr"],
            "ratio": rel["sr"],
            "block_ms": 1e3 * med["block"],
            "block_share_pct": 100.0 * rel["block"],
        }
    return out


def _fmt_int(n: int) -> str:
    return f"{n:,}"


def format_overhead(report: dict[str, Any]) -> str:
    """The report as a plain-text table (what ``srblock overhead`` prints)."""
    shape = "x".join(str(s) for s in report["input_size"])
    title = (
        f"{report['model']} @ {shape}, {report['num_classes']} classes, SR at stage M={report['sr_stage']} "
        f"(P={report['num_memories']}, U={report['hidden']})"
    )
    extras = [f"{k}={report[k]}" for k in ("attention", "regularizer") if report.get(k)]
    if report.get("width", 1.0) != 1.0:
        extras.append(f"width={report['width']}")
    if extras:
        title += ", " + ", ".join(extras)
    rows = [
        ("params without SR", _fmt_int(report["params_base"])),
        ("params with SR", _fmt_int(report["params_sr"])),
        ("SR params (counted)", _fmt_int(report["sr_params"])),
        ("SR params (Eq. 1)", _fmt_int(report["sr_params_formula"])),
        ("parameter overhead (OH)", f"{report['overhead_pct']:.2f} %"),
        ("GMACs without SR", f"{report['gmacs_base']:.4f}"),
        ("GMACs with SR", f"{report['gmacs_sr']:.4f}"),
        ("GMAC overhead", f"{100 * (report['gmacs_sr'] / report['gmacs_base'] - 1):.3f} %"),
    ]
    for name, shape_ in report.get("sr_input_shapes", {}).items():
        rows.append((f"SR input {name}", "x".join(str(s) for s in shape_)))
    timing = report.get("timing")
    if timing:
        for mode in ("eval", "train"):
            t = timing[mode]
            rows.append(
                (
                    f"latency ratio {mode} (batch {t['batch_size']})",
                    f"{t['ratio']:.3f}x  ({t['sr_ms']:.1f} ms vs {t['base_ms']:.1f} ms)",
                )
            )
            rows.append(
                (f"SR block alone, {mode}", f"{t['block_ms']:.2f} ms = {t['block_share_pct']:.2f} % of the step")
            )
        rows.append(("timing", f"{timing['device']}, {timing['threads']} threads, median of {timing['repeats']}"))
    else:
        rows.append(("latency ratios", "not measured (--no-timing)"))
    width = max(len(k) for k, _ in rows)
    lines = [title, "-" * len(title)]
    lines += [f"{k.ljust(width)}  {v}" for k, v in rows]
    if not math.isclose(report["sr_params"], report["sr_params_formula"]):
        lines.append("WARNING: counted SR parameters differ from Eq. (1)")
    return "\n".join(lines)
