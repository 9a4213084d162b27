"""The segmentation task in the one engine: recipes, a CamVid run end to end, loss goes down, resume is exact."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from srblock.engine import load_config, train
from srblock.engine.distributed import DistInfo
from srblock.engine.segmentation import SegmentationTask
from srblock.engine.trainer import evaluate_checkpoint
from srblock.models import find_sr_blocks, list_models, register_model
from srblock.recipes import RECIPE_ROOT

RECIPES = sorted((RECIPE_ROOT / "cityscapes").glob("[!_]*.yaml")) + sorted((RECIPE_ROOT / "camvid").glob("[!_]*.yaml"))

# A CPU-sized miniature of the CamVid recipe: 32x48 crops, evaluation at 32x48 (one window per frame).
TINY = [
    "data.crop_size=[32, 48]",
    "data.base_size=[45, 60]",
    "data.eval_size=[32, 48]",
    "data.train_subset=4",
    "data.val_subset=2",
    "train.batch_size=2",
    "train.eval_batch_size=2",
    "train.log_interval=1000",
]


TINY_NET = "tiny_segnet_for_tests"


class _TinySegNet(torch.nn.Module):
    """torchvision's segmentation interface ({"out", "aux"} at input size) in a few convolutions, for fast runs."""

    def __init__(self, num_classes: int, aux_weight: float = 0.4) -> None:
        super().__init__()
        self.stem = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, stride=2, padding=1), torch.nn.BatchNorm2d(8))
        self.stage = torch.nn.Sequential(torch.nn.Conv2d(8, 8, 3, padding=1), torch.nn.ReLU())
        self.head = torch.nn.Conv2d(8, num_classes, 1)
        self.aux_head = torch.nn.Conv2d(8, num_classes, 1)
        self.aux_weight = aux_weight

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        features = self.stage(self.stem(x))
        size = x.shape[-2:]
        up = lambda t: torch.nn.functional.interpolate(t, size=size, mode="bilinear", align_corners=False)  # noqa: E731
        return {"out": up(self.head(features)), "aux": up(self.aux_head(features))}


if TINY_NET not in list_models():
    register_model(lambda num_classes, **kw: _TinySegNet(num_classes, **kw), name=TINY_NET, stages=("stem", "stage"))


@pytest.fixture(scope="module")
def camvid_root(shared_data) -> Path:
    return shared_data / "segmentation-sample" / "camvid"


@pytest.mark.parametrize("recipe", RECIPES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_recipes_parse_and_build(recipe):
    """Every recipe resolves; its model builds (on the meta device) with the SR memory sized from the crop."""
    config = load_config(recipe, ["model.backbone_weights=null"])
    assert config["task"] == "segmentation" and config["schedule"]["name"] == "poly"
    assert config["optim"]["lr"] == 0.01 and config["optim"]["weight_decay"] == 5e-4
    task = SegmentationTask(config, DistInfo(), torch.device("cpu"))
    with torch.device("meta"):
        model = task.build_model()
    blocks = find_sr_blocks(model)
    assert model.aux_weight == 0.4 and model.crop_size == tuple(config["data"]["crop_size"])
    if recipe.stem.endswith("_sr"):
        crop = config["data"]["crop_size"]
        expected = {"fcn_resnet50": 3, "deeplabv3_resnet50": 2}[config["model"]["name"]]
        assert [b.memory.shape for b in blocks.values()] == [(expected, 1024, crop[0] // 8, crop[1] // 8)]
    else:
        assert not blocks


def test_cityscapes_recipe_is_the_papers():
    config = load_config("cityscapes/deeplabv3_r50_sr")
    assert config["train"]["iterations"] == 80000 and config["train"]["eval_interval"] == 8000
    assert config["train"]["batch_size"] == 8 and config["train"]["sync_bn"]
    assert config["schedule"]["power"] == 0.9 and config["schedule"]["min_lr"] == 1e-4
    assert config["model"].get("input_size") in (None, [3, 512, 1024])
    assert config["data"]["crop_size"] == [512, 1024] and config["data"]["inference"] == "slide"


def test_crop_and_model_input_size_must_agree():
    config = load_config("camvid/fcn_r50_sr", ["model.input_size=[3, 64, 64]"])
    with pytest.raises(ValueError, match="crop_size"):
        SegmentationTask(config, DistInfo(), torch.device("cpu"))


def test_whole_inference_with_strict_sr_is_rejected_before_training():
    config = load_config("camvid/fcn_r50_sr", ["data.inference=whole"])
    task = SegmentationTask(config, DistInfo(), torch.device("cpu"))
    with torch.device("meta"), pytest.raises(ValueError, match=r"slide.*interpolate"):
        task.build_model()


def test_camvid_smoke_run(camvid_root, tmp_path):
    """Fast end-to-end check of the task in the engine (a tiny net with an SR block; the real ones run in the slow
    tests below): training steps, evaluation, checkpoints and a summary with mIoU."""
    config = load_config(
        "camvid/fcn_r50_sr",
        [
            f"data.root={camvid_root}",
            f"model.name={TINY_NET}",
            "model.sr_stage=2",
            "train.iterations=2",
            "train.eval_batch_size=1",
            "data.val_subset=1",
            "data.test_split=null",
            *TINY,
            "data.eval_size=[90, 120]",  # 4x4 overlapping windows, logits upsampled to the 360x480 labels
        ],
    )
    summary = train(config, tmp_path)
    assert 0 <= summary["best_val_miou"] <= 100 and summary["test_miou"] is None
    assert summary["sr_params"] > 0
    saved = json.loads((tmp_path / "summary.json").read_text())
    assert set(saved["val"]["iou"]) >= {"sky", "road", "car"}
    assert (tmp_path / "checkpoint_best.pt").is_file()


@pytest.mark.slow
def test_camvid_training_lowers_the_loss_and_reports_miou(camvid_root, tmp_path):
    config = load_config(
        "camvid/deeplabv3_r50_sr",
        [f"data.root={camvid_root}", "train.iterations=12", "train.eval_interval=4", "data.test_subset=2", *TINY],
    )
    summary = train(config, tmp_path)
    with (tmp_path / "metrics.csv").open() as f:
        rows = list(csv.DictReader(f))
    losses = [float(r["train_loss"]) for r in rows]
    assert len(losses) == 3 and losses[-1] < losses[0]
    assert 0 < summary["best_val_miou"] <= 100 and 0 < summary["test_miou"] <= 100
    # The checkpoint evaluates again through the engine, with and without the SR block (the paper's ablation).
    again = evaluate_checkpoint(tmp_path / "checkpoint_last.pt", split="test")
    assert again["miou"] == pytest.approx(summary["test_miou"], abs=1e-6)
    ablated = evaluate_checkpoint(tmp_path / "checkpoint_last.pt", split="test", no_sr=True)
    assert 0 <= ablated["miou"] <= 100


@pytest.mark.slow
def test_resume_is_exact(camvid_root, tmp_path):
    """2+2 iterations with a resume in between give the weights of 4 straight (the engine's checkpoints)."""
    config = load_config(
        "camvid/fcn_r50_sr",
        [f"data.root={camvid_root}", "train.iterations=4", "train.eval_interval=2", "data.test_split=null", *TINY],
    )
    train(config, tmp_path / "straight")
    train(config, tmp_path / "split", stop_after=1)
    train(config, tmp_path / "split", resume=True)
    a = torch.load(tmp_path / "straight" / "checkpoint_last.pt", weights_only=True)["model"]
    b = torch.load(tmp_path / "split" / "checkpoint_last.pt", weights_only=True)["model"]
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
