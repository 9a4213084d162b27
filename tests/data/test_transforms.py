"""Batched augmentation: crops are shifts of the zero-padded image, flips mirror, same generator same result."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from srblock.data.loader import InMemoryLoader
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


def test_reflect_padding_crops_a_window_of_the_mirrored_border() -> None:
    aug = _identity_norm(crop_padding=2, flip=False, pad_mode="reflect")
    x = torch.randint(0, 256, (6, 3, 8, 8), dtype=torch.uint8)
    params = aug.params(6, torch.Generator().manual_seed(2))
    out = aug.apply(x, params)
    padded = F.pad(x.float(), (2, 2, 2, 2), mode="reflect")
    for i, (dy, dx, _) in enumerate(params.tolist()):
        assert torch.allclose(out[i], padded[i, :, dy : dy + 8, dx : dx + 8])
    # a shift by one pixel up-left shows the mirrored row/column 1 at the border, never a zero
    shifted = aug.apply(x, torch.tensor([[1, 1, 0]] * 6))
    assert torch.allclose(shifted[:, :, 0, 1:], x[:, :, 1, :7].float()) and shifted.shape == (6, 3, 8, 8)


def test_alternating_flip_flips_exactly_the_images_not_flipped_the_epoch_before() -> None:
    aug = _identity_norm(crop_padding=2, flip="alternate")

    def flips(epoch: int) -> torch.Tensor:
        gen = torch.Generator().manual_seed(100 + epoch)  # a new draw for the crops of each epoch
        return aug.params(1000, gen, epoch=epoch, flip_generator=torch.Generator().manual_seed(7))[:, 2]

    epochs = [flips(e) for e in range(4)]
    assert 400 < int(epochs[0].sum()) < 600  # a random half in epoch 0
    for before, after in itertools.pairwise(epochs):
        assert torch.equal(after, 1 - before)
    with pytest.raises(ValueError, match="flip_generator"):
        aug.params(4, torch.Generator())


def test_loader_with_alternating_flip_shows_each_image_mirrored_the_next_epoch() -> None:
    images = torch.randint(0, 256, (12, 3, 4, 4), dtype=torch.uint8)
    aug = _identity_norm(crop_padding=0, flip="alternate")
    loader = InMemoryLoader(images, torch.arange(12), 5, train=True, augment=aug, seed=3)

    def by_label(epoch: int) -> dict[int, torch.Tensor]:
        loader.set_epoch(epoch)
        return {int(y): x for xs, ys in loader for x, y in zip(xs, ys, strict=True)}

    first, second = by_label(0), by_label(1)
    assert sorted(first) == list(range(12))
    for i in range(12):
        assert torch.equal(second[i], first[i].flip(-1))
        assert torch.allclose(first[i], images[i].float()) or torch.allclose(first[i], images[i].flip(-1).float())


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"flip": "sometimes"}, "flip must be one of"),
        ({"pad_mode": "edge"}, "pad_mode"),
        ({"crop_padding": -1}, ">= 0"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _identity_norm(**kwargs)
