"""scikit-learn's handwritten digits (1,797 real 8x8 images, 10 classes): a dataset that ships inside a dependency.

Used by ``srblock demo`` so the first command needs no download. The 0..16 intensities are rescaled to uint8 and
the images upsampled to ``size`` (nearest) so CIFAR-style networks have spatial room for their stages.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["DIGITS_MEAN", "DIGITS_STD", "load_digits"]

# Pixel mean and std on the [0, 1] scale of the training split (the same at any ``size``: nearest upsampling).
DIGITS_MEAN = (0.306,)
DIGITS_STD = (0.376,)


def load_digits(
    size: int = 16, test_fraction: float = 0.2
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_images, train_labels, test_images, test_labels)``: uint8 ``N x 1 x size x size``, int64 labels.

    The test split is fixed (seed 0, stratified), independent of the run's seed, like CIFAR's official test set.
    """
    from sklearn.datasets import load_digits as sk_load_digits

    from .split import train_val_split

    bunch = sk_load_digits()
    images = torch.from_numpy(bunch.images).float().mul(255.0 / 16.0).round().to(torch.uint8).unsqueeze(1)
    if size != images.shape[-1]:
        images = F.interpolate(images.float(), size=(size, size), mode="nearest").to(torch.uint8)
    labels = torch.from_numpy(bunch.target).long()
    train_idx, test_idx = train_val_split(len(labels), test_fraction, seed=0, labels=labels)
    return images[train_idx], labels[train_idx], images[test_idx], labels[test_idx]
