"""All of the paper's analyses (PAPER.md §5) on one trained model and one split, written to a folder.

``analyze_model`` works on any model with SR blocks and any re-iterable of (images, labels) batches;
``analyze_checkpoint`` loads a run's checkpoint with the engine and builds the recipe's split.

The folder holds ``report.md`` (the pictures embedded, the numbers stated), ``analysis.json`` (every number) and, per
SR block ``<b>``: ``usage_<b>.png``, ``memory_maps_<b>.png``, ``features_<b>.png``.
"""

from __future__ import annotations

import copy
import json
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..io import check_ours, write_json, write_text
from .ablation import ablation
from .dynamics import initial_routing, load_dynamics, plot_dynamics, routing_control
from .features import feature_effect, plot_feature_effect
from .maps import memory_map_stats, memory_maps, plot_memory_maps
from .plots import save_figure
from .usage import collect_memory_weights, iter_predictions, plot_usage, summarize_usage

__all__ = ["analyze_checkpoint", "analyze_model", "predict_checkpoint", "resolve_classes", "write_report"]


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name) or "sr"


def resolve_classes(classes: Sequence[str | int] | None, class_names: Sequence[str] | None) -> list[int] | None:
    """Class indices from indices or names (case-insensitive); ``None`` stays ``None`` (the default choice)."""
    if classes is None:
        return None
    lookup = {n.lower(): i for i, n in enumerate(class_names or ())}
    out = []
    for c in classes:
        if isinstance(c, int) or (isinstance(c, str) and c.lstrip("-").isdigit()):
            out.append(int(c))
        elif c.lower() in lookup:
            out.append(lookup[c.lower()])
        else:
            known = ", ".join(class_names) if class_names else "none (the split has no class names; use indices)"
            raise ValueError(f"unknown class {c!r}; known class names: {known}")
    return out


def _is_analysis_folder(folder: Path) -> bool:
    """A folder written by an srblock older than the list of what it wrote: its analysis.json is ours."""
    try:
        result = json.loads((folder / "analysis.json").read_text())
    except (OSError, ValueError):
        return False
    return isinstance(result, dict) and "blocks" in result and "files" in result


def _check_outputs(output_dir: Path) -> None:
    """``FileExistsError`` before anything is written when ``output_dir`` holds, under a name the analysis writes,
    a file that srblock did not write (e.g. a ``report.md`` of the user's)."""
    pictures = [p for p in output_dir.glob("*.png") if p.name.startswith(("usage_", "memory_maps_", "features_"))]
    names = ("analysis.json", "report.md", "dynamics.png")
    check_ours(*(output_dir / n for n in names), *sorted(pictures), legacy=_is_analysis_folder)


