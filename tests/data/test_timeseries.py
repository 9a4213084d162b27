"""The UCR/UEA loader against aeon's own: shapes, labels, official splits, z-normalisation, unequal lengths."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

pytest.importorskip("aeon")

from aeon.datasets import load_classification

from srblock._extras import MissingExtraError
from srblock.data.timeseries import SeriesLoader, _label_order, load_ucr, resample, znormalize


@pytest.mark.parametrize("name", ["GunPoint", "ItalyPowerDemand", "BasicMotions", "ArrowHead"])
def test_equal_length_sets_match_aeon_split_by_split(name: str) -> None:
    data = load_ucr(name)
    assert not data.resampled
    for split, x, y in (("train", data.train_x, data.train_y), ("test", data.test_x, data.test_y)):
        raw_x, raw_y = load_classification(name, split=split)
        assert x.shape == raw_x.shape and x.dtype == torch.float32
        # the official split in the archive's order, each label the archive's string
        assert [data.classes[i] for i in y.tolist()] == [str(v) for v in raw_y]
        mean, std = raw_x.mean(-1, keepdims=True), raw_x.std(-1, keepdims=True)
        np.testing.assert_allclose(x.numpy(), (raw_x - mean) / np.where(std == 0, 1, std), atol=1e-5)
    assert sorted(set(data.train_y.tolist())) == list(range(len(data.classes)))


def test_z_normalised_per_series_and_channel() -> None:
    x = load_ucr("BasicMotions").train_x  # 6 channels
    torch.testing.assert_close(x.mean(-1), torch.zeros(x.shape[:2]), atol=1e-5, rtol=0)
    torch.testing.assert_close(x.std(-1, unbiased=False), torch.ones(x.shape[:2]), atol=1e-4, rtol=0)


def test_znormalize_leaves_a_constant_channel_at_zero() -> None:
    x = torch.stack([torch.full((1, 5), 3.0), torch.arange(5.0).view(1, 5)])
    out = znormalize(x)
    assert torch.equal(out[0], torch.zeros(1, 5))
    torch.testing.assert_close(out[1].std(unbiased=False), torch.tensor(1.0))


def test_labels_sorted_numerically_when_numbers_else_lexicographically() -> None:
    assert _label_order(np.array(["10", "2", "1", "2"])) == ["1", "2", "10"]
    assert _label_order(np.array(["walking", "badminton", "running"])) == ["badminton", "running", "walking"]
    assert load_ucr("BasicMotions").classes == ("badminton", "running", "standing", "walking")


@pytest.mark.parametrize(
    ("name", "channels", "longest"), [("JapaneseVowels", 12, 29), ("PickupGestureWiimoteZ", 1, 361)]
)
def test_unequal_lengths_resampled_to_the_longest(name: str, channels: int, longest: int) -> None:
    data = load_ucr(name)
    assert data.resampled
    raw_train, _ = load_classification(name, split="train")
    raw_test, _ = load_classification(name, split="test")
    assert max(s.shape[-1] for s in [*raw_train, *raw_test]) == longest
    assert data.train_x.shape == (len(raw_train), channels, longest)
    assert data.test_x.shape == (len(raw_test), channels, longest)
    # a series that already had the longest length is only z-normalised
    x, raw = (data.train_x, raw_train) if any(s.shape[-1] == longest for s in raw_train) else (data.test_x, raw_test)
    i = next(i for i, s in enumerate(raw) if s.shape[-1] == longest)
    ref = znormalize(torch.as_tensor(raw[i], dtype=torch.float32)[None])[0]
    torch.testing.assert_close(x[i], ref, atol=1e-5, rtol=0)


def test_length_resamples_every_series_to_it() -> None:
    native = load_ucr("ArrowHead", normalize=False)
    assert native.train_x.shape[-1] == 251 and not native.resampled
    short = load_ucr("ArrowHead", normalize=False, length=63)
    assert short.train_x.shape == (36, 1, 63) and short.test_x.shape == (175, 1, 63) and not short.resampled
    torch.testing.assert_close(short.train_x, resample(list(native.train_x.numpy()), 63))
    torch.testing.assert_close(short.test_x[:, :, [0, -1]], native.test_x[:, :, [0, -1]])  # endpoints kept
    assert torch.equal(short.train_y, native.train_y) and short.classes == native.classes
    longer = load_ucr("GunPoint", length=600)  # then z-normalised at the new length
    assert longer.train_x.shape == (50, 1, 600)
    torch.testing.assert_close(longer.train_x.std(-1), torch.ones(50, 1), atol=1e-3, rtol=0)
    torch.testing.assert_close(load_ucr("GunPoint", length=150).train_x, load_ucr("GunPoint").train_x)
    assert load_ucr("JapaneseVowels", length=40).resampled  # unequal lengths, each series resampled to 40


def test_detail_keeps_the_step_count_and_removes_the_fine_detail() -> None:
    native = load_ucr("ArrowHead", normalize=False)
    smooth = load_ucr("ArrowHead", normalize=False, detail=63)
    assert smooth.train_x.shape == native.train_x.shape == (36, 1, 251)
    coarse = resample(list(native.train_x.numpy()), 63)
    torch.testing.assert_close(smooth.train_x, resample(list(coarse.numpy()), 251))  # down to 63 steps and back
    torch.testing.assert_close(smooth.test_x[:, :, [0, -1]], native.test_x[:, :, [0, -1]])  # endpoints kept

    def high_frequency(x: torch.Tensor) -> torch.Tensor:  # energy above 63 steps' Nyquist (bin 31 of 251's)
        return torch.fft.rfft(x, dim=-1).abs()[..., 40:].pow(2).sum()

    assert high_frequency(smooth.train_x) < 0.2 * high_frequency(native.train_x)
    both = load_ucr("GunPoint", length=600, detail=150)  # length first, then the detail at that length
    assert both.train_x.shape == (50, 1, 600)
    with pytest.raises(ValueError, match="detail must be fewer steps than the series' 251, got 251"):
        load_ucr("ArrowHead", detail=251)


@pytest.mark.parametrize("length", [1, 0, 2.5, True, "63"])
def test_length_must_be_an_int_of_two_steps_or_more(length: object) -> None:
    with pytest.raises(ValueError, match="length must be an int of at least 2 steps"):
        load_ucr("GunPoint", length=length)  # type: ignore[arg-type]


def test_resample_is_linear_and_keeps_the_endpoints() -> None:
    ramp = np.linspace(0.0, 1.0, 4, dtype=np.float32)[None]  # 1 channel x 4 steps
    out = resample([ramp, np.zeros((1, 7), np.float32)], 7)
    torch.testing.assert_close(out[0, 0], torch.linspace(0.0, 1.0, 7))
    assert out.shape == (2, 1, 7)


def test_cubic_resampling_is_scipys_not_a_knot_spline_and_exact_on_a_cubic() -> None:
    from scipy.interpolate import interp1d

    steps = np.arange(6.0)
    cubic = np.stack([steps**3 - 2 * steps, np.sin(steps)]).astype(np.float32)  # 2 channels x 6 steps
    out = resample([cubic], 11, "cubic")[0]
    new = np.linspace(0, 5, 11)
    np.testing.assert_allclose(out[0].numpy(), new**3 - 2 * new, rtol=1e-5, atol=1e-4)  # a cubic is kept exactly
    np.testing.assert_allclose(out[1].numpy(), interp1d(steps, cubic[1], kind="cubic")(new), atol=1e-5)
    linear = resample([cubic], 11)[0]
    assert (linear[0] - out[0]).abs().max() > 1  # the linear one cuts the cubic's corners
    assert out[:, 0].tolist() == cubic[:, 0].tolist() and out[:, -1].tolist() == cubic[:, -1].tolist()


def test_resample_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match="4 steps or more, got one of 3"):
        resample([np.zeros((1, 3))], 8, "cubic")
    with pytest.raises(ValueError, match="interpolation must be one of"):
        resample([np.zeros((1, 3))], 8, "nearest")


def test_without_normalize_the_series_keep_their_levels() -> None:
    # JapaneseVowels as the review read it: the level of each cepstral channel is part of the speaker's signature
    data = load_ucr("JapaneseVowels", normalize=False, interpolation="cubic")
    raw, _ = load_classification("JapaneseVowels", split="test")  # the longest series (29 steps) are test series
    i = next(i for i, s in enumerate(raw) if s.shape[-1] == 29)  # already at the longest length: left as it is
    torch.testing.assert_close(data.test_x[i], torch.as_tensor(raw[i], dtype=torch.float32))
    # the channel levels alone name the speaker (nearest class centroid of the 12 means: 91 % of the test series,
    # chance 11 %); z-normalising per series sets every level to 0
    centroids = torch.stack([data.train_x.mean(-1)[data.train_y == k].mean(0) for k in range(9)])
    predicted = torch.cdist(data.test_x.mean(-1), centroids).argmin(1)
    assert (predicted == data.test_y).float().mean() > 0.85
    assert (load_ucr("JapaneseVowels").train_x.mean(-1).abs() < 1e-5).all()


def test_missing_aeon_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "aeon.datasets", None)
    with pytest.raises(MissingExtraError, match=r"pip install 'srblock\[timeseries\]'"):
        load_ucr("GunPoint")


def test_series_loader_keeps_the_last_small_batch_and_reshuffles_per_epoch() -> None:
    x, y = torch.randn(11, 2, 5), torch.arange(11)
    loader = SeriesLoader(x, y, 4, train=True, seed=3)
    assert len(loader) == 3
    loader.set_epoch(0)
    first = [labels for _, labels in loader]
    assert [len(b) for b in first] == [4, 4, 3] and sorted(torch.cat(first).tolist()) == list(range(11))
    loader.set_epoch(1)
    assert not torch.equal(torch.cat([b for _, b in loader]), torch.cat(first))
    loader.set_epoch(1, start_batch=2)
    assert [len(b) for _, b in loader] == [3]
    evaluation = SeriesLoader(x, y, 4, train=False)
    evaluation.set_epoch(0)
    assert torch.equal(torch.cat([b for _, b in evaluation]), y)


def test_series_loader_refuses_images() -> None:
    with pytest.raises(ValueError, match="float N x C x L"):
        SeriesLoader(torch.zeros(2, 1, 4, 4), torch.zeros(2), 1, train=False)
