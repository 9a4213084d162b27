"""Datasets and batch loaders for classification (CIFAR, ImageNet, digits); segmentation data in ``segmentation``."""

from .cifar import load_cifar, load_npz_split
from .digits import load_digits
from .imagenet import imagenet_folder, imagenet_transforms
from .loader import InMemoryLoader, ShardSampler, make_loader
from .split import train_val_split
from .transforms import BatchAugment, normalize

__all__ = [
    "BatchAugment",
    "InMemoryLoader",
    "ShardSampler",
    "imagenet_folder",
    "imagenet_transforms",
    "load_cifar",
    "load_digits",
    "load_npz_split",
    "make_loader",
    "normalize",
    "train_val_split",
]
