"""The CIFAR-10-C corruptions: each does what its definition says, severities grow, a seed fixes the set."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from srblock.data import corruptions
from srblock.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt, corrupted_set, jpeg_round_trip

NOISE = ("gaussian_noise", "shot_noise", "impulse_noise")
BLUR = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur")
# the reference's parameters do not make the pixel damage of these grow with severity (see the module docstring)
NOT_MONOTONE = ("glass_blur", "elastic_transform")
DETERMINISTIC = ("defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression")


@pytest.fixture(scope="module")
def images() -> torch.Tensor:
    """48 synthetic 32x32 images: a smooth colour field (4x4 upsampled) plus fine texture, uint8."""
    g = torch.Generator().manual_seed(0)
    smooth = F.interpolate(torch.rand(48, 3, 4, 4, generator=g), size=32, mode="bilinear", align_corners=False)
    return (smooth * 200 + torch.rand(48, 3, 32, 32, generator=g) * 55).to(torch.uint8)


@pytest.fixture(scope="module")
def flat() -> torch.Tensor:
    return torch.full((8, 3, 32, 32), 128, dtype=torch.uint8)


def _high_freq(x: torch.Tensor) -> float:
    """Mean squared Laplacian: the energy of the highest spatial frequencies."""
    x = x.double()
    lap = 4 * x[..., 1:-1, 1:-1] - x[..., :-2, 1:-1] - x[..., 2:, 1:-1] - x[..., 1:-1, :-2] - x[..., 1:-1, 2:]
    return float((lap**2).mean())


def _damage(clean: torch.Tensor, out: torch.Tensor) -> float:
    """1 - the mean per-image correlation with the clean image."""
    a, b = clean.double().flatten(1), out.double().flatten(1)
    a, b = a - a.mean(1, keepdim=True), b - b.mean(1, keepdim=True)
    return 1 - float(((a * b).sum(1) / (a.norm(dim=1) * b.norm(dim=1))).mean())


@pytest.mark.parametrize("name", CORRUPTIONS)
def test_every_corruption_keeps_shape_and_dtype_and_changes_the_images(images: torch.Tensor, name: str) -> None:
    out = corrupt(images, name, 5)
    assert out.shape == images.shape and out.dtype == torch.uint8
    assert (out != images).any()


@pytest.mark.parametrize("name", NOISE)
def test_noise_raises_pixel_variance_with_severity(flat: torch.Tensor, name: str) -> None:
    variances = [float(corrupt(flat, name, s).double().var()) for s in SEVERITIES]
    assert variances[0] > 0 and variances == sorted(variances) and len(set(variances)) == len(variances)


@pytest.mark.parametrize("name", BLUR)
def test_blur_lowers_high_frequencies(images: torch.Tensor, name: str) -> None:
    # glass blur's severity 1 blurs with sigma 0.05 (nothing) and only moves pixels, which adds no smoothing
    for severity in SEVERITIES[1:] if name == "glass_blur" else SEVERITIES:
        assert _high_freq(corrupt(images, name, severity)) < _high_freq(images), severity


@pytest.mark.parametrize("name", [*BLUR, "elastic_transform", "pixelate", "zoom_blur"])
def test_blur_and_geometric_corruptions_keep_a_flat_image_flat(flat: torch.Tensor, name: str) -> None:
    for severity in SEVERITIES:
        assert (corrupt(flat, name, severity).int() - 128).abs().max() <= 1  # 1: the reference's truncation to uint8


def test_brightness_moves_the_mean_up_and_contrast_shrinks_the_spread(images: torch.Tensor) -> None:
    means = [float(corrupt(images, "brightness", s).double().mean()) for s in SEVERITIES]
    assert float(images.double().mean()) < means[0] and means == sorted(means)
    stds = [float(corrupt(images, "contrast", s).double().std()) for s in SEVERITIES]
    assert stds == sorted(stds, reverse=True) and stds[0] < float(images.double().std())
    assert abs(float(corrupt(images, "contrast", 5).double().mean()) - float(images.double().mean())) < 1


def test_weather_snow_brightens_and_fog_smooths(images: torch.Tensor) -> None:
    snow = [float(corrupt(images, "snow", s).double().mean()) for s in SEVERITIES]
    assert float(images.double().mean()) < snow[0] and snow == sorted(snow)
    fog = [_high_freq(corrupt(images, "fog", s)) for s in SEVERITIES]  # fog is a low-frequency veil
    assert fog == sorted(fog, reverse=True)


@pytest.mark.parametrize("name", [c for c in CORRUPTIONS if c not in NOT_MONOTONE])
def test_damage_grows_with_severity(images: torch.Tensor, name: str) -> None:
    damage = [_damage(images, corrupt(images, name, s)) for s in SEVERITIES]
    # motion blur's severities 3 and 4 differ only in radius beyond 3 sigma of the same Gaussian: equal up to noise
    assert all(b >= a - 0.003 for a, b in itertools.pairwise(damage)), damage
    assert damage[-1] > damage[0] + 0.01, damage


def test_glass_blur_copies_each_pixel_from_an_up_left_neighbour(images: torch.Tensor) -> None:
    # the published code's "swap" assigns numpy views: a pixel takes a neighbour's value at offset (dy, dx) in
    # {-1, 0}^2, rows and columns 2..31 only; severity 1's blur (sigma 0.05) is the identity
    out = corrupt(images, "glass_blur", 1).int()
    clean = images.int()
    inner = out[..., 2:, 2:]
    candidates = torch.stack([clean[..., 2 + dy : 32 + dy, 2 + dx : 32 + dx] for dy in (-1, 0) for dx in (-1, 0)])
    assert ((candidates - inner).abs().amin(0) <= 1).all()
    assert (out[..., :2, :] - clean[..., :2, :]).abs().max() <= 1
    assert ((candidates[3] - inner).abs() > 1).any(), "some pixels moved"


def test_same_seed_gives_the_same_set_and_another_seed_another(images: torch.Tensor) -> None:
    for name in CORRUPTIONS:
        first = corrupt(images, name, 3, seed=0)
        assert torch.equal(first, corrupt(images, name, 3, seed=0)), name
        if name not in DETERMINISTIC:
            assert not torch.equal(first, corrupt(images, name, 3, seed=1)), name


def test_an_image_depends_only_on_its_chunk(images: torch.Tensor, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(corruptions, "CHUNK", 16)
    for name in ("impulse_noise", "fog", "elastic_transform"):
        whole = corrupt(images, name, 2)
        assert torch.equal(whole[16:32], corrupt(images[:32], name, 2)[16:32]), name


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("blur", 1, 0), "corruption must be one of"),
        (("fog", 6, 0), "severity must be one of"),
        (("fog", 1, -1), "seed must be an int >= 0"),
    ],
)
def test_bad_arguments_are_refused(images: torch.Tensor, args: tuple, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        corrupt(images, *args)


def test_images_must_be_uint8_rgb(images: torch.Tensor) -> None:
    with pytest.raises(ValueError, match="uint8 N x 3 x H x W"):
        corrupt(images.float(), "fog", 1)
    with pytest.raises(ValueError, match="uint8 N x 3 x H x W"):
        corrupt(images[:, :1], "fog", 1)


def test_jpeg_round_trip_is_the_jpeg_corruption_at_any_quality(images: torch.Tensor) -> None:
    for severity, quality in zip(SEVERITIES, (80, 65, 58, 50, 40), strict=True):  # the reference's qualities
        assert torch.equal(jpeg_round_trip(images, quality), corrupt(images, "jpeg_compression", severity))
    errors = [float(((jpeg_round_trip(images, q).double() - images.double()) ** 2).mean()) for q in (95, 30, 5)]
    assert 0 < errors[0] < errors[1] < errors[2]
    for quality in (0, 96, 50.0, True):
        with pytest.raises(ValueError, match=f"quality must be an int in 1..95, got {quality!r}"):
            jpeg_round_trip(images, quality)
    with pytest.raises(ValueError, match="uint8 N x 3 x H x W"):
        jpeg_round_trip(images.float(), 50)


def test_corrupted_set_is_cached_and_remade_when_damaged(images, tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = corrupted_set(images, "shot_noise", 2, cache_dir=tmp_path)
    (path,) = tmp_path.rglob("shot_noise-2.npy")
    assert torch.equal(first, corrupt(images, "shot_noise", 2))

    def fail(*args, **kwargs):
        raise AssertionError("recomputed")

    with monkeypatch.context() as mp:
        mp.setattr(corruptions, "corrupt", fail)
        assert torch.equal(corrupted_set(images, "shot_noise", 2, cache_dir=tmp_path), first)
        assert torch.equal(corrupted_set(images.clone(), "shot_noise", 2, cache_dir=tmp_path), first)
        with pytest.raises(AssertionError, match="recomputed"):  # other images, seed: another key
            corrupted_set(images, "shot_noise", 2, seed=1, cache_dir=tmp_path)
    path.write_bytes(path.read_bytes()[:100])
    assert torch.equal(corrupted_set(images, "shot_noise", 2, cache_dir=tmp_path), first)
    assert np.load(path).shape == tuple(images.shape)


def test_an_unwritable_cache_costs_time_not_the_result(images, tmp_path, caplog) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    with caplog.at_level("WARNING", logger="srblock"):
        out = corrupted_set(images, "fog", 1, cache_dir=blocked)
    assert torch.equal(out, corrupt(images, "fog", 1)) and "could not cache" in caplog.text


def test_real_cifar_images_all_75_sets(shared_data) -> None:
    path = shared_data / "cifar10" / "test.npz"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    clean = torch.from_numpy(np.load(path)["x"][::100]).permute(0, 3, 1, 2).contiguous()
    damage = {name: [_damage(clean, corrupt(clean, name, s)) for s in SEVERITIES] for name in CORRUPTIONS}
    for name in (*NOISE, "defocus_blur", "zoom_blur", "fog", "contrast", "pixelate"):
        assert damage[name] == sorted(damage[name]), name
    assert damage["brightness"][0] < min(damage[n][0] for n in NOISE)
