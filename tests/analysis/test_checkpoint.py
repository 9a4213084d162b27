"""`srblock analyze` on checkpoints: one saved directly (fast) and one the engine trained for an epoch (slow)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from srblock.cli import main


def _write_npz(root):
    rng = np.random.default_rng(0)
    for split, n in (("train", 64), ("test", 40)):
        y = np.arange(n) % 4
        x = rng.integers(0, 120, size=(n, 32, 32, 3), dtype=np.uint8)
        x[np.arange(n), :, :, y % 3] += 100  # a learnable colour cue
        np.savez(root / f"{split}.npz", x=x, y=y)


def _config(root):
    return {
        "task": "classification",
        "data": {"dataset": "npz", "root": str(root), "val_fraction": 0.375},
        "model": {
            "name": "cifar_resnet18",
            "num_classes": 4,
            "sr_stage": 4,
            "num_memories": 3,
            "hidden": 4,
            "width": 0.125,
            "sr": {"memory_init": "normal"},
        },
        "optim": {"name": "sgd", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-4},
        "train": {"epochs": 1, "batch_size": 24, "device": "cpu", "log_interval": 100},
    }


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """A checkpoint written by the engine's own trainer (one epoch)."""
    from srblock.engine import train

    root = tmp_path_factory.mktemp("npz")
    _write_npz(root)
    run = tmp_path_factory.mktemp("run")
    train(_config(root), run)
    return run / "checkpoint_best.pt"


def test_cli_analyze_on_a_saved_checkpoint(tmp_path, capsys):
    """The checkpoint format of the brief (model state dict + resolved config), without training: fast."""
    from srblock.engine import build_model, resolve_config, save_checkpoint

    _write_npz(tmp_path)
    config = resolve_config(_config(tmp_path))
    save_checkpoint({"model": build_model(config).state_dict(), "config": config}, tmp_path / "ckpt.pt")
    argv = ["analyze", "--checkpoint", str(tmp_path / "ckpt.pt"), "--split", "val", "--per-class", "4"]
    assert main([*argv, "--max-images", "16", "--device", "cpu"]) == 0
    out = tmp_path / "analysis_val"
    result = json.loads((out / "analysis.json").read_text())
    assert result["num_images"] == 16
    assert result["blocks"]["layer4.sr"]["usage"]["max_abs_row_sum_error"] < 1e-5
    assert "wrote" in capsys.readouterr().out


def test_predict_checkpoint_gives_the_splits_labels_and_the_models_top1(tmp_path):
    from srblock.analysis.ablation import evaluate_accuracy
    from srblock.analysis.report import _split_loader, predict_checkpoint
    from srblock.engine import build_model, load_trained_model, resolve_config, save_checkpoint

    _write_npz(tmp_path)
    config = resolve_config(_config(tmp_path))
    torch.manual_seed(0)
    save_checkpoint({"model": build_model(config).state_dict(), "config": config}, tmp_path / "ckpt.pt")
    predictions, labels = predict_checkpoint(tmp_path / "ckpt.pt", split="test", device="cpu")
    assert labels.tolist() == np.load(tmp_path / "test.npz")["y"].tolist()  # the test split, in order
    model, _ = load_trained_model(tmp_path / "ckpt.pt")
    loader, _ = _split_loader(config, "test", None, "cpu")
    assert 100.0 * (predictions == labels).double().mean().item() == evaluate_accuracy(model, loader)["acc1"]
    assert predictions.shape == (40,) and predictions.dtype == torch.int64 and 0 <= predictions.min() <= 3
    with pytest.raises(ValueError, match="split must be 'val' or 'test', got 'train'"):
        predict_checkpoint(tmp_path / "ckpt.pt", split="train")


def test_predict_checkpoint_applies_the_recipes_test_time_augmentation(tmp_path, monkeypatch):
    from srblock.analysis.report import predict_checkpoint
    from srblock.engine import build_model, classification, load_trained_model, resolve_config, save_checkpoint
    from srblock.engine.classification import ClassificationTask, tta_logits
    from srblock.engine.distributed import DistInfo

    _write_npz(tmp_path)
    config = resolve_config(_config(tmp_path), ["data.tta=flip_translate"])
    torch.manual_seed(1)
    save_checkpoint({"model": build_model(config).state_dict(), "config": config}, tmp_path / "ckpt.pt")
    predictions, labels = predict_checkpoint(tmp_path / "ckpt.pt", split="test", device="cpu")
    task = ClassificationTask(config, DistInfo(), torch.device("cpu"))
    model, _ = load_trained_model(tmp_path / "ckpt.pt")
    with torch.no_grad():  # as the engine's evaluate() calls it
        engine_acc = task.evaluate(model, task.build_loaders().test)["acc1"]
    assert 100.0 * (predictions == labels).double().mean().item() == pytest.approx(engine_acc, abs=1e-9)
    modes = []

    def recording(model, images, mode):
        modes.append(mode)
        return tta_logits(model, images, mode)

    monkeypatch.setattr(classification, "tta_logits", recording)
    assert torch.equal(predict_checkpoint(tmp_path / "ckpt.pt", split="test", device="cpu")[0], predictions)
    assert modes and set(modes) == {"flip_translate"}  # every batch went through the recipe's augmentation


@pytest.mark.slow
def test_cli_analyze_writes_report_for_a_trained_checkpoint(checkpoint, tmp_path, capsys):
    out = tmp_path / "analysis"
    argv = ["analyze", "--checkpoint", str(checkpoint), "--split", "test", "--per-class", "5", "--output", str(out)]
    assert main([*argv, "--classes", "0", "2", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert "accuracy without SR" in printed and str(out / "report.md") in printed
    result = json.loads((out / "analysis.json").read_text())
    assert result["num_images"] == 40
    block = result["blocks"]["layer4.sr"]
    assert block["num_memories"] == 3
    assert [c["class"] for c in result["classes"]] == [0, 2]
    assert {"usage_layer4_sr.png", "memory_maps_layer4_sr.png", "features_layer4_sr.png", "report.md"} <= {
        p.name for p in out.iterdir()
    }


@pytest.mark.slow
def test_analyze_ablation_matches_the_engine_loading_without_sr(checkpoint, tmp_path):
    from srblock.analysis.ablation import evaluate_accuracy
    from srblock.analysis.report import _split_loader, analyze_checkpoint
    from srblock.engine import load_trained_model

    result = analyze_checkpoint(checkpoint, split="val", output_dir=tmp_path, per_class=3, device="cpu")
    plain, config = load_trained_model(checkpoint, no_sr=True)
    loader, _ = _split_loader(config, "val", None, "cpu")
    assert result["num_images"] == 24
    assert result["ablation"]["acc_no_sr"] == evaluate_accuracy(plain, loader)["acc1"]
