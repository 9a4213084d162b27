"""Shared fixtures: the real datasets in ../shared/data (skip cleanly when absent) and deterministic seeding."""

from __future__ import annotations

import os
from pathlib import Path

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
