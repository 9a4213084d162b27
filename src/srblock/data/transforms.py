"""Batched augmentation for in-memory uint8 images: random crop with padding, horizontal flip, normalisation.

Torch ops on a whole ``B x C x H x W`` uint8 batch at once (on whatever device the batch is on, a whole epoch at a
time in :class:`srblock.data.loader.InMemoryLoader`), so a 2-core machine spends its time in the model rather than in
per-image PIL calls and a GPU never waits for the host. The random draws come from a caller's ``torch.Generator``
(CPU), so augmentation is reproducible from the seed, the same on every device and however the epoch is sharded.

Beyond the paper's augmentation (zero padding, random flips), two options of the airbench recipes (Jordan 2024,
arXiv 2404.00498): reflect padding (airbench's "translate") and the alternating flip, which flips a random half of
the images in the first epoch and then exactly the other half in every odd epoch, so each image is seen in both
orientations every two epochs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

__all__ = ["CIFAR_MEAN", "CIFAR_STD", "FLIP_MODES", "PAD_MODES", "BatchAugment", "normalize"]

# Per-channel statistics of the CIFAR-10 training images (the usual values in torchvision-style recipes).
CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2470, 0.2435, 0.2616)

FLIP_MODES = (False, True, "alternate")
PAD_MODES = ("zeros", "reflect")


def normalize(
    images: torch.Tensor, mean: Sequence[float] | torch.Tensor, std: Sequence[float] | torch.Tensor
) -> torch.Tensor:
    """uint8 ``B x C x H x W`` → float32 ``(x / 255 - mean) / std``.

    ``mean``/``std`` as tensors on the images' device cost no host-to-device copy (which on CUDA waits for the queue
    to drain); :meth:`BatchAugment.normalize` keeps them so.
    """
    mean_t = torch.as_tensor(mean, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    std_t = torch.as_tensor(std, dtype=torch.float32, device=images.device).view(1, -1, 1, 1)
    return (images.float().div_(255.0) - mean_t).div_(std_t)


class BatchAugment:
    """Pad-and-crop, flip and normalise a uint8 batch (the paper's CIFAR augmentation, PAPER.md §3).

    Args:
        mean, std: per-channel normalisation (on the [0, 1] scale).
        crop_padding: padding on each side before the random crop back to the input size; 0 disables it.
        flip: ``True``: random horizontal flip with probability 1/2; ``False``: none (digits, text);
            ``"alternate"``: a random half in epoch 0, then each image in the other orientation than the epoch before.
        pad_mode: ``"zeros"`` (the paper's) or ``"reflect"`` (airbench's translate).

    ``params(n, generator, epoch=...)`` draws the per-sample crop offsets and flips; ``crop_flip(images, params)``
    applies them (uint8 in, uint8 out) and ``normalize`` scales, so a loader can draw and apply the parameters of a
    whole epoch at once and stay exact when it shards or resumes mid-epoch. ``apply`` is the two in one.

    >>> aug = BatchAugment(CIFAR_MEAN, CIFAR_STD, crop_padding=4, flip=True)
    >>> x = torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8)
    >>> aug.apply(x, aug.params(8, torch.Generator().manual_seed(0))).shape
    torch.Size([8, 3, 32, 32])
    """

    def __init__(
        self,
        mean: Sequence[float],
        std: Sequence[float],
        *,
        crop_padding: int = 4,
        flip: bool | str = True,
        pad_mode: str = "zeros",
    ) -> None:
        if isinstance(crop_padding, bool) or not isinstance(crop_padding, int) or crop_padding < 0:
            raise ValueError(f"crop_padding must be an int >= 0, got {crop_padding!r}")
        if flip not in FLIP_MODES:
            raise ValueError(f"flip must be one of {FLIP_MODES}, got {flip!r}")
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.mean, self.std = tuple(mean), tuple(std)
        self.crop_padding, self.flip, self.pad_mode = crop_padding, flip, pad_mode
        self._stats: dict[torch.device, tuple[torch.Tensor, torch.Tensor]] = {}  # mean, std on each device used

    def params(
        self, n: int, generator: torch.Generator, *, epoch: int = 0, flip_generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """``n x 3`` int64: crop offset y, crop offset x (in [0, 2·padding]), flip (0/1).

        ``flip="alternate"`` takes the flips of epoch 0 from ``flip_generator``, which the caller seeds the same in
        every epoch, and inverts them in odd epochs; ``generator`` draws everything else.
        """
        offsets = torch.randint(0, 2 * self.crop_padding + 1, (n, 2), generator=generator)
        flips = torch.randint(0, 2, (n, 1), generator=generator)
        if self.flip == "alternate":
            if flip_generator is None:
                raise ValueError("flip='alternate' needs flip_generator (seeded the same in every epoch)")
            flips = torch.randint(0, 2, (n, 1), generator=flip_generator) ^ (epoch % 2)
        elif not self.flip:
            flips.zero_()
        return torch.cat([offsets, flips], dim=1)

    def crop_flip(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Pad-and-crop and flip uint8 ``B x C x H x W`` ``images`` with ``params`` (of :meth:`params`, same device)."""
        b, c, h, w = images.shape
        if self.crop_padding:
            p = self.crop_padding
            padded = F.pad(images, (p, p, p, p), mode="reflect" if self.pad_mode == "reflect" else "constant")
            rows = (params[:, 0, None] + torch.arange(h, device=images.device)).view(b, 1, h, 1)
            cols = (params[:, 1, None] + torch.arange(w, device=images.device)).view(b, 1, 1, w)
            batch_idx = torch.arange(b, device=images.device).view(b, 1, 1, 1)
            chan_idx = torch.arange(c, device=images.device).view(1, c, 1, 1)
            images = padded[batch_idx, chan_idx, rows, cols]
        if self.flip:
            images = torch.where(params[:, 2].bool().view(b, 1, 1, 1), images.flip(3), images)
        return images

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """:func:`normalize` with this augmentation's statistics, kept on each device after its first use."""
        stats = self._stats.get(images.device)
        if stats is None:
            stats = self._stats[images.device] = (
                torch.tensor(self.mean, device=images.device),
                torch.tensor(self.std, device=images.device),
            )
        return normalize(images, *stats)

    def apply(self, images: torch.Tensor, params: torch.Tensor) -> torch.Tensor:
        """Augment and normalise ``images`` (uint8 ``B x C x H x W``) with ``params`` from :meth:`params`."""
        return self.normalize(self.crop_flip(images, params.to(images.device)))

    def __repr__(self) -> str:
        return f"BatchAugment(crop_padding={self.crop_padding}, flip={self.flip!r}, pad_mode={self.pad_mode!r})"
