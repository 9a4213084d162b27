"""The classification options of the fast recipes: TTA, label smoothing, data-initialised models, triangle LR."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from srblock.data.transforms import CIFAR_MEAN, CIFAR_STD, normalize
from srblock.engine import load_config, train
from srblock.engine.classification import ClassificationTask, tta_logits
from srblock.engine.config import ENGINE_DEFAULTS, resolve_config
from srblock.engine.distributed import DistInfo
from srblock.engine.optim import build_scheduler
from srblock.models.airbench import PatchWhitening

from .conftest import tiny_config, write_npz


class CentrePixel(nn.Module):
    """Logits = the first channel at the centre pixel and one pixel left of it: shows which view the model saw."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x[:, 0, 4, 4], x[:, 0, 4, 3]], dim=1)


def test_flip_tta_is_invariant_to_mirroring_the_input() -> None:
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.LazyLinear(5))
    x = torch.randn(3, 3, 8, 8)
    model(x)
    assert not torch.allclose(model(x), model(x.flip(3)))
    assert torch.allclose(tta_logits(model, x, "flip"), tta_logits(model, x.flip(3), "flip"), atol=1e-6)
    assert torch.equal(tta_logits(model, x, None), model(x))


def test_flip_translate_tta_averages_airbenchs_six_views() -> None:
    x = torch.arange(64.0).view(1, 1, 8, 8).expand(1, 3, 8, 8)
    pixel = x[0, 0]
    # mirror: column c -> 7 - c; the view shifted to the top-left reads (r - 1, c - 1), bottom-right (r + 1, c + 1)
    plain = (pixel[4, 4] + pixel[4, 3]) / 2, (pixel[4, 3] + pixel[4, 4]) / 2
    up_left = (pixel[3, 3] + pixel[3, 4]) / 2, (pixel[3, 2] + pixel[3, 5]) / 2
    down_right = (pixel[5, 5] + pixel[5, 2]) / 2, (pixel[5, 4] + pixel[5, 3]) / 2
    expected = [0.5 * p + 0.25 * u + 0.25 * d for p, u, d in zip(plain, up_left, down_right, strict=True)]
    assert torch.allclose(tta_logits(CentrePixel(), x, "flip_translate")[0], torch.tensor(expected))
    edge = tta_logits(lambda v: v[:, 0, 0, :2], x, "flip_translate")  # the border reflects, never reads zeros
    assert edge.min() > 0
    with pytest.raises(ValueError, match="tta must be one of"):
        tta_logits(CentrePixel(), x, "five_crop")


def test_label_smoothing_reaches_the_training_loss(tiny_data: Path) -> None:
    logits = torch.tensor([[30.0, 0.0, 0.0, 0.0]])

    def loss(smoothing: float) -> float:
        config = resolve_config(tiny_config(tiny_data, label_smoothing=smoothing))
        task = ClassificationTask(config, DistInfo(), torch.device("cpu"))
        return float(task.loss(lambda _x: logits, (torch.zeros(1, 3, 8, 8), torch.tensor([0])))[0])

    assert loss(0.0) < 1e-6
    assert loss(0.2) == pytest.approx(-(0.85 * -0.0 + 0.05 * 3 * -30.0), rel=1e-4)  # 0.2 spread over 4 classes


def _mix_task(tiny_data: Path, seed: int = 0, **train: float) -> ClassificationTask:
    config = resolve_config({**tiny_config(tiny_data, **train), "seed": seed})
    return ClassificationTask(config, DistInfo(), torch.device("cpu"))


def _mixed(task: ClassificationTask, progress: float) -> tuple[torch.Tensor, torch.Tensor]:
    images = torch.arange(6.0).view(6, 1, 1, 1).expand(6, 3, 8, 8).contiguous()  # image i is the constant i
    task.on_train_step(nn.Identity(), progress)
    return task.mix(images, torch.arange(6) % 4)