def analyze_model(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    output_dir: str | Path,
    *,
    classes: Sequence[str | int] | None = None,
    per_class: int = 50,
    class_names: Sequence[str] | None = None,
    max_images: int | None = None,
    device: torch.device | str | None = None,
    run_ablation: bool = True,
    init_routing: Mapping[str, Mapping[str, torch.Tensor]] | None = None,
    title: str = "",
) -> dict[str, Any]:
    """Memory usage, memory maps, feature effect and ablation of ``model`` on ``batches``; writes ``output_dir``.

    Args:
        model: a trained classifier with one or more SR blocks (left unchanged).
        batches: re-iterable (images, labels) batches (e.g. a ``DataLoader``); iterated twice with ``run_ablation``.
        output_dir: folder for ``report.md``, ``analysis.json`` and the PNGs (created).
        classes: chosen classes (indices or names) for the per-class usage and the feature pictures; default: all
            classes when there are at most 10, else the first 5.
        per_class: images per chosen class for the usage statistics (the paper: 50).
        class_names: names indexed by class.
        max_images: use only the first images of the split (quick looks).
        device: where to run (default: the model's device).
        run_ablation: also evaluate the model with its SR blocks removed.
        init_routing: the SR blocks' routing weights at init (:func:`srblock.analysis.dynamics.initial_routing`):
            adds the control — usage and class separation under the same routing at init (one more pass).

    Returns the dict written to ``analysis.json``.
    """
    for name, value in (("per_class", per_class), ("max_images", max_images)):
        if (value is not None or name == "per_class") and (type(value) is not int or value <= 0):
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    output_dir = Path(output_dir)
    _check_outputs(output_dir)
    chosen = resolve_classes(classes, class_names)
    if device is None:
        device = next(model.parameters()).device
    # One pass collects weights and predictions, and keeps one sample image per class that may be chosen (the
    # default choice takes the smallest class indices, see summarize_usage).
    record = collect_memory_weights(
        model, batches, device=device, max_images=max_images, keep_classes=chosen if chosen is not None else range(10)
    )
    if record.num_images == 0:
        raise ValueError("the split yielded no images")
    present = sorted(set(record.labels.tolist()))
    if chosen is None:
        chosen = present if len(present) <= 10 else present[:5]

    def name_of(c: int) -> str:
        return class_names[c] if class_names is not None and c < len(class_names) else str(c)

    sample = next(iter(record.samples.values()), None)
    result: dict[str, Any] = {
        "title": title,
        "output_dir": str(output_dir),
        "num_images": record.num_images,
        "inputs": "series" if sample is not None and sample.dim() == 2 else "images",  # C x L: a 1-D model's
        "classes": [{"class": c, "name": name_of(c)} for c in chosen],
        "per_class": per_class,
        "accuracy": {
            "acc1_sr": record.accuracy,
            "acc5_sr": 100.0 * record.top5_correct / record.num_images,
        },
        "blocks": {},
        "files": {},
    }
    control = (
        routing_control(model, batches, init_routing, device=device, max_images=max_images, trained=record)
        if init_routing is not None
        else {}
    )
    maps = memory_maps(model)
    sample_classes = [c for c in chosen if c in record.samples]
    sample_images = torch.stack([record.samples[c] for c in sample_classes]) if sample_classes else None
    for block, weights in record.weights.items():
        slug = _slug(block)
        usage = summarize_usage(weights, record.labels, classes=chosen, per_class=per_class, class_names=class_names)
        row_sums = weights.sum(1)
        usage["max_abs_row_sum_error"] = float((row_sums - 1).abs().max()) if weights.numel() else 0.0
        # Which memory the model leans on most for each image: a compact picture of specialisation.
        usage["argmax_histogram"] = torch.bincount(weights.argmax(1), minlength=weights.shape[1]).tolist()
        info: dict[str, Any] = {
            "num_memories": int(weights.shape[1]),
            "usage": usage,
            "memory_maps": memory_map_stats(maps[block]),
        }
        if block in control:
            ctrl = dict(control[block])
            init_weights = ctrl.pop("weights_init")
            ctrl["usage_init"] = summarize_usage(
                init_weights, record.labels, classes=chosen, per_class=per_class, class_names=class_names
            )
            info["routing_control"] = ctrl
        files = {"usage": f"usage_{slug}.png", "memory_maps": f"memory_maps_{slug}.png"}
        # each picture listed as ours as it is written: an analysis interrupted later (the ablation takes minutes)
        # runs again over its own pictures
        save_figure(plot_usage(usage, title=f"memory weights, block {block!r}"), output_dir / files["usage"], ours=True)
        save_figure(
            plot_memory_maps(maps[block], title=f"channel-mean memory, block {block!r}"),
            output_dir / files["memory_maps"],
            ours=True,
        )
        if sample_images is not None:
            effect = feature_effect(model, sample_images, block=block, device=device)
            info["features"] = {
                "classes": [name_of(c) for c in sample_classes],
                "relative_change_pct": effect["relative_change_pct"],
                "mean_relative_change_pct": sum(effect["relative_change_pct"]) / len(sample_classes),
                "mean_abs_diff": [float(d.mean()) for d in effect["abs_diff"]],
            }
            files["features"] = f"features_{slug}.png"
            figure = plot_feature_effect(
                effect,
                images=sample_images,
                labels=[name_of(c) for c in sample_classes],
                title=f"channel-mean features before/after SR, block {block!r}",
            )
            save_figure(figure, output_dir / files["features"], ours=True)
        result["blocks"][block] = info
        result["files"][block] = files
    if run_ablation:
        mean_weights = {block: weights.mean(0) for block, weights in record.weights.items()}
        result["ablation"] = ablation(
            model, batches, device=device, max_images=max_images, acc_with_sr=record.accuracy, mean_weights=mean_weights
        )
    write_json(output_dir / "analysis.json", result, default=_json_default, ours=True)  # strict (NaN -> null)
    write_report(result, output_dir / "report.md", ours=True)
    return result


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _pct(x: float | None) -> str:
    return "n/a" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.2f} %"


