"""The seeded 90/10 split: disjoint, complete, stratified, reproducible."""

from __future__ import annotations

import pytest
import torch

from srblock.data.split import train_val_split


def test_split_is_disjoint_complete_and_seeded() -> None:
    train, val = train_val_split(1000, 0.1, seed=3)
    assert len(val) == 100 and len(train) == 900
    assert torch.equal(torch.cat([train, val]).sort().values, torch.arange(1000))
    again_train, again_val = train_val_split(1000, 0.1, seed=3)
    assert torch.equal(val, again_val) and torch.equal(train, again_train)
    assert not torch.equal(val, train_val_split(1000, 0.1, seed=4)[1])


def test_stratified_split_keeps_class_shares() -> None:
    labels = torch.arange(500) % 10
    train, val = train_val_split(500, 0.1, seed=0, labels=labels)
    assert torch.bincount(labels[val], minlength=10).tolist() == [5] * 10
    assert len(set(train.tolist()) & set(val.tolist())) == 0 and len(train) == 450


def test_zero_fraction_and_bad_fraction() -> None:
    train, val = train_val_split(10, 0.0, seed=0)
    assert len(val) == 0 and len(train) == 10
    with pytest.raises(ValueError, match="val_fraction"):
        train_val_split(10, 1.0, seed=0)
