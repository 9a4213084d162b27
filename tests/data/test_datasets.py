"""CIFAR npz / torchvision layouts, digits, ImageNet folders: loading and the errors that say how to fix things."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from srblock.data.cifar import load_cifar, load_npz_split
from srblock.data.digits import load_digits
from srblock.data.imagenet import imagenet_folder


def _npz(path: Path, n: int = 6, **overrides) -> Path:
    arrays = {"x": np.zeros((n, 32, 32, 3), np.uint8), "y": np.arange(n) % 10, **overrides}
    np.savez(path, **arrays)
    return path


def test_npz_layout_loads_as_nchw_uint8(tmp_path: Path) -> None:
    _npz(tmp_path / "train.npz", n=6)
    _npz(tmp_path / "test.npz", n=4)
    x, y, tx, ty = load_cifar("cifar10", tmp_path)
    assert x.shape == (6, 3, 32, 32) and x.dtype == torch.uint8 and y.dtype == torch.int64
    assert tx.shape == (4, 3, 32, 32) and ty.tolist() == [0, 1, 2, 3]


def test_missing_cifar_says_where_and_how(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train\.npz.*cifar-10-batches-py.*--data\.download true"):
        load_cifar("cifar10", tmp_path / "nowhere")


def test_malformed_npz_is_a_value_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="missing"):
        load_npz_split(_bad_keys(tmp_path / "a.npz"))
    with pytest.raises(ValueError, match="uint8"):
        load_npz_split(_npz(tmp_path / "b.npz", x=np.zeros((6, 32, 32, 3), np.float32)))
    with pytest.raises(ValueError, match=r"labels must be in \[0, 10\)"):
        load_npz_split(_npz(tmp_path / "c.npz", y=np.full(6, 12)), num_classes=10)


def _bad_keys(path: Path) -> Path:
    np.savez(path, images=np.zeros((2, 4, 4, 3), np.uint8))
    return path


def test_real_cifar10_npz(shared_data: Path) -> None:
    x, y = load_npz_split(shared_data / "cifar10" / "test.npz", num_classes=10)
    assert x.shape == (10000, 3, 32, 32) and torch.bincount(y).tolist() == [1000] * 10


def test_digits_fixed_test_split() -> None:
    x, _, tx, ty = load_digits(size=16)
    assert x.shape[1:] == (1, 16, 16) and x.dtype == torch.uint8
    assert len(x) + len(tx) == 1797 and abs(len(tx) - 0.2 * 1797) < 10
    assert torch.equal(load_digits(size=16)[3], ty)  # independent of any run seed


def test_imagenet_folder_layout_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"train/n01440764"):
        imagenet_folder(tmp_path, "train")