def write_report(result: dict[str, Any], path: str | Path, *, ours: bool = False) -> Path:
    """``report.md`` from an :func:`analyze_model` result: the numbers in words and tables, the pictures embedded
    (``ours``: listed as srblock's, :func:`srblock.io.atomic_open`)."""
    lines = [f"# SR analysis{': ' + result['title'] if result.get('title') else ''}", ""]
    acc = result["accuracy"]
    inputs = result.get("inputs", "images")  # "series" for a 1-D model
    lines += [
        f"Split: {result['num_images']} {inputs}; top-1 accuracy with SR {_pct(acc['acc1_sr'])}, "
        f"top-5 {_pct(acc['acc5_sr'])}.",
        "",
    ]
    if "ablation" in result:
        ab = result["ablation"]
        fixed = "acc_fixed_routing" in ab  # analyses written before the fixed-routing control lack it
        lines += [
            "## Ablation: the SR block removed",
            "",
            "| model | top-1 |",
            "|---|---|",
            f"| with SR | {_pct(ab['acc_sr'])} |",
            *([f"| SR, routing fixed to its mean weights | {_pct(ab['acc_fixed_routing'])} |"] if fixed else []),
            f"| SR removed (identity) | {_pct(ab['acc_no_sr'])} |",
            "",
            f"Removing SR changes top-1 accuracy by {ab['delta_pp']:+.2f} percentage points "
            f"({ab['num_images']} {inputs}; the paper's ImageNet D2D P=10 model lost 0.4).",
            "",
        ]
        if fixed:
            lines += [
                f"The per-input routing adds {ab['routing_pp']:+.2f} points over the same block recalling one fixed "
                "mix of its memories for every input (each block's mean softmax weights over this split): the part "
                "of the block's effect that depends on what it sees; the rest is a learned constant.",
                "",
            ]
    if result.get("dynamics_plot"):
        lines += [
            "## Learning dynamics",
            "",
            "Per validation pass: memory_ratio = RMS(Σ wᵢMᵢ) / RMS(X); routing_change = ‖θ − θ₀‖ / ‖θ₀‖ and "
            "routing_turn = 1 − cos(θ, θ₀) of the squeeze and FCN weights (weight decay shrinks θ without turning "
            "it); routing_entropy = mean entropy of the weights / log P; memory_spread = RMS(Mᵢ − M̄) / "
            "RMS(M).",
            "",
            f"![learning dynamics]({result['dynamics_plot']})",
            "",
        ]
    for block, info in result["blocks"].items():
        files = result["files"][block]
        usage = info["usage"]
        p = info["num_memories"]
        lines += [f"## SR block `{block}` (P = {p})", "", "### Memory usage (softmax weights)", ""]
        lines += [
            f"Mean ± std of the {p} weights over the first {usage['per_class']} {inputs} of each chosen class and "
            f"over all {usage['overall']['count']} {inputs} "
            f"(rows sum to 1 up to {usage['max_abs_row_sum_error']:.1e}).",
            "",
            f"| {inputs} | " + " | ".join(f"M{i + 1}" for i in range(p)) + " |",
            "|---|" + "---|" * p,
        ]
        for label, stats in [("all", usage["overall"]), *usage["classes"].items()]:
            cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(stats["mean"], stats["std"], strict=True)]
            lines.append(f"| {label} ({stats['count']}) | " + " | ".join(cells) + " |")
        if "routing_control" in info:
            ctrl = info["routing_control"]
            init_usage = ctrl["usage_init"]
            for label, stats in [("all", init_usage["overall"]), *init_usage["classes"].items()]:
                cells = [f"{m:.3f} ± {s:.3f}" for m, s in zip(stats["mean"], stats["std"], strict=True)]
                lines.append(f"| {label} ({stats['count']}), routing at init | " + " | ".join(cells) + " |")
            relative = ctrl["delta"] / ctrl["eta2_init"] if ctrl["eta2_init"] else math.nan
            if ctrl["ci_low"] > 0:
                verdict = (
                    f"The training made the routing separate the classes more than its init did, by "
                    f"{relative:+.1%} of the init's η²; whether that is selection that matters, the size says, "
                    "together with the ablation (the weights may still be near uniform: see the table above)."
                )
            elif ctrl["ci_high"] < 0:
                verdict = f"The trained routing separates the classes less than its init did ({relative:+.1%})."
            else:
                verdict = (
                    "The trained routing does not separate the classes more than its init: a class-dependent usage "
                    "above is not evidence of learned selection."
                )
            lines += [
                "",
                "Control: the same model with its routing (squeeze + FCN) put back to its seeded init, each tensor "
                f"rescaled to its trained norm (weight decay shrinks without turning), same {inputs} "
                f"(rows marked 'routing at init'). Class separation of the weights, η² (share of their variance the "
                f"class explains): trained {ctrl['eta2_trained']:.4f}, at init {ctrl['eta2_init']:.4f}, difference "
                f"{ctrl['delta']:+.4f} (95 % paired bootstrap over {ctrl['num_images']} {inputs}: "
                f"[{ctrl['ci_low']:+.4f}, {ctrl['ci_high']:+.4f}]). " + verdict,
            ]
        hist = usage["argmax_histogram"]
        lines += [
            "",
            f"{inputs.capitalize()} whose largest weight is on each memory block: "
            + ", ".join(f"M{i + 1}: {n}" for i, n in enumerate(hist))
            + ".",
            "",
            f"![memory usage]({files['usage']})",
            "",
            "### Memory maps (channel-mean of each memory block)",
            "",
            "| block | min | max | mean | mean abs |",
            "|---|---|---|---|---|",
        ]
        for s in info["memory_maps"]:
            lines.append(
                f"| M{s['memory']} | {s['min']:.4g} | {s['max']:.4g} | {s['mean']:.4g} | {s['mean_abs']:.4g} |"
            )
        lines += ["", f"![memory maps]({files['memory_maps']})", ""]
        if "features" in info:
            feat = info["features"]
            lines += [
                "### Feature effect (channel-mean before/after SR, mean absolute difference)",
                "",
                "Relative change 100·Σ|X̂−X| / Σ|X| per sample: "
                + ", ".join(
                    f"{c}: {r:.2f} %" for c, r in zip(feat["classes"], feat["relative_change_pct"], strict=True)
                )
                + f" (mean {feat['mean_relative_change_pct']:.2f} %).",
                "",
                f"![feature effect]({files['features']})",
                "",
            ]
    return write_text(path, "\n".join(lines), ours=ours)


