"""CIFAR-10/100 as uint8 tensors in memory: from ``train.npz``/``test.npz`` arrays or through torchvision.

Accepted layouts under ``root`` (first match wins):

* ``root/train.npz`` and ``root/test.npz`` (or ``root/<dataset>/...``), each with ``x`` uint8 ``N x H x W x C``
  and ``y`` integer labels — the format of ``../shared/data/cifar10``;
* torchvision's ``root/cifar-10-batches-py`` / ``root/cifar-100-python`` folders (``download=True`` fetches them).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

__all__ = ["NUM_CLASSES", "load_cifar", "load_npz_split"]

NUM_CLASSES = {"cifar10": 10, "cifar100": 100}
_TV_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}


def load_npz_split(path: str | Path, num_classes: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images uint8 N x C x H x W, labels int64 N)`` from an npz with ``x`` (N x H x W x C uint8) and ``y``."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    with np.load(path) as arrays:
        missing = {"x", "y"} - set(arrays.files)
        if missing:
            raise ValueError(f"{path} must hold arrays 'x' (N x H x W x C uint8) and 'y'; missing {sorted(missing)}")
        x, y = arrays["x"], arrays["y"]
    if x.dtype != np.uint8 or x.ndim != 4 or x.shape[-1] not in (1, 3):
        raise ValueError(f"{path}: 'x' must be uint8 N x H x W x C with C in (1, 3), got {x.dtype} {x.shape}")
    y = np.asarray(y).reshape(-1)
    if len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
        raise ValueError(f"{path}: 'y' must hold {len(x)} integer labels, got {y.dtype} {y.shape}")
    if num_classes is not None and len(y) and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"{path}: labels must be in [0, {num_classes}), got [{y.min()}, {y.max()}]")
    images = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    return images, torch.from_numpy(y.astype(np.int64))


def _from_torchvision(dataset: str, root: Path, download: bool) -> tuple[torch.Tensor, ...]:
    from torchvision import datasets

    cls = datasets.CIFAR10 if dataset == "cifar10" else datasets.CIFAR100
    out = []
    for train in (True, False):
        split = cls(str(root), train=train, download=download)
        out += [torch.from_numpy(split.data.transpose(0, 3, 1, 2).copy()), torch.tensor(split.targets)]
    return tuple(out)


def load_cifar(
    dataset: str, root: str | Path | None = None, *, download: bool = False
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(train_images, train_labels, test_images, test_labels)`` of CIFAR-10 or CIFAR-100 (uint8 N x 3 x 32 x 32).

    ``root`` defaults to ``./data/<dataset>``. With ``download=True`` and nothing found, torchvision downloads the
    set into ``root`` (needs internet).
    """
    if dataset not in NUM_CLASSES:
        raise ValueError(f"dataset must be one of {sorted(NUM_CLASSES)}, got {dataset!r}")
    root = Path(root) if root is not None else Path("data") / dataset
    for folder in (root, root / dataset):
        if (folder / "train.npz").is_file() and (folder / "test.npz").is_file():
            train = load_npz_split(folder / "train.npz", NUM_CLASSES[dataset])
            test = load_npz_split(folder / "test.npz", NUM_CLASSES[dataset])
            return (*train, *test)
    if (root / _TV_FOLDER[dataset]).is_dir() or download:
        return _from_torchvision(dataset, root, download)
    raise FileNotFoundError(
        f"{dataset} not found under {root.resolve()}: looked for train.npz + test.npz (arrays x uint8 N x H x W x C, "
        f"y) in {root} and {root / dataset}, and for torchvision's {_TV_FOLDER[dataset]}/ folder. Point --data-dir "
        f"at one of those, or add --data.download true to let torchvision download it there (needs internet)."
    )
