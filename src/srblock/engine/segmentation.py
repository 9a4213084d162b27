"""Semantic segmentation for the engine: the task plug-in (PAPER.md §3).

Its metrics (one confusion matrix per split) live in :mod:`srblock.engine.metrics`, slide/whole inference in
:mod:`srblock.engine.inference`; both are re-exported here, where they used to be defined.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
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
from .distributed import DistInfo
from .inference import INFERENCE_MODES, _pair, _strict_sr_blocks, segment, slide_inference, whole_inference
from .metrics import ConfusionMatrix, confusion_matrix, metrics_from_confusion
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
