"""Classification metrics as sums, so they all-reduce exactly over ranks and batches of any size."""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["topk_correct"]


def topk_correct(logits: torch.Tensor, targets: torch.Tensor, ks: Sequence[int] = (1, 5)) -> torch.Tensor:
    """Number of samples whose target is among the top-k logits, for each k (float tensor, one entry per k).

    A k larger than the number of classes counts every sample as correct.

    >>> topk_correct(torch.tensor([[0.1, 0.9], [0.8, 0.2]]), torch.tensor([1, 1]), ks=(1, 2))
    tensor([1., 2.])
    """
    top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
    hits = top.eq(targets.view(-1, 1))
    return torch.stack([hits[:, :k].any(dim=1).sum() for k in ks]).float()
