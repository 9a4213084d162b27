"""Semantic segmentation for the engine: metrics from one confusion matrix, slide/whole inference, the task plug-in.

Metrics (PAPER.md §3, the Cityscapes protocol): one K x K confusion matrix is accumulated over the whole split
(summed across processes under DDP), then mIoU, mAcc, aAcc and per-class IoU are read from it. A class absent from
both the predictions and the ground truth has an undefined IoU (0/0) and is left out of the mean (NaN-mean), not
counted as 0.

Inference: the SR block's memory has the feature size of the training crop, so a strict SR model sees only inputs
of the crop size. ``slide`` (default) runs windows of the training crop over the image, overlapping by a stride,
and averages the logits; ``whole`` runs the full image once and needs ``size_policy="interpolate"`` or no SR.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.utils.data import Subset

from ..data.loader import make_loader
from ..data.segmentation import (
    IGNORE_INDEX,
    IMAGENET_MEAN,
    IMAGENET_STD,
    SEGMENTATION_DATASETS,
    SegmentationEvalTransform,
    SegmentationTrainTransform,
    segmentation_dataset,
)
from ..layers.sr import find_sr_blocks
from .distributed import DistInfo
from .task import Loaders, Task, register_task

__all__ = [
    "IGNORE_INDEX",
    "ConfusionMatrix",
    "SegmentationTask",
    "confusion_matrix",
    "metrics_from_confusion",
    "segment",
    "slide_inference",
    "whole_inference",
]

INFERENCE_MODES = ("slide", "whole")


# --------------------------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------------------------


def confusion_matrix(
    pred: torch.Tensor, target: torch.Tensor, num_classes: int, ignore_index: int = IGNORE_INDEX
) -> torch.Tensor:
    """K x K int64 matrix, rows = ground truth, columns = prediction; pixels labelled ``ignore_index`` are skipped.

    >>> confusion_matrix(torch.tensor([0, 1, 1]), torch.tensor([0, 1, 255]), num_classes=2).tolist()
    [[1, 0], [0, 1]]
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    target = target.reshape(-1).long()
    pred = pred.reshape(-1).long()
    keep = target != ignore_index
    target, pred = target[keep], pred[keep]
    if target.numel() and (int(target.min()) < 0 or int(target.max()) >= num_classes):
        raise ValueError(
            f"target holds ids outside [0, {num_classes}) besides ignore {ignore_index}: "
            f"min {int(target.min())}, max {int(target.max())}"
        )
    counts = torch.bincount(target * num_classes + pred, minlength=num_classes * num_classes)
    return counts.reshape(num_classes, num_classes)


def metrics_from_confusion(confmat: torch.Tensor, class_names: Sequence[str] | None = None) -> dict[str, object]:
    """mIoU, mAcc, aAcc (fractions in [0, 1]) and per-class IoU/accuracy from a confusion matrix (rows = truth).

    IoU_c = TP / (TP + FP + FN) is NaN when class c is in neither prediction nor truth, Acc_c = TP / (TP + FN) is
    NaN when c is not in the truth; the means skip NaNs. Per-class lists hold ``None`` for NaN (JSON-friendly).

    >>> m = metrics_from_confusion(torch.tensor([[3, 1, 0], [0, 4, 0], [0, 0, 0]]))
    >>> round(m["miou"], 4), round(m["aacc"], 4)
    (0.775, 0.875)
    """
    cm = confmat.double()
    tp = cm.diag()
    gt = cm.sum(1)
    union = gt + cm.sum(0) - tp
    iou = tp / union  # 0/0 -> NaN: the class is absent from both
    acc = tp / gt
    total = cm.sum()
    names = list(class_names) if class_names is not None else [str(i) for i in range(cm.shape[0])]
    if len(names) != cm.shape[0]:
        raise ValueError(f"{len(names)} class names for a {cm.shape[0]}-class confusion matrix")

    def _mean(values: torch.Tensor) -> float:
        valid = values[~values.isnan()]
        return float(valid.mean()) if valid.numel() else float("nan")

    return {
        "miou": _mean(iou),
        "macc": _mean(acc),
        "aacc": float(tp.sum() / total) if total > 0 else float("nan"),
        "iou": {n: (None if math.isnan(v) else v) for n, v in zip(names, iou.tolist(), strict=True)},
        "acc": {n: (None if math.isnan(v) else v) for n, v in zip(names, acc.tolist(), strict=True)},
    }


