"""Segmentation inference with a model whose SR memory has the size of the training crop: slide or whole image.

A strict SR model sees only inputs of the crop size. ``slide`` (default) runs windows of the training crop over the
image, overlapping by a stride, and averages the logits; ``whole`` runs the full image once and needs
``size_policy="interpolate"`` or no SR.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..layers.sr import find_sr_blocks

__all__ = ["INFERENCE_MODES", "segment", "slide_inference", "whole_inference"]

INFERENCE_MODES = ("slide", "whole")


def _logits(output: torch.Tensor | dict[str, torch.Tensor]) -> torch.Tensor:
    return output["out"] if isinstance(output, dict) else output


def _strict_sr_blocks(model: nn.Module) -> list[str]:
    return [name for name, block in find_sr_blocks(model).items() if block.size_policy == "strict"]


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    pair = (int(value), int(value)) if isinstance(value, int) else tuple(int(v) for v in value)
    if len(pair) != 2 or min(pair) <= 0:
        raise ValueError(f"{name} must be a positive int or (H, W), got {value!r}")
    return pair  # type: ignore[return-value]


@torch.no_grad()
def slide_inference(
    model: nn.Module,
    images: torch.Tensor,
    crop_size: int | Sequence[int],
    stride: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Logits ``B x K x H x W`` (float32) from windows of ``crop_size`` moved by ``stride``, overlaps averaged.

    The default stride is 2/3 of the crop (mmsegmentation's 341x683 for a 512x1024 crop). An image smaller than the
    window is zero-padded (the mean colour after normalisation) and the padding cropped off the logits, so every
    forward pass sees exactly the crop size and a strict SR block keeps working.
    """
    ch, cw = _pair(crop_size, "crop_size")
    sh, sw = _pair(stride, "stride") if stride is not None else (math.ceil(ch * 2 / 3), math.ceil(cw * 2 / 3))
    batch, _, height, width = images.shape
    padded = F.pad(images, (0, max(cw - width, 0), 0, max(ch - height, 0)))
    ph, pw = padded.shape[-2:]
    rows = max(ph - ch + sh - 1, 0) // sh + 1
    cols = max(pw - cw + sw - 1, 0) // sw + 1
    logits: torch.Tensor | None = None
    count = torch.zeros(1, 1, ph, pw, device=images.device)
    for r in range(rows):
        for c in range(cols):
            y1, x1 = min(r * sh, ph - ch), min(c * sw, pw - cw)
            out = _logits(model(padded[..., y1 : y1 + ch, x1 : x1 + cw])).float()  # sum in fp32 under autocast
            if logits is None:
                logits = out.new_zeros(batch, out.shape[1], ph, pw)
            logits[..., y1 : y1 + ch, x1 : x1 + cw] += out
            count[..., y1 : y1 + ch, x1 : x1 + cw] += 1
    assert logits is not None
    return (logits / count)[..., :height, :width]


@torch.no_grad()
def whole_inference(
    model: nn.Module, images: torch.Tensor, crop_size: int | Sequence[int] | None = None
) -> torch.Tensor:
    """Logits ``B x K x H x W`` from one forward pass over the whole image.

    A model with a strict SR block accepts only its training crop size; asked for another size this raises a
    ``ValueError`` naming both sizes and the two fixes (slide inference, or ``size_policy="interpolate"``).
    """
    size = tuple(images.shape[-2:])
    crop = _pair(crop_size, "crop_size") if crop_size is not None else getattr(model, "crop_size", None)
    strict = _strict_sr_blocks(model)

    def _error() -> ValueError:
        built = f"the training crop {tuple(crop)}" if crop is not None else "its training crop"
        return ValueError(
            f"whole-image inference on {size} is impossible: the model has strict SR block(s) {strict} built for "
            f"{built}. Use mode='slide' (windows of the crop size), or build/train the model with "
            "sr_kwargs={'size_policy': 'interpolate'}."
        )

    if strict and crop is not None and size != tuple(crop):
        raise _error()
    try:
        return _logits(model(images))
    except ValueError as err:
        if strict and "was built for spatial size" in str(err):
            raise _error() from err
        raise


def segment(
    model: nn.Module,
    images: torch.Tensor,
    *,
    mode: str = "slide",
    crop_size: int | Sequence[int] | None = None,
    stride: int | Sequence[int] | None = None,
) -> torch.Tensor:
    """Logits ``B x K x H x W`` for normalised ``images`` (B x 3 x H x W) by ``slide`` (default) or ``whole``.

    ``crop_size`` defaults to ``model.crop_size`` (set by the segmentation models of the zoo).

    >>> logits = segment(model, images, mode="slide", crop_size=(512, 1024))  # doctest: +SKIP
    """
    if mode not in INFERENCE_MODES:
        raise ValueError(f"inference mode must be one of {INFERENCE_MODES}, got {mode!r}")
    crop = crop_size if crop_size is not None else getattr(model, "crop_size", None)
    if mode == "whole":
        return whole_inference(model, images, crop)
    if crop is None:
        raise ValueError("slide inference needs crop_size (the training crop), e.g. crop_size=(512, 1024)")
    return slide_inference(model, images, crop, stride)