def test_mixup_mixes_each_image_with_its_neighbour_and_the_targets_alike(tiny_data: Path) -> None:
    images, targets = _mixed(_mix_task(tiny_data, mixup_alpha=0.4), 0.25)
    lam = float(targets[1, 1])  # image 1 (class 1) mixed with image 0 (class 0)
    assert 0 < 1 - lam < 1 and targets.shape == (6, 4)
    torch.testing.assert_close(targets.sum(1), torch.ones(6))
    torch.testing.assert_close(images[1], torch.full((3, 8, 8), lam * 1 + (1 - lam) * 0))
    torch.testing.assert_close(images[5], torch.full((3, 8, 8), lam * 5 + (1 - lam) * 4))
    assert float(targets[5, 1]) == pytest.approx(lam) and float(targets[5, 0]) == pytest.approx(1 - lam)


def test_cutmix_pastes_a_box_and_mixes_the_targets_by_its_area(tiny_data: Path) -> None:
    images, targets = _mixed(_mix_task(tiny_data, cutmix_alpha=1.0), 0.5)
    pasted = float((images[2] == 1).float().mean())  # the share of image 2 that now shows image 1
    assert set(images[2].unique().tolist()) <= {1.0, 2.0}
    assert float(targets[2, 1]) == pytest.approx(pasted) and float(targets[2, 2]) == pytest.approx(1 - pasted)


def test_mix_draws_are_seeded_by_seed_and_step_and_leave_the_global_stream(tiny_data: Path) -> None:
    both = {"mixup_alpha": 0.4, "cutmix_alpha": 1.0}
    first = _mixed(_mix_task(tiny_data, **both), 0.125)
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    again = _mixed(_mix_task(tiny_data, **both), 0.125)  # another arm's task, same seed and step: same draws
    assert torch.equal(torch.rand(3), expected)  # dropout's generator did not move
    assert all(torch.equal(a, b) for a, b in zip(first, again, strict=True))
    other_step = [_mixed(_mix_task(tiny_data, **both), p)[1] for p in (0.25, 0.375, 0.5)]
    other_seed = _mixed(_mix_task(tiny_data, seed=1, **both), 0.125)[1]
    assert not all(torch.equal(t, first[1]) for t in (*other_step, other_seed))
    task = _mix_task(tiny_data)
    assert _mixed(task, 0.0)[1].dim() == 1  # both alphas 0: hard targets, the batch as it was


def test_mixed_targets_reach_the_training_loss(tiny_data: Path) -> None:
    task = _mix_task(tiny_data, mixup_alpha=0.4)
    task.on_train_step(nn.Identity(), 0.25)
    logits = torch.randn(6, 4)
    _, soft = _mixed(_mix_task(tiny_data, mixup_alpha=0.4), 0.25)
    loss, logs = task.loss(
        lambda _x: logits, (torch.arange(6.0).view(6, 1, 1, 1).expand(6, 3, 8, 8), torch.arange(6) % 4)
    )
    torch.testing.assert_close(loss, -(soft * logits.log_softmax(1)).sum(1).mean())
    assert float(logs["acc1"]) == pytest.approx(100 * float((logits.argmax(1) == soft.argmax(1)).float().mean()))


def test_a_mixed_run_trains_and_resumes_exactly(tiny_data: Path, tmp_path: Path) -> None:
    config = tiny_config(tiny_data, mixup_alpha=0.4, cutmix_alpha=1.0, label_smoothing=0.1)
    straight = train(config, tmp_path / "straight", quiet=True)
    train(config, tmp_path / "resumed", stop_after=1, quiet=True)
    resumed = train(config, tmp_path / "resumed", resume=True, quiet=True)
    assert resumed["test"]["loss"] == straight["test"]["loss"]  # the resumed steps drew the same mixes
    plain = train(tiny_config(tiny_data, label_smoothing=0.1), tmp_path / "plain", quiet=True)
    assert plain["test"]["loss"] != straight["test"]["loss"]


