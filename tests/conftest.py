"""Shared fixtures: the real datasets in ../shared/data (skip cleanly when absent) and deterministic seeding."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("SRBLOCK_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Root of the real datasets (CIFAR-10 npz, CamVid/Cityscapes sample, ImageNet sample); skips when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data not found at {SHARED_DATA} (set SRBLOCK_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The engine tests' tiny npz dataset (:func:`tests.engine.conftest.write_npz`)."""
    from .engine.conftest import write_npz

    return write_npz(tmp_path_factory.mktemp("tiny") / "data")


@pytest.fixture(scope="session")
def finished_run(tiny_data: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A finished 2-epoch run of the tiny recipe, shared by the engine and reliability suites: tests must not modify
    it (the reliability suite's ``run_copy`` gives a private copy)."""
    from srblock.engine import train

    from .engine.conftest import tiny_config

    out = tmp_path_factory.mktemp("finished") / "run"
    return out, train(tiny_config(tiny_data), out, quiet=True)


JPEG_SLICE = 8  # files per class and split in the small copy of cifar10-jpeg.tar.xz


@pytest.fixture(scope="session")
def cifar10_jpeg_slice(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cifar10-jpeg.tar.xz of the real one's layout: the first JPEG_SLICE files of each class of each split."""
    source = shared_data / "cifar10" / "cifar10-jpeg.tar.xz"
    if not source.is_file():
        pytest.skip(f"{source} not found")
    out = tmp_path_factory.mktemp("jpeg") / "cifar10-jpeg.tar.xz"
    with tarfile.open(source) as src, tarfile.open(out, "w:xz") as dst:
        for member in src:
            if member.isfile() and int(Path(member.name).stem) < JPEG_SLICE:
                dst.addfile(member, src.extractfile(member))
    return out


def write_jpeg_tar(path: Path, *, per_class: int = 4, classes: int = 10, seed: int = 0) -> Path:
    """A tar.xz of random 32x32 JPEGs in the CIFAR-10 archive's layout (``<split>/<class>/NNNN.jpg``)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w:xz") as tar:
        for split in ("test", "train"):
            for c in range(classes):
                for i in range(per_class):
                    buffer = io.BytesIO()
                    Image.fromarray(rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)).save(buffer, "JPEG")
                    info = tarfile.TarInfo(f"{split}/class{c}/{i:04d}.jpg")
                    info.size = buffer.tell()
                    buffer.seek(0)
                    tar.addfile(info, buffer)
    return path
