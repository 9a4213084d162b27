"""Metrics as sums, so they all-reduce exactly over ranks and batches of any size.

Classification: top-k hits. Segmentation (PAPER.md §3, the Cityscapes protocol): one K x K confusion matrix is
accumulated over the whole split (summed across processes under DDP), then mIoU, mAcc, aAcc and per-class IoU are
read from it. A class absent from both the predictions and the ground truth has an undefined IoU (0/0) and is left
out of the mean (NaN-mean), not counted as 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.distributed as dist

from ..data.segmentation import IGNORE_INDEX

__all__ = ["ConfusionMatrix", "confusion_matrix", "metrics_from_confusion", "topk_correct"]


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> torch.Tensor:
    """Number of samples whose target is among the top-k logits, for each k (float tensor, one entry per k).

    A k larger than the number of classes counts every sample as correct.

    >>> topk_correct(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), ks=(1, 2))
    tensor([1., 2.])
    """
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top.eq(targets.view(-1, 1))
    return torch.stack([hits[:, :k].any(dim=1).sum() for k in ks]).float()


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

    def compute(self) -> dict[str, object]:
        return metrics_from_confusion(self.matrix.cpu(), self.class_names)
