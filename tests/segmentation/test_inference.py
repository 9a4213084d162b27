"""Slide and whole inference: equal where they must be, and a clear error for strict SR at another size."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.engine.segmentation import segment, slide_inference, whole_inference
from srblock.layers import SRBlock


def _pixelwise(num_classes: int = 4) -> nn.Module:
    """A model whose logits at a pixel depend on that pixel only: sliding windows cannot change them."""
    return nn.Sequential(nn.Conv2d(3, 8, 1), nn.ReLU(), nn.Conv2d(8, num_classes, 1)).eval()


class _Dict(nn.Module):
    """Wraps a model to return torchvision's ``{"out": logits}``."""

    def __init__(self, body: nn.Module) -> None:
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"out": self.body(x)}


@pytest.mark.parametrize("size", [(32, 48), (64, 96), (20, 30), (40, 50)])
def test_slide_equals_whole_without_sr(size):
    """Overlapping windows (default stride 2/3), several windows and an image smaller than the window (padded)."""
    model = _Dict(_pixelwise())
    images = torch.randn(2, 3, *size)
    whole = whole_inference(model, images)
    slide = slide_inference(model, images, crop_size=(32, 48))
    assert slide.shape == whole.shape == (2, 4, *size)
    torch.testing.assert_close(slide, whole, rtol=1e-5, atol=1e-5)


def test_slide_equals_whole_for_a_conv_net_on_one_window():
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 5, 3, padding=1)).eval()
    images = torch.randn(1, 3, 16, 24)
    torch.testing.assert_close(segment(model, images, crop_size=(16, 24)), segment(model, images, mode="whole"))


def _strict_sr_model(crop=(16, 24), policy="strict") -> nn.Module:
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), SRBlock(8, crop, num_memories=2, hidden=4, size_policy=policy))
    model.append(nn.Conv2d(8, 5, 1))
    model.crop_size = crop
    return model.eval()


def test_whole_with_strict_sr_at_another_size_names_both_sizes_and_the_fixes():
    model = _strict_sr_model()
    with pytest.raises(ValueError, match=r"\(32, 48\).*\(16, 24\).*slide.*interpolate"):
        segment(model, torch.randn(1, 3, 32, 48), mode="whole")
    del model.crop_size  # without a known crop the SR block's own error is translated
    with pytest.raises(ValueError, match=r"\(32, 48\).*slide.*interpolate"):
        whole_inference(model, torch.randn(1, 3, 32, 48))


def test_slide_keeps_strict_sr_working_and_whole_needs_interpolate():
    images = torch.randn(1, 3, 32, 40)
    assert segment(_strict_sr_model(), images).shape == (1, 5, 32, 40)
    assert segment(_strict_sr_model(policy="interpolate"), images, mode="whole").shape == (1, 5, 32, 40)


def test_unknown_mode_and_missing_crop_are_errors():
    with pytest.raises(ValueError, match="slide"):
        segment(_pixelwise(), torch.randn(1, 3, 8, 8), mode="tiles")
    with pytest.raises(ValueError, match="crop_size"):
        segment(_pixelwise(), torch.randn(1, 3, 8, 8))
