"""Batched augmentation: crops are shifts of the zero-padded image, flips mirror, same generator same result."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srblock.data.transforms import BatchAugment, normalize


def _identity_norm(**kwargs) -> BatchAugment:
    return BatchAugment((0.0, 0.0, 0.0), (1 / 255, 1 / 255, 1 / 255), **kwargs)  # output = pixel values


def test_crop_is_a_window_of_the_padded_image() -> None:
    aug = _identity_norm(crop_padding=4, flip=False)
    x = torch.randint(0, 256, (6, 3, 32, 32), dtype=torch.uint8)
    params = aug.params(6, torch.Generator().manual_seed(1))
    out = aug.apply(x, params)
    padded = F.pad(x, (4, 4, 4, 4)).float()
    for i, (dy, dx, _) in enumerate(params.tolist()):
        assert torch.allclose(out[i], padded[i, :, dy : dy + 32, dx : dx + 32])


def test_flip_mirrors_only_flagged_images() -> None:
    aug = _identity_norm(crop_padding=0, flip=True)
    x = torch.randint(0, 256, (8, 3, 5, 7), dtype=torch.uint8)
    params = torch.tensor([[0, 0, i % 2] for i in range(8)])
    out = aug.apply(x, params)
    for i in range(8):
        expected = x[i].flip(-1) if i % 2 else x[i]
        assert torch.allclose(out[i], expected.float())


def test_no_flip_never_flips_and_offsets_stay_in_range() -> None:
    params = BatchAugment((0.5,), (0.5,), crop_padding=2, flip=False).params(1000, torch.Generator().manual_seed(0))
    assert params[:, 2].eq(0).all()
    assert params[:, :2].min() == 0 and params[:, :2].max() == 4


def test_same_generator_seed_gives_same_batch() -> None:
    aug = BatchAugment((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    x = torch.randint(0, 256, (4, 3, 8, 8), dtype=torch.uint8)
    a = aug.apply(x, aug.params(4, torch.Generator().manual_seed(3)))
    b = aug.apply(x, aug.params(4, torch.Generator().manual_seed(3)))
    assert torch.equal(a, b)


def test_normalize_matches_formula() -> None:
    x = torch.randint(0, 256, (2, 3, 4, 4), dtype=torch.uint8)
    mean, std = (0.1, 0.2, 0.3), (0.5, 0.6, 0.7)
    expected = (x.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(normalize(x, mean, std), expected)