def test_task_options_are_validated(tiny_data: Path) -> None:
    config = tiny_config(tiny_data)
    for override, match in [
        ("train.label_smoothing=1.5", "label_smoothing must be a number in"),
        ("train.label_smoothng=0.1", "did you mean 'label_smoothing'"),
        ("train.mixup_alpha=-0.2", "mixup_alpha must be a number >= 0"),
        ("train.cutmix_alpha=true", "cutmix_alpha must be a number >= 0"),
        ("train.mixup_switch_prob=1.5", r"mixup_switch_prob must be a number in \[0, 1\]"),
        ("data.tta=five_crop", "data.tta must be one of"),
        ("data.flip=sometimes", "data.flip must be one of"),
        ("data.pad_mode=edge", "data.pad_mode must be one of"),
        ("data.init_images=-1", "data.init_images must be an int >= 0"),
        ("data.init_sample=last", "data.init_sample must be one of"),
        ("data.split_seed=-3", "data.split_seed must be null or an int >= 0"),
        ("optim.lookahead={every: 0}", "optim.lookahead needs"),
        ("optim.lookahead={speed: 1}", "unknown key"),
        ("schedule.name=piecewise", "schedule.points must be"),
        ("schedule.points=[[0, 1], [0.5, 2]]", None),  # only checked for the piecewise schedule
    ]:
        if match is None:
            resolve_config(config, [override])
            continue
        with pytest.raises(ValueError, match=match):
            resolve_config(config, [override, "schedule.points=[]"] if "piecewise" in override else [override])
    seg = {"task": "segmentation", "model": {"name": "fcn_resnet50"}, "optim": {"lr": 0.01}, "train": {"iterations": 1}}
    with pytest.raises(ValueError, match=r"unknown key train\.label_smoothing"):
        resolve_config(seg, ["train.label_smoothing=0.1"])  # classification's own key only


def test_piecewise_schedule_is_linear_between_its_points() -> None:
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=2.0)
    schedule = {**ENGINE_DEFAULTS["schedule"], "name": "piecewise", "points": [[0, 0.2], [0.25, 1.0], [1, 0.0]]}
    scheduler = build_scheduler(optimizer, schedule, steps_per_unit=1, total_steps=100)
    lrs = []
    for _ in range(101):
        lrs.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert lrs[0] == pytest.approx(0.4) and lrs[25] == pytest.approx(2.0) and lrs[100] == pytest.approx(0.0)
    assert lrs[10] == pytest.approx(2.0 * (0.2 + 0.8 * 10 / 25)) and lrs[50] == pytest.approx(2.0 * 50 / 75)


def airbench_tiny_config(root: Path, **train_options) -> dict:
    config = tiny_config(root, **train_options)
    config["model"] = {"name": "cifar_airbench", "num_classes": 4, "width": 0.125, "input_size": [3, 16, 16]}
    config["data"].update(crop_padding=2, pad_mode="reflect", flip="alternate", tta="flip_translate", init_images=20)
    return config


def test_split_seed_fixes_the_train_val_split_across_run_seeds(tiny_data: Path) -> None:
    def split(seed: int, split_seed: int | None) -> list[list[int]]:
        config = resolve_config(
            {**tiny_config(tiny_data), "seed": seed},
            [f"data.split_seed={'null' if split_seed is None else split_seed}"],
        )
        return [idx.tolist() for idx in ClassificationTask(config, DistInfo(), torch.device("cpu"))._split()]

    assert split(0, None) != split(1, None)  # the default: each seed holds out other images
    assert split(0, 7) == split(1, 7) == split(2, 7) != split(0, None)
    assert split(3, 3) == split(3, None)  # the run's own seed is the default
    assert sorted(split(1, 7)[0] + split(1, 7)[1]) == list(range(96))  # still a partition of the training set


def test_task_initialises_a_data_dependent_model_from_the_training_split(tmp_path: Path) -> None:
    root = write_npz(tmp_path / "data", size=16)
    config = resolve_config(airbench_tiny_config(root))
    task = ClassificationTask(config, DistInfo(), torch.device("cpu"))
    model = task.build_model()
    images = task._arrays()[0][task._split()[0][:20]]
    expected = PatchWhitening(3, 2)
    expected.init_from_data(normalize(images, CIFAR_MEAN, CIFAR_STD))
    assert torch.equal(model.whiten.weight, expected.weight) and model.whiten.weight.abs().sum() > 0
    config["data"]["init_images"] = 0  # off: the whitening stays zero
    assert ClassificationTask(config, DistInfo(), torch.device("cpu")).build_model().whiten.weight.abs().sum() == 0


