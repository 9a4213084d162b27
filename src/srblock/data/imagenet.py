"""ImageNet through ``ImageFolder`` with the paper's transforms (PAPER.md §3), via torchvision transforms v2.

Expected layout (what ``torchvision.datasets.ImageNet`` also prepares from the official tarballs)::

    root/train/n01440764/*.JPEG ...   (1000 class folders)
    root/val/n01440764/*.JPEG ...     (the 50k validation images sorted into the same class folders)
"""

from __future__ import annotations

from pathlib import Path

import torch

__all__ = ["IMAGENET_MEAN", "IMAGENET_STD", "imagenet_folder", "imagenet_transforms"]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def imagenet_transforms(train: bool, crop_size: int = 224, resize_size: int = 256):
    """Train: RandomResizedCrop(crop) + flip; eval: Resize(resize) + CenterCrop(crop); both normalised."""
    from torchvision.transforms import v2

    if train:
        geometry = [v2.RandomResizedCrop(crop_size, antialias=True), v2.RandomHorizontalFlip()]
    else:
        geometry = [v2.Resize(resize_size, antialias=True), v2.CenterCrop(crop_size)]
    return v2.Compose(
        [
            v2.ToImage(),
            *geometry,
            v2.ToDtype(torch.float32, scale=True),
            v2.Normalize(IMAGENET_MEAN, IMAGENET_STD),
        ]
    )


def imagenet_folder(root: str | Path, split: str, *, crop_size: int = 224, resize_size: int = 256):
    """``ImageFolder(root/split)`` with :func:`imagenet_transforms` (``split`` is ``"train"`` or ``"val"``)."""
    from torchvision.datasets import ImageFolder

    folder = Path(root) / split
    if not folder.is_dir() or not any(p.is_dir() for p in folder.iterdir()):
        raise FileNotFoundError(
            f"ImageNet {split} split not found at {folder.resolve()}: expected one sub-folder per class "
            f"(root/{split}/n01440764/*.JPEG, ...). torchvision.datasets.ImageNet(root, split={split!r}) builds this "
            f"layout from the official ILSVRC2012 tarballs; pass the folder with --data-dir."
        )
    return ImageFolder(str(folder), transform=imagenet_transforms(split == "train", crop_size, resize_size))