def analyze_checkpoint(
    checkpoint: str | Path,
    *,
    data_dir: str | Path | None = None,
    split: str = "val",
    output_dir: str | Path | None = None,
    classes: Sequence[str | int] | None = None,
    per_class: int = 50,
    max_images: int | None = None,
    device: torch.device | str | None = None,
) -> dict[str, Any]:
    """:func:`analyze_model` on a checkpoint written by ``srblock train``, on its recipe's ``split`` (val or test).

    ``output_dir`` defaults to ``<checkpoint folder>/analysis_<split>``; ``data_dir`` overrides the recipe's data root.
    Class names: CIFAR-10's, ImageNet's readable names (the default classes are then the paper's: cliff, pug,
    church, goldfish, airliner), else the folder names of an image-folder dataset, else indices.
    """
    checkpoint = Path(checkpoint)
    model, config, loader, class_names, device = _load_on_split(checkpoint, split, data_dir, device)
    if classes is None and class_names is not None and set(PAPER_IMAGENET_CLASSES) <= set(class_names):
        classes = list(PAPER_IMAGENET_CLASSES)
    out = Path(output_dir) if output_dir is not None else checkpoint.parent / f"analysis_{split}"
    name, dataset = config.get("model", {}).get("name", "model"), config.get("data", {}).get("dataset")
    title = f"{name}{f' on {dataset}' if dataset else ''} ({checkpoint}, {split} split)"
    result = analyze_model(
        model,
        loader,
        out,
        classes=classes,
        per_class=per_class,
        class_names=class_names,
        max_images=max_images,
        device=device,
        init_routing={k: {n: t.to(device) for n, t in v.items()} for k, v in initial_routing(config).items()},
        title=title,
    )
    if (checkpoint.parent / "metrics.csv").is_file() and load_dynamics(checkpoint.parent):
        # The learning-dynamics curves of this run (the columns the engine wrote on every validation pass).
        result["dynamics_plot"] = "dynamics.png"
        figure = plot_dynamics({checkpoint.parent.name: [checkpoint.parent]}, title=f"SR dynamics, {title}")
        save_figure(figure, out / "dynamics.png", ours=True)  # as each picture of analyze_model
        write_json(out / "analysis.json", result, default=_json_default, ours=True)
        write_report(result, out / "report.md", ours=True)
    return result