def test_random_init_sample_sees_every_class_of_a_class_sorted_training_set(tmp_path: Path) -> None:
    # ../shared's CIFAR-10 is sorted by class: its first 5000 training images are all airplanes, and airbench's
    # whitening fitted on them misfits every other class (the cause of part of the airbench gap, see airbench.yaml)
    root = write_npz(tmp_path / "data", num_train=400, size=16)
    with np.load(root / "train.npz") as arrays:
        order = np.argsort(arrays["y"], kind="stable")
        np.savez(root / "train.npz", x=arrays["x"][order], y=arrays["y"][order])
    config = resolve_config(airbench_tiny_config(root), ["data.init_images=40"])
    labels = ClassificationTask(config, DistInfo(), torch.device("cpu"))._arrays()[1]

    def classes(sample: str, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        task = ClassificationTask(
            {**config, "seed": seed, "data": {**config["data"], "init_sample": sample}}, DistInfo(), "cpu"
        )
        indices = task.init_indices()
        assert len(indices) == 40 and len(set(indices.tolist())) == 40
        assert set(indices.tolist()) <= set(task._split()[0].tolist())  # training images only
        return labels[indices].unique(), indices

    assert classes("first")[0].tolist() == [0]  # the old behaviour, kept for runs saved before init_sample
    assert classes("random")[0].tolist() == [0, 1, 2, 3]
    assert torch.equal(classes("random")[1], classes("random")[1])  # seeded: the arms of one seed share it
    assert not torch.equal(classes("random")[1], classes("random", seed=1)[1])
    assert load_config("cifar10/airbench")["data"]["init_sample"] == "random"


def test_airbench_options_train_end_to_end_and_resume_exactly(tmp_path: Path) -> None:
    root = write_npz(tmp_path / "data", size=16)
    config = airbench_tiny_config(root, label_smoothing=0.2)
    config["optim"].update(nesterov=True, lookahead={"start": 0.0, "every": 2})
    config["schedule"] = {"name": "piecewise", "points": [[0, 0.2], [0.23, 1.0], [1, 0.07]]}
    straight = train(config, tmp_path / "straight", quiet=True)
    assert straight["test"]["count"] == 32 and 0 <= straight["test_acc1"] <= 100
    train(config, tmp_path / "resumed", stop_after=1, quiet=True)
    resumed = train(config, tmp_path / "resumed", resume=True, quiet=True)
    assert resumed["test_acc1"] == straight["test_acc1"] and resumed["test"]["loss"] == straight["test"]["loss"]


def test_fast_recipes_train_a_few_steps_on_a_cifar10_slice(shared_data: Path, tmp_path: Path) -> None:
    small = ["data.train_subset=256", "data.test_subset=128", "train.batch_size=64", "train.epochs=1"]
    for name in ("cifar10/airbench_sr", "cifar10/r18_d2d_fast_sr"):
        width = "model.width=0.125"
        config = load_config(name, [f"data.root={shared_data / 'cifar10'}", width, *small, "data.init_images=64"])
        summary = train(config, tmp_path / name.replace("/", "_"), quiet=True)
        assert summary["test"]["count"] == 128 and summary["sr_params"] > 0 and summary["val"] is None


def test_a_config_saved_before_these_options_existed_still_runs(tiny_data: Path) -> None:
    config = resolve_config(tiny_config(tiny_data))
    for key in ("pad_mode", "tta", "init_images"):
        del config["data"][key]
    for key in ("label_smoothing", "mixup_alpha", "cutmix_alpha", "mixup_switch_prob"):
        del config["train"][key]  # e.g. the config.yaml of a run from an earlier version
    task = ClassificationTask(config, DistInfo(), torch.device("cpu"))
    model = task.build_model().eval()
    with torch.no_grad():
        metrics = task.evaluate(model, task.build_loaders().test)
    assert metrics["count"] == 32 and task.config["data"]["tta"] is None and "tta" not in config["data"]
