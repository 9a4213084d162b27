"""Launching a sweep: only some arms, a time budget that starts only seeds that fit, workers that share seeds."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

from srblock.experiments import SeedGate, load_sweep, run_sweep

from .test_sweep import FakeTrain, _fake_load


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    """Two arms (base, sr) x seeds 0..3 of a fake recipe (see test_sweep.FakeTrain)."""
    recipe = tmp_path / "recipe.yaml"
    recipe.write_text(yaml.safe_dump({"seed": 0, "model": {"name": "tiny", "sr_stage": None}, "train": {"epochs": 2}}))
    sr = {"recipe": str(recipe), "overrides": {"model.sr_stage": 3, "model.num_memories": 10}}
    doc = {
        "name": "tiny",
        "output": str(tmp_path / "out"),
        "seeds": [0, 1],
        "arms": {"base": {"recipe": str(recipe)}, "sr": sr},
    }
    (tmp_path / "tiny.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return tmp_path / "tiny.yaml"


class Clock:
    """A fake monotonic clock."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class TimedTrain(FakeTrain):
    """FakeTrain that advances the fake clock by its arm's seconds."""

    def __init__(self, clock: Clock, seconds: dict[str, float]) -> None:
        super().__init__()
        self.clock, self.seconds = clock, seconds

    def __call__(self, config, output_dir: Path):
        self.clock.now += self.seconds[output_dir.parent.name]
        return super().__call__(config, output_dir)


def _with_seeds(path: Path, seeds: list[int]) -> Path:
    doc = yaml.safe_load(path.read_text())
    doc["seeds"] = seeds
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_gate_runs_only_the_chosen_arms(sweep_file: Path) -> None:
    sweep = load_sweep(sweep_file)
    gate = SeedGate(sweep, arms=["sr"], log=lambda _: None)
    executed = run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, gate=gate)
    assert [(r.arm, r.seed) for r in executed] == [("sr", 0), ("sr", 1)]
    with pytest.raises(ValueError, match=r"unknown arm\(s\) \['sd'\]"):
        SeedGate(sweep, arms=["sd"])


def test_time_budget_starts_a_seed_only_when_all_its_runs_fit(sweep_file: Path) -> None:
    sweep = load_sweep(_with_seeds(sweep_file, [0, 1, 2]))
    clock, said = Clock(), []
    train = TimedTrain(clock, {"base": 4.0, "sr": 5.0})
    # seed 0 is guessed at 2 x 3 s and takes 9; seed 1 then needs 4 + 5 s, and 9 + 9 > 15: it never starts
    gate = SeedGate(sweep, deadline=clock.now + 15.0, run_seconds=3.0, log=said.append, clock=clock)
    executed = run_sweep(sweep, run_fn=train, load_fn=_fake_load, log=lambda _: None, gate=gate)
    assert [(r.arm, r.seed) for r in executed] == [("base", 0), ("sr", 0)]
    assert gate.expected("base") == 4.0 and gate.expected("sr") == 5.0
    assert said == ["time budget: seed 1 needs ~9 s, 6 s are left; stopping"]


def test_finished_runs_of_an_arm_set_its_expected_length(sweep_file: Path) -> None:
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)  # wall_time_s 1.5 each
    summary = sweep.output / "sr" / "seed1" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "wall_time_s": 7.25}))
    gate = SeedGate(sweep, run_seconds=100.0)
    assert (gate.expected("base"), gate.expected("sr")) == (1.5, 7.25)


def _write_npz(root: Path) -> None:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for name, n in (("train", 48), ("test", 16)):
        np.savez(root / f"{name}.npz", x=rng.integers(0, 256, (n, 8, 8, 3), dtype=np.uint8), y=np.arange(n) % 4)


@pytest.mark.slow
def test_two_worker_processes_share_a_real_sweep(tmp_path: Path) -> None:
    import subprocess

    _write_npz(tmp_path / "data")
    recipe = {
        "data": {"dataset": "npz", "root": str(tmp_path / "data"), "val_fraction": 0.25, "crop_padding": 1},
        "model": {"name": "cifar_resnet18", "num_classes": 4, "width": 0.0625, "input_size": [3, 8, 8]},
        "optim": {"lr": 0.05},
        "train": {"iterations": 2, "batch_size": 16, "device": "cpu"},
    }
    (tmp_path / "r.yaml").write_text(yaml.safe_dump(recipe))
    doc = {
        "name": "two",
        "output": str(tmp_path / "out"),
        "seeds": [0, 1, 2],
        "arms": {"a": {"recipe": str(tmp_path / "r.yaml")}, "b": {"recipe": str(tmp_path / "r.yaml")}},
    }
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(doc))
    cmd = [sys.executable, "-m", "srblock", "sweep", "-c", str(tmp_path / "sweep.yaml"), "--workers", "2"]
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env={"OMP_NUM_THREADS": "1"} | _env())
    summaries = sorted(p.relative_to(tmp_path / "out").parent for p in (tmp_path / "out").glob("*/*/summary.json"))
    assert [str(p) for p in summaries] == [f"{a}/seed{s}" for a in "ab" for s in range(3)]
    assert "[w0] " in out.stdout and "[w1] " in out.stdout and "exit codes [0, 0]" in out.stdout
    assert (tmp_path / "out" / "table.md").is_file()


def _env() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k != "OMP_NUM_THREADS"}