def predict_checkpoint(
    checkpoint: str | Path,
    *,
    split: str = "test",
    data_dir: str | Path | None = None,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(predictions, labels)``: the top-1 class of every image of the recipe's ``split`` under a checkpoint written
    by ``srblock train``, in the split's order (int64, CPU), e.g. for :func:`srblock.analysis.stats.seed_noise`. The
    recipe's test-time augmentation (``data.tta``) applies, so the accuracy is the one the engine reported."""
    model, config, loader, _, device = _load_on_split(checkpoint, split, data_dir, device)
    tta = config.get("data", {}).get("tta")
    predictions, labels = [], []
    for _, target, logits in iter_predictions(model, loader, device=device, desc=f"predict {split}", tta=tta):
        predictions.append(logits.argmax(dim=1))
        labels.append(target)
    return torch.cat(predictions), torch.cat(labels)


def _load_on_split(
    checkpoint: str | Path, split: str, data_dir: str | Path | None, device: torch.device | str | None
) -> tuple[nn.Module, dict[str, Any], Any, Sequence[str] | None, torch.device]:
    """The trained model of a checkpoint on ``device`` (default: CUDA when there is one), its config, the recipe's
    ``split`` loader, its class names and the device."""
    from ..engine import load_trained_model

    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model, config = load_trained_model(checkpoint, map_location="cpu")
    loader, class_names = _split_loader(config, split, data_dir, device)
    return model.to(device), config, loader, class_names, device


def _split_loader(config: dict[str, Any], split: str, data_dir: str | Path | None, device: torch.device):
    """The recipe's ``split`` loader built by the engine's task (one process) and the class names when known."""
    from ..engine import get_task
    from ..engine.distributed import DistInfo

    config = copy.deepcopy(config)
    if data_dir is not None:
        config.setdefault("data", {})["root"] = str(data_dir)
    task = get_task(config.get("task", "classification"))(config, DistInfo(), device)
    loaders = task.build_loaders()
    loader = getattr(loaders, split)
    if loader is None:
        raise ValueError(
            f"the recipe has no {split} split (data section: {config.get('data')}); use --split "
            f"{'test' if split == 'val' else 'val'}"
        )
    class_names = getattr(task, "class_names", None) or _class_names(config.get("data", {}).get("dataset"), loader)
    return loader, class_names


CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
#: The classes of the paper's usage figure (cliff, pug, church, goldfish, plane); "plane" is ImageNet's airliner [ours].
PAPER_IMAGENET_CLASSES = ("cliff", "pug", "church", "goldfish", "airliner")


def _dataset_classes(loader: Any) -> Sequence[str] | None:
    """``classes`` of the folder dataset behind a loader (through DataLoader/Subset wrappers), if there is one."""
    obj = loader
    for _ in range(6):
        if hasattr(obj, "classes"):
            return list(obj.classes)
        obj = getattr(obj, "loader", None) or getattr(obj, "dataset", None)
        if obj is None:
            return None
    return None


def _class_names(dataset: str | None, loader: Any) -> Sequence[str] | None:
    if dataset == "cifar10":
        return CIFAR10_CLASSES
    if dataset == "digits":
        return tuple(str(d) for d in range(10))
    folder = _dataset_classes(loader)
    if dataset == "imagenet" and folder is not None and len(folder) == 1000:
        # The standard sorted-WordNet-id order: torchvision ships the readable names (no download needed).
        from torchvision.models import ResNet50_Weights

        return list(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])
    return folder
