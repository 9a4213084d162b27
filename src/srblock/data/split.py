"""The seeded train/validation split of the paper's CIFAR protocol (90 % / 10 %, PAPER.md §3)."""

from __future__ import annotations

import torch

__all__ = ["train_val_split"]


def train_val_split(
    num_samples: int, val_fraction: float, seed: int, *, labels: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Disjoint ``(train_indices, val_indices)`` covering ``range(num_samples)``, drawn from ``seed``.

    With ``labels`` the split is stratified (each class keeps the same fraction in validation), which keeps the
    class balance of CIFAR's validation set exact; without, it is a plain random split. Both index tensors are
    sorted, so the split is a pure function of ``(num_samples, val_fraction, seed, labels)``.

    >>> train, val = train_val_split(50_000, 0.1, seed=0)
    >>> len(train), len(val)
    (45000, 5000)
    """
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1), got {val_fraction}")
    generator = torch.Generator().manual_seed(seed)
    if labels is None:
        order = torch.randperm(num_samples, generator=generator)
        num_val = round(num_samples * val_fraction)
        return order[num_val:].sort().values, order[:num_val].sort().values
    labels = torch.as_tensor(labels)
    if len(labels) != num_samples:
        raise ValueError(f"{num_samples} samples but {len(labels)} labels")
    val_parts = []
    for cls in torch.unique(labels).tolist():
        members = torch.nonzero(labels == cls).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        val_parts.append(members[: round(len(members) * val_fraction)])
    val = torch.cat(val_parts).sort().values if val_parts else torch.empty(0, dtype=torch.long)
    mask = torch.ones(num_samples, dtype=torch.bool)
    mask[val] = False
    return torch.nonzero(mask).flatten(), val
