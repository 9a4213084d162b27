"""The loop end to end: run folder, exact resume, non-finite guard, the --no-sr ablation, real CIFAR-10."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

from srblock.engine import build_model, evaluate_checkpoint, load_checkpoint, load_config, train
from srblock.engine.classification import ClassificationTask
from srblock.engine.distributed import DistInfo
from srblock.engine.trainer import NonFiniteLossError

from ..conftest import JPEG_SLICE
from .conftest import tiny_config

SUMMARY_KEYS = {
    "best_val_acc",
    "best_epoch",
    "test_acc1",
    "test_acc5",
    "params",
    "sr_params",
    "wall_time_s",
    "torch_version",
    "cpu_threads",
    "seed",
    "config",
}
Run = tuple[Path, dict[str, Any]]


def test_two_epoch_run_writes_the_run_folder(finished_run: Run) -> None:
    out, summary = finished_run
    assert {p.name for p in out.iterdir()} >= {
        "config.yaml",
        "metrics.csv",
        "summary.json",
        "checkpoint_last.pt",
        "checkpoint_best.pt",
    }
    assert set(json.loads((out / "summary.json").read_text())) >= SUMMARY_KEYS
    assert summary["sr_params"] > 0 and summary["params"] > summary["sr_params"]
    assert summary["cpu_threads"] == torch.get_num_threads()  # the run trained in this process
    rows = list(csv.DictReader((out / "metrics.csv").open()))
    assert [float(r["epoch"]) for r in rows] == [1.0, 2.0]
    assert 0.0 <= summary["test_acc1"] <= 100.0 and summary["test"]["count"] == 32
    assert summary["val"]["count"] == 24  # 25 % of 96, stratified
    assert load_config(out / "config.yaml") == summary["config"]  # the resolved recipe reloads unchanged


def test_best_checkpoint_is_the_one_tested(finished_run: Run) -> None:
    out, summary = finished_run
    best = load_checkpoint(out / "checkpoint_best.pt")
    assert best["step"] == summary["best_step"]
    assert best["best_metric"] == max(r["val_acc1"] for r in best["history"])
    result = evaluate_checkpoint(out / "checkpoint_best.pt")
    assert result["acc1"] == pytest.approx(summary["test_acc1"])


def test_resume_is_bit_identical(tiny_data: Path, finished_run: Run, tmp_path: Path) -> None:
    straight_dir, straight = finished_run
    config = tiny_config(tiny_data)
    partial = train(config, tmp_path / "resumed", stop_after=1, quiet=True)
    assert partial["epoch"] == 1.0 and not (tmp_path / "resumed" / "summary.json").exists()
    resumed = train(config, tmp_path / "resumed", resume=True, quiet=True)
    a = load_checkpoint(straight_dir / "checkpoint_last.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint_last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    assert a["history"][-1]["val_acc1"] == b["history"][-1]["val_acc1"]
    assert straight["test_acc1"] == resumed["test_acc1"]
    assert len(list(csv.DictReader((tmp_path / "resumed" / "metrics.csv").open()))) == 2


def test_existing_run_needs_resume(tiny_data: Path, finished_run: Run) -> None:
    with pytest.raises(FileExistsError, match="resume"):
        train(tiny_config(tiny_data), finished_run[0], quiet=True)


def test_non_finite_loss_stops_and_keeps_last_checkpoint(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "run"
    train(tiny_config(tiny_data), out, stop_after=1, quiet=True)
    before = load_checkpoint(out / "checkpoint_last.pt")
    original = ClassificationTask.loss

    def exploding(self, model, batch):
        loss, logs = original(self, model, batch)
        return loss * float("inf"), logs

    monkeypatch.setattr(ClassificationTask, "loss", exploding)
    with pytest.raises(NonFiniteLossError, match=r"non-finite training loss.*checkpoint_last.pt \(iteration 3\)"):
        train(tiny_config(tiny_data), out, resume=True, quiet=True)
    after = load_checkpoint(out / "checkpoint_last.pt")
    assert after["step"] == before["step"] == 3
    for key, value in before["model"].items():
        assert torch.equal(value, after["model"][key]), key


def test_no_sr_eval_equals_model_built_without_sr(finished_run: Run) -> None:
    out, _ = finished_run
    ablation = evaluate_checkpoint(out / "checkpoint_best.pt", no_sr=True, device="cpu")
    state = load_checkpoint(out / "checkpoint_best.pt")
    config = json.loads(json.dumps(state["config"]))
    config["model"]["sr_stage"] = None
    plain = build_model(config)
    kept = {k: v for k, v in state["model"].items() if k in plain.state_dict()}
    assert set(plain.state_dict()) == set(kept)  # every weight but the SR block's carries over
    assert set(state["model"]) - set(kept)  # ... and the SR block had some
    plain.load_state_dict(kept)
    plain.eval()
    task = ClassificationTask(state["config"], DistInfo(), torch.device("cpu"))
    with torch.no_grad():
        expected = task.evaluate(plain, task.build_loaders().test)
    assert ablation["acc1"] == pytest.approx(expected["acc1"])
    assert ablation["loss"] == pytest.approx(expected["loss"], rel=1e-5)
    assert ablation["count"] == 32 and ablation["no_sr"]


def test_iteration_counted_run_with_eval_interval(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data, epochs=None, iterations=5, eval_interval=2)
    config["schedule"] = {"name": "poly", "power": 0.9, "min_lr": 1e-4}
    summary = train(config, tmp_path / "run", quiet=True)
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    assert [int(r["step"]) for r in rows] == [2, 4, 5]
    assert summary["steps"] == 5


def test_real_cifar10_smoke(shared_data: Path, tmp_path: Path) -> None:
    overrides = [
        "train.epochs=1",
        "data.train_subset=256",
        "data.val_subset=128",
        "data.test_subset=128",
        "model.width=0.125",
        "train.batch_size=64",
    ]
    config = load_config("cifar10/r18_d2d_sr", [f"data.root={shared_data / 'cifar10'}", *overrides])
    summary = train(config, tmp_path / "run", quiet=True)
    assert summary["test"]["count"] == 128 and summary["val"]["count"] == 128
    assert summary["sr_params"] > 0


def test_cifar10_recipe_trains_from_a_folder_holding_only_the_jpeg_archive(
    cifar10_jpeg_slice: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from srblock.data import cifar

    data = tmp_path / "data"
    data.mkdir()
    archive = shutil.copy(cifar10_jpeg_slice, data / "cifar10-jpeg.tar.xz")
    monkeypatch.setitem(
        cifar.JPEG_ARCHIVES, "cifar10", (archive.name, hashlib.sha256(archive.read_bytes()).hexdigest())
    )
    overrides = ["train.epochs=1", "model.width=0.125", "train.batch_size=32", "train.device=cpu"]
    summary = train(load_config("cifar10/r18_d2d_sr", [f"data.root={data}", *overrides]), tmp_path / "run", quiet=True)
    assert summary["steps"] == 3 and summary["test"]["count"] == 10 * JPEG_SLICE  # 72 train images, batch 32
    assert {p.name for p in data.iterdir()} == {"cifar10-jpeg.tar.xz", "train.npz", "test.npz"}


def test_bf16_autocast_and_channels_last_run(tiny_data: Path, tmp_path: Path) -> None:
    summary = train(tiny_config(tiny_data, epochs=1, amp="bf16", channels_last=True), tmp_path / "run", quiet=True)
    assert summary["test"]["count"] == 32 and 0.0 <= summary["test_acc1"] <= 100.0
    assert all(
        v.dtype != torch.bfloat16 for v in load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")["model"].values()
    )


def test_tf32_setting_holds_for_the_run_and_is_put_back(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``train.tf32: false`` (strict fp32 on a TF32 GPU) sets torch's two switches for the run and its test, and the
    process gets its own back; ``null`` leaves them alone."""
    import srblock.engine.trainer as trainer

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    before = (cudnn.allow_tf32, matmul.allow_tf32)
    seen: list[tuple[bool, bool]] = []
    real_evaluate = trainer.evaluate

    def evaluate(*args: Any, **kwargs: Any) -> dict[str, Any]:
        seen.append((cudnn.allow_tf32, matmul.allow_tf32))
        return real_evaluate(*args, **kwargs)

    monkeypatch.setattr(trainer, "evaluate", evaluate)
    summary = train(tiny_config(tiny_data, epochs=1, tf32=False), tmp_path / "strict", quiet=True)
    assert summary["config"]["train"]["tf32"] is False
    assert seen and set(seen) == {(False, False)} and (cudnn.allow_tf32, matmul.allow_tf32) == before
    seen.clear()
    evaluate_checkpoint(tmp_path / "strict" / "checkpoint_last.pt")
    assert seen == [(False, False)] and (cudnn.allow_tf32, matmul.allow_tf32) == before
    seen.clear()
    train(tiny_config(tiny_data, epochs=1), tmp_path / "default", quiet=True)
    assert set(seen) == {before}


