"""What SR costs: parameters (the paper's OH column, checked against Eq. 1), multiply-accumulates and latency.

The comparison is always between a model and the *same* model without SR (same attention, regularizer, width and
input size), so the numbers isolate the block.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .._extras import requires_extra
from ..layers.modes import eval_mode
from ..layers.sr import find_sr_blocks, sr_param_count
from .timing import eval_step, interleaved_timings, ratios, sr_block_step, train_step

__all__ = ["count_macs", "count_params", "format_overhead", "overhead_report", "sr_blocks_formula"]


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``model``."""
    return sum(p.numel() for p in model.parameters())


def count_macs(model: nn.Module, images: torch.Tensor) -> int:
    """Multiply-accumulates of one eval-mode forward pass on ``images``, from ``torch.utils.flop_counter``.

    The counter counts matrix products and convolutions (2 FLOPs per MAC); element-wise work (the residual add of SR,
    activations, normalisation) is not counted, as is customary for GMACs tables. The pass counted is the second one:
    what a model computes once and keeps for later eval passes (the SR block's W2 W1) is not part of its cost.
    """
    with eval_mode(model), torch.no_grad():
        model(images)
        with FlopCounterMode(display=False) as counter:
            model(images)
    return counter.get_total_flops() // 2


def sr_blocks_formula(model: nn.Module, images: torch.Tensor) -> tuple[int, dict[str, tuple[int, ...]]]:
    """Eq. (1) summed over the SR blocks of ``model``, with C and H·W read from the tensor each block really sees.

    Returns the parameter count and the observed input shape (C, *S) per block name. Reading the shapes from a
    forward pass (not from the block's own attributes) makes this an independent check of how the block was sized;
    a block built for another size on purpose (``size_policy="interpolate"``, e.g. a coarse ``feat_size``) counts
    the positions of its own ``feat_size``, whose memory and routing it holds.
    """
    shapes: dict[str, tuple[int, ...]] = {}
    blocks = find_sr_blocks(model)

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
        if block.size_policy == "interpolate":
            spatial = list(block.feat_size)
        total += sr_param_count(
            channels, tuple(spatial), block.hidden, block.num_memories, spatial_dims=block.spatial_dims
        )
    return total, shapes


def _input_shape(input_size: int | Sequence[int], native: Sequence[int] = (3, 224, 224)) -> tuple[int, ...]:
    """``input_size`` as the full input shape; for a 1-D model (``native`` = (C, L)) an int is L, a pair (C, L)."""
    if len(native) == 2:
        size = (native[0], input_size) if isinstance(input_size, int) else tuple(int(s) for s in input_size)
        if len(size) != 2:
            raise ValueError(f"input_size of a 1-D model must be L or (C, L), got {input_size!r}")
        return size
    if isinstance(input_size, int):
        return (3, input_size, input_size)
    size = tuple(int(s) for s in input_size)
    if len(size) == 2:
        return (3, *size)
    if len(size) == 3:
        return size  # type: ignore[return-value]
    raise ValueError(f"input_size must be S, (H, W) or (C, H, W), got {input_size!r}")


def _build_pair(
    model: str | nn.Module,
    *,
    sr_stage: int | Sequence[int] | None,
    after: str | None,
    input_size: int | Sequence[int] | None,
    num_classes: int | None,
    zoo_options: dict[str, Any],
    block: dict[str, Any],
) -> tuple[nn.Module, nn.Module, dict[str, Any]]:
    """The model without and with SR, and what the report says about them (name, input shape, classes, place).

    ``zoo_options``: the zoo's ``attention``/``regularizer``/``width`` that are set; ``block``: ``num_memories``,
    ``hidden`` and the SR block's further options.
    """
    from ..models import create_model, get_model_entry, insert_sr

    if (sr_stage is None) == (after is None):
        raise ValueError(
            "give exactly one of sr_stage (a stage of a zoo model) and after (a module name), "
            f"got sr_stage={sr_stage!r}, after={after!r}"
        )
    source, _, arch = model.partition(":") if isinstance(model, str) else ("", "", "")
    if isinstance(model, str) and not arch:  # a model of the zoo: its stages, native input and classes are known
        entry = get_model_entry(model)
        shape = _input_shape(input_size if input_size is not None else entry.input_size, entry.input_size)
        num_classes = entry.num_classes if num_classes is None else num_classes
        common = {
            "num_classes": num_classes,
            **zoo_options,
            **({"input_size": shape} if input_size is not None else {}),
            **({"in_channels": shape[0]} if len(shape) == 2 else {}),  # a 1-D model (tsc_*) of that many channels
        }
        base = create_model(model, **common)
        if sr_stage is not None:
            num_memories, hidden, sr_kwargs = block.pop("num_memories"), block.pop("hidden"), block
            with_sr = create_model(
                model, sr_stage=sr_stage, num_memories=num_memories, hidden=hidden, sr_kwargs=sr_kwargs, **common
            )
            stages = sr_stage if isinstance(sr_stage, (list, tuple)) else [sr_stage]
            after = ", ".join(entry.stages[s - 1] for s in sorted(stages))
        else:
            with_sr = copy.deepcopy(base)
            insert_sr(with_sr, after, shape, **block)
        return base, with_sr, {"model": model, "input_size": shape, "num_classes": num_classes, "after": after}

    if sr_stage is not None:
        raise ValueError(f"sr_stage counts the stages of zoo models; for {model!r} name the module with after=")
    if zoo_options:
        raise ValueError(f"attention, regularizer and width are options of the zoo models, not of {model!r}")
    classes = 1000 if num_classes is None else num_classes
    if isinstance(model, nn.Module):
        base, name, native = copy.deepcopy(model), type(model).__name__, (3, 224, 224)  # the caller's stays as it is
    elif source == "timm":
        with requires_extra("timm", f"--model {model}"):
            import timm

        base = timm.create_model(arch, pretrained=False, num_classes=classes)
        name, native = model, base.pretrained_cfg.get("input_size", (3, 224, 224))
    elif source == "torchvision":
        import torchvision

        base, name, native = torchvision.models.get_model(arch, weights=None, num_classes=classes), model, (3, 224, 224)
    else:
        raise ValueError(f"model must be a zoo name, timm:NAME, torchvision:NAME or an nn.Module, got {model!r}")
    shape = _input_shape(input_size if input_size is not None else native)
    with_sr = copy.deepcopy(base)
    insert_sr(with_sr, after, shape, **block)
    if num_classes is None and isinstance(model, nn.Module):  # its output width, for the timed training step's labels
        with eval_mode(base), torch.no_grad():
            num_classes = int(base(torch.zeros(1, *shape, device=next(base.parameters()).device)).shape[-1])
    return base, with_sr, {"model": name, "input_size": shape, "num_classes": num_classes or classes, "after": after}