class ConfusionMatrix:
    """Accumulates one confusion matrix over a split; :meth:`all_reduce` sums it across DDP processes.

    >>> cm = ConfusionMatrix(num_classes=3)
    >>> cm.update(torch.tensor([[0, 1], [2, 2]]), torch.tensor([[0, 1], [2, 255]]))
    >>> cm.compute()["miou"]
    1.0
    """

    def __init__(
        self,
        num_classes: int,
        *,
        ignore_index: int = IGNORE_INDEX,
        class_names: Sequence[str] | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.class_names = class_names
        self.matrix = torch.zeros(num_classes, num_classes, dtype=torch.int64, device=device)

    def update(self, pred: torch.Tensor, target: torch.Tensor) -> None:
        """Add a batch: ``pred`` as class ids (B x H x W) or logits (B x K x H x W), ``target`` B x H x W."""
        if pred.dim() == target.dim() + 1:
            pred = pred.argmax(1)
        self.matrix += confusion_matrix(pred, target.to(pred.device), self.num_classes, self.ignore_index).to(
            self.matrix.device
        )

    def all_reduce(self) -> ConfusionMatrix:
        """Sum the matrix over all processes when ``torch.distributed`` is initialised (no-op otherwise)."""
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(self.matrix, op=dist.ReduceOp.SUM)
        return self

    def reset(self) -> None:
        self.matrix.zero_()

    def compute(self) -> dict[str, object]:
        return metrics_from_confusion(self.matrix.cpu(), self.class_names)


# --------------------------------------------------------------------------------------------------------------
# Inference
# --------------------------------------------------------------------------------------------------------------


def _logits(output: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    return output["out"] if isinstance(output, dict) else output


def _strict_sr_blocks(model: nn.Module) -> list[str]:
    return [name for name, block in find_sr_blocks(model).items() if block.size_policy == "strict"]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{name} must be a positive int or (H, W), got {value!r}")
    return pair  # type: ignore[return-value]


@torch.no_grad()
def slide_inference(
    model: nn.Module,
    images: torch.Tensor,
    crop_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Logits ``B x K x H x W`` (float32) from windows of ``crop_size`` moved by ``stride``, overlaps averaged.

    The default stride is 2/3 of the crop (mmsegmentation's 341x683 for a 512x1024 crop). An image smaller than the
    window is zero-padded (the mean colour after normalisation) and the padding cropped off the logits, so every
    forward pass sees exactly the crop size and a strict SR block keeps working.
    """
    ch, cw = _pair(crop_size, "crop_size")
    sh, sw = _pair(stride, "stride") if stride is not None else (math.ceil(ch * 2 / 3), math.ceil(cw * 2 / 3))
    batch, _, height, width = images.shape
    padded = F.pad(images, (0, max(cw - width, 0), 0, max(ch - height, 0)))
    ph, pw = padded.shape[-2:]
    rows = max(ph - ch + sh - 1, 0) // sh + 1
    cols = max(pw - cw + sw - 1, 0) // sw + 1
    logits: torch.Tensor | None = None
    count = torch.zeros(1, 1, ph, pw, device=images.device)
    for r in range(rows):
        for c in range(cols):
            y1, x1 = min(r * sh, ph - ch), min(c * sw, pw - cw)
            out = _logits(model(padded[..., y1 : y1 + ch, x1 : x1 + cw])).float()  # sum in fp32 under autocast
            if logits is None:
                logits = out.new_zeros(batch, out.shape[1], ph, pw)
            logits[..., y1 : y1 + ch, x1 : x1 + cw] += out
            count[..., y1 : y1 + ch, x1 : x1 + cw] += 1
    assert logits is not None
    return (logits / count)[..., :height, :width]


@torch.no_grad()
def whole_inference(
    model: nn.Module, images: torch.Tensor, crop_size: int | Sequence[int] | None = None
) -> torch.Tensor:
    """Logits ``B x K x H x W`` from one forward pass over the whole image.

    A model with a strict SR block accepts only its training crop size; asked for another size this raises a
    ``ValueError`` naming both sizes and the two fixes (slide inference, or ``size_policy="interpolate"``).
    """
    size = tuple(images.shape[-2:])
    crop = _pair(crop_size, "crop_size") if crop_size is not None else getattr(model, "crop_size", None)
    strict = _strict_sr_blocks(model)

    def _error() -> ValueError:
        built = f"the training crop {tuple(crop)}" if crop is not None else "its training crop"
        return ValueError(
            f"whole-image inference on {size} is impossible: the model has strict SR block(s) {strict} built for "
            f"{built}. Use mode='slide' (windows of the crop size), or build/train the model with "
            "sr_kwargs={'size_policy': 'interpolate'}."
        )

    if strict and crop is not None and size != tuple(crop):
        raise _error()
    try:
        return _logits(model(images))
    except ValueError as err:
        if strict and "was built for spatial size" in str(err):
            raise _error() from err
        raise


def segment(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mode: str = "slide",
    crop_size: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Logits ``B x K x H x W`` for normalised ``images`` (B x 3 x H x W) by ``slide`` (default) or ``whole``.

    ``crop_size`` defaults to ``model.crop_size`` (set by the segmentation models of the zoo).

    >>> logits = segment(model, images, mode="slide", crop_size=(512, 1024))  # doctest: +SKIP
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"inference mode must be one of {INFERENCE_MODES}, got {mode!r}")
    crop = crop_size if crop_size is not None else getattr(model, "crop_size", None)
    if mode == "whole":
        return whole_inference(model, images, crop)
    if crop is None:
        raise ValueError("slide inference needs crop_size (the training crop), e.g. crop_size=(512, 1024)")
    return slide_inference(model, images, crop, stride)


# --------------------------------------------------------------------------------------------------------------
# The task plug-in
# --------------------------------------------------------------------------------------------------------------

#: The native frame size (H, W) of each dataset: the base of the random rescale when ``data.base_size`` is null.
_NATIVE_SIZE = {"cityscapes": (1024, 2048), "camvid": (360, 480)}


def _subset(dataset: Any, limit: int | None, name: str) -> Any:
    if limit is None or limit >= len(dataset):
        return dataset
    if not isinstance(limit, int) or limit <= 0:
        raise ValueError(f"data.{name} must be a positive int or null, got {limit!r}")
    return Subset(dataset, range(limit))  # the first N in file order: the same frames for every seed


@register_task("segmentation")
class SegmentationTask(Task):
    """Semantic segmentation (PAPER.md §3): cross-entropy with ignore 255 plus the auxiliary head's loss, metrics from
    one confusion matrix per split. Metrics are in percent, like the classification task's accuracies: ``miou``
    (primary), ``macc``, ``aacc``, and ``iou`` (per-class IoU, ``None`` for classes absent from the split).

    ``data`` keys (defaults in :attr:`data_defaults`):
        dataset: ``cityscapes`` | ``camvid``; root: its folder (``--data-dir``).
        crop_size: training crop (H, W); also the sliding window and the SR memory's input size (``model.input_size``
            is filled in as ``[3, *crop_size]`` when the recipe leaves it out, and must agree when it does not).
        base_size: (H, W) that the random rescale (``scale_range``, 0.5-2.0) multiplies; null: the dataset's frame.
        cat_max_ratio: re-draw a crop (up to 10 times) where one class covers more than this share (0.75, the
            paper's framework default; 1 = off).
        flip, photometric: the other training augmentations. mean, std: normalisation (ImageNet's).
        inference: ``slide`` (default; windows of the crop) or ``whole``; slide_stride: null = 2/3 of the crop.
        eval_size: resize images to (H, W) before inference (labels stay at full size); null = native.
        val_split, test_split: split names (null: none); train_subset, val_subset, test_subset: first N frames.
    The auxiliary loss weight is the model's ``aux_weight`` (``model.aux_weight`` in the recipe, 0.4 by default).
    """

    primary_metric = "miou"
    data_defaults: ClassVar[dict[str, Any]] = {
        "dataset": "camvid",
        "root": None,
        "crop_size": [360, 480],
        "base_size": None,
        "scale_range": [0.5, 2.0],
        "cat_max_ratio": 0.75,
        "flip": True,
        "photometric": True,
        "mean": list(IMAGENET_MEAN),
        "std": list(IMAGENET_STD),
        "inference": "slide",
        "slide_stride": None,
        "eval_size": None,
        "val_split": "val",
        "test_split": "test",
        "train_subset": None,
        "val_subset": None,
        "test_subset": None,
    }

    def __init__(self, config: dict[str, Any], dist: DistInfo, device: torch.device) -> None:
        super().__init__(config, dist, device)
        data, model = config["data"], config["model"]
        if data["dataset"] not in SEGMENTATION_DATASETS:
            raise ValueError(f"data.dataset must be one of {sorted(SEGMENTATION_DATASETS)}, got {data['dataset']!r}")
        if data["inference"] not in INFERENCE_MODES:
            raise ValueError(f"data.inference must be one of {INFERENCE_MODES}, got {data['inference']!r}")
        self.crop_size = _pair(data["crop_size"], "data.crop_size")
        # One source of truth for the crop: the SR memory is sized from it (PAPER.md §2, 1024x64x128 for 512x1024).
        wanted = [3, *self.crop_size]
        if model.get("input_size") is None:
            model["input_size"] = wanted
        elif list(model["input_size"]) != wanted:
            raise ValueError(
                f"model.input_size {list(model['input_size'])} disagrees with data.crop_size {list(self.crop_size)}: "
                f"the SR memory must be sized for the training crop; set model.input_size to {wanted} or drop it"
            )
        self.class_names = SEGMENTATION_DATASETS[data["dataset"]][1]
        num_classes = model.get("num_classes")
        if num_classes is not None and num_classes != len(self.class_names):
            raise ValueError(
                f"model.num_classes is {num_classes} but {data['dataset']} has {len(self.class_names)} classes"
            )
        self.aux_weight = float(model.get("aux_weight", 0.0) or 0.0)

    # -- model and data -----------------------------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        model = super().build_model()
        model.crop_size = self.crop_size  # slide/whole inference read it
        self.aux_weight = float(getattr(model, "aux_weight", self.aux_weight))
        data = self.config["data"]
        strict = _strict_sr_blocks(model)
        eval_size = tuple(data["eval_size"]) if data["eval_size"] is not None else None
        if data["inference"] == "whole" and strict and eval_size != self.crop_size:
            raise ValueError(
                f"data.inference 'whole' with strict SR block(s) {strict}: the model only accepts its training crop "
                f"{self.crop_size}, but evaluation images are {eval_size or 'full frames'}. Use data.inference=slide "
                "or model.sr.size_policy=interpolate."
            )
        return model

    def build_loaders(self) -> Loaders:
        data = self.config["data"]
        name, root = data["dataset"], data["root"]
        base = data["base_size"] or _NATIVE_SIZE[name]
        norm = {"mean": data["mean"], "std": data["std"]}
        train_tf = SegmentationTrainTransform(
            base,
            self.crop_size,
            ratio_range=data["scale_range"],
            cat_max_ratio=data["cat_max_ratio"],
            flip=data["flip"],
            photometric=data["photometric"],
            **norm,
        )
        eval_tf = SegmentationEvalTransform(data["eval_size"], **norm)
        batch, eval_batch = self.batch_sizes()

        def split(key: str, train: bool) -> Any:
            split_name = "train" if train else data[f"{key}_split"]
            if split_name is None:
                return None
            dataset = segmentation_dataset(name, root, split_name, transforms=train_tf if train else eval_tf)
            dataset = _subset(dataset, data[f"{key}_subset"], f"{key}_subset")
            return make_loader(dataset, batch if train else eval_batch, train=train, **self.loader_options())

        return Loaders(train=split("train", True), val=split("val", False), test=split("test", False))

    # -- steps --------------------------------------------------------------------------------------------------
    def loss(self, model: nn.Module, batch: Any) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        images, masks = batch
        outputs = model(images)
        main = F.cross_entropy(outputs["out"].float(), masks, ignore_index=IGNORE_INDEX)
        logs = {"loss_main": main.detach()}
        loss = main
        if self.aux_weight and outputs.get("aux") is not None:
            aux = F.cross_entropy(outputs["aux"].float(), masks, ignore_index=IGNORE_INDEX)
            loss = main + self.aux_weight * aux
            logs["loss_aux"] = aux.detach()
        logs["loss"] = loss.detach()
        return loss, logs

    def evaluate(self, model: nn.Module, loader: Any) -> dict[str, Any]:
        data = self.config["data"]
        loader.set_epoch(0)
        confmat = ConfusionMatrix(len(self.class_names), class_names=self.class_names, device=self.device)
        for batch in loader:
            images, masks = self.to_device(batch)
            logits = segment(
                model, images, mode=data["inference"], crop_size=self.crop_size, stride=data["slide_stride"]
            )
            if logits.shape[-2:] != masks.shape[-2:]:  # eval_size: predict small, score at the labels' resolution
                logits = F.interpolate(logits.float(), size=masks.shape[-2:], mode="bilinear", align_corners=False)
            confmat.update(logits.argmax(1), masks)
        self.dist.all_reduce(confmat.matrix)
        metrics = confmat.compute()
        pct = {k: None if v is None else v * 100 for k, v in metrics["iou"].items()}
        return {
            "miou": metrics["miou"] * 100,
            "macc": metrics["macc"] * 100,
            "aacc": metrics["aacc"] * 100,
            "pixels": int(confmat.matrix.sum()),
            "iou": pct,
        }

    def summarize(self, val: Mapping[str, Any] | None, test: Mapping[str, Any] | None) -> dict[str, Any]:
        def get(metrics: Mapping[str, Any] | None, key: str) -> Any:
            return None if metrics is None else metrics.get(key)

        return {
            "best_val_miou": get(val, "miou"),
            "best_val_macc": get(val, "macc"),
            "best_val_aacc": get(val, "aacc"),
            "test_miou": get(test, "miou"),
            "test_macc": get(test, "macc"),
            "test_aacc": get(test, "aacc"),
            "test_iou": get(test, "iou"),
        }