@pytest.mark.slow
@pytest.mark.parametrize("mode", [True, "reduce-overhead"])  # CUDA graphs fall back to plain compilation on CPU
def test_torch_compile_run(tiny_data: Path, tmp_path: Path, mode: bool | str) -> None:
    summary = train(tiny_config(tiny_data, epochs=1, compile=mode), tmp_path / "run", quiet=True)
    assert summary["test"]["count"] == 32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize(("amp", "channels_last"), [("bf16", True), ("fp16", False)])
def test_cuda_mixed_precision_run_and_resume(tiny_data: Path, tmp_path: Path, amp: str, channels_last: bool) -> None:
    config = tiny_config(tiny_data, device="cuda", amp=amp, channels_last=channels_last)
    assert train(config, tmp_path / "run", stop_after=1, quiet=True)["epoch"] == 1.0
    summary = train(config, tmp_path / "run", resume=True, quiet=True)
    assert summary["device"].startswith("cuda") and summary["test"]["count"] == 32
    state = load_checkpoint(tmp_path / "run" / "checkpoint_last.pt")
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_train_steps_sync_only_at_the_period_end(tiny_data: Path, tmp_path: Path) -> None:
    from srblock.engine.config import resolve_config
    from srblock.engine.trainer import _batches, _Run, train_steps

    config = resolve_config(tiny_config(tiny_data, device="cuda", log_interval=1000))
    run = _Run(config, tmp_path, DistInfo(), torch.device("cuda"), quiet=True)
    batches = _batches(run.loaders.train, 0, run.steps_per_epoch)
    common = {"total_steps": 100, "autocast": run.autocast, "logger": run.logger, "log_interval": 1000}
    args = (run.task, run.train_model, run.optimizer, run.scheduler, run.scaler, batches)
    train_steps(*args, start=0, end=2, check_every_step=False, **common)  # lazy initialisation may sync
    torch.cuda.set_sync_debug_mode("error")
    try:  # 7 steps over an epoch boundary; the first sync is the finiteness check after the last one
        with pytest.raises(RuntimeError, match="synchroniz"):
            train_steps(*args, start=2, end=9, check_every_step=False, **common)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    assert run.scheduler.last_epoch == 9