def overhead_report(
    model: str | nn.Module,
    *,
    sr_stage: int | Sequence[int] | None = None,
    after: str | None = None,
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
    """Parameter, MAC and latency overhead of an SR block in a model, against the same model without it.

    ``model`` is a name of the zoo (with the block at stage ``sr_stage``, or one at each stage of a sequence, or
    after the module ``after``), a timm or
    torchvision model by name (``"timm:convnext_tiny"``, ``"torchvision:resnet50"``, built without pretrained
    weights) or any ``nn.Module``; for the latter two the block goes after the module ``after``, inserted with
    :func:`srblock.models.insert_sr` into a copy. Returns a dict with ``params_base``, ``params_sr``, ``sr_params``
    (parameters inside SR blocks), ``overhead_pct`` (100·sr_params/params_base, the paper's OH column),
    ``sr_params_formula`` (Eq. 1 for the shapes the block sees), ``gmacs_base``, ``gmacs_sr`` (one image, eval
    mode), ``latency_ratio_eval`` and ``latency_ratio_train`` (SR / no-SR, median of ``repeats`` interleaved runs at
    ``batch_size``; ``None`` when ``timing`` is off), plus the settings used (``after``: the module the block
    follows). ``timing`` also holds the SR block's own time (``block_ms``) and its share of the baseline step
    (``block_share_pct``), measured in the same run: on a busy machine the whole-model ratio is noisy by a few
    percent, the block's share is not.

    Defaults: the zoo's native input size and classes (CIFAR models 32² and 10, ImageNet models 224² and 1000);
    timm models their ``pretrained_cfg`` input size; torchvision models and modules 224², 1000 classes (a module:
    the width of its output).

    >>> r = overhead_report("cifar_resnet18", sr_stage=3, num_memories=10, hidden=8, timing=False)
    >>> r["sr_params"], round(r["overhead_pct"], 2)
    (164688, 1.47)
    >>> r = overhead_report("torchvision:resnet18", after="layer3", num_memories=2, hidden=8, input_size=64,
    ...                     timing=False)
    >>> r["sr_input_shapes"]
    {'layer3.sr': [256, 4, 4]}
    """

    device = torch.device(device) if device is not None else torch.device("cpu")
    zoo_options = {"attention": attention, "regularizer": regularizer, "width": width if width != 1.0 else None}
    base, with_sr, info = _build_pair(
        model,
        sr_stage=sr_stage,
        after=after,
        input_size=input_size,
        num_classes=num_classes,
        zoo_options={k: v for k, v in zoo_options.items() if v is not None},
        block={"num_memories": num_memories, "hidden": hidden, **(sr_kwargs or {})},
    )
    base, with_sr = base.to(device), with_sr.to(device)
    shape, num_classes = info["input_size"], info["num_classes"]
    blocks = find_sr_blocks(with_sr)
    if not blocks:
        raise ValueError(f"{info['model']} with sr_stage={sr_stage} has no SR block; check the stage number")

    one = torch.randn(1, *shape, device=device)
    sr_formula, shapes = sr_blocks_formula(with_sr, one)
    params_base, params_sr = count_params(base), count_params(with_sr)
    sr_params = sum(count_params(block) for block in blocks.values())
    report: dict[str, Any] = {
        "model": info["model"],
        "sr_stage": sr_stage,
        "after": info["after"],
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
    place = f"SR after {report['after']}"
    if report.get("sr_stage") is not None:
        stage = report["sr_stage"]
        stage = ",".join(map(str, stage)) if isinstance(stage, (list, tuple)) else stage
        place = f"SR at stage M={stage} ({report['after']})"
    title = (
        f"{report['model']} @ {shape}, {report['num_classes']} classes, {place} "
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
