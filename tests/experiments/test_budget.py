"""A sweep's time budget (no run starts that would not end in time) and its arm filter."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from srblock.experiments import Skipped, TimeBudget, load_sweep, run_sweep

from .conftest import write_fake_recipe, write_two_arm_sweep
from .test_sweep import FakeTrain, _fake_load


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    """Two arms (base, sr) x seeds 0..2 of a fake recipe (see test_sweep.FakeTrain)."""
    recipe = write_fake_recipe(tmp_path / "recipe.yaml")
    return write_two_arm_sweep(tmp_path / "tiny.yaml", recipe, output=tmp_path / "out", seeds=[0, 1, 2])


def _finish(folder: Path, seconds: float) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "summary.json").write_text(json.dumps({"wall_time_s": seconds}))


def test_expected_length_is_the_longest_finished_run_of_the_arm(tmp_path: Path) -> None:
    budget = TimeBudget(deadline=1000.0, run_seconds=30.0, margin=1.5, overhead_s=2.0)
    arm = tmp_path / "out" / "sr"
    assert budget.expected(arm / "seed0") == 30.0  # nothing finished yet: the guess
    _finish(arm / "seed1", 10.0)
    _finish(arm / "seed2", 12.0)
    _finish(tmp_path / "out" / "base" / "seed0", 99.0)  # another arm does not count
    assert budget.expected(arm / "seed0") == 12.0 * 1.5 + 2.0
    assert budget.refuses(arm / "seed0", now=1000.0 - 20.0) is None
    refused = budget.refuses(arm / "seed0", now=1000.0 - 19.0)
    assert refused == Skipped("time budget: expected ~20 s, 19 s left")
    fresh = tmp_path / "out" / "new-arm" / "seed0"
    assert TimeBudget(deadline=0.0).refuses(fresh, now=0.0) is None  # nothing to go by at all: it starts


def test_budget_stops_starting_runs_and_the_arms_stay_paired(sweep_file: Path) -> None:
    sweep, said = load_sweep(sweep_file), []
    train = FakeTrain()

    def slow_train(config, output_dir: Path):
        summary = train(config, output_dir)
        summary["wall_time_s"] = 40.0  # as if each run took 40 s (the budget reads it from the summary)
        (output_dir / "summary.json").write_text(json.dumps(summary))
        return summary

    # seed 0 runs on the guess (1 s); after it, a run is expected to take 40 * 1.1 + 5 s: more than is left
    budget = TimeBudget(deadline=time.time() + 30.0, run_seconds=1.0)
    executed = run_sweep(sweep, run_fn=slow_train, load_fn=_fake_load, log=said.append, budget=budget)
    assert [(r.arm, r.seed) for r in executed] == [("base", 0), ("sr", 0)]
    assert any("base seed=1: not started, time budget: expected ~49 s" in line for line in said)
    assert "time budget: 4 run(s) not started, from base seed=1 on" in said
    assert not (sweep.output / "base" / "seed1").exists()  # nothing is claimed or created for a run not started


def test_only_the_chosen_arms_run_and_the_table_keeps_them_all(sweep_file: Path) -> None:
    sweep, said = load_sweep(sweep_file), []
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=said.append, arms=["base"])
    assert said[0] == "sweep tiny: 6 runs, 0 done, 3 to run of the arms base (sequential launcher, 1 at a time)"
    assert sorted(p.parent.name + "/" + p.parent.parent.name for p in sweep.output.glob("*/*/summary.json")) == [
        "seed0/base",
        "seed1/base",
        "seed2/base",
    ]
    executed = run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)  # the rest later
    assert [(r.arm, r.seed) for r in executed] == [("sr", 0), ("sr", 1), ("sr", 2)]
    with pytest.raises(ValueError, match=r"unknown arm\(s\) \['sd'\] for sweep tiny"):
        run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, arms=["sd"])


def test_cli_flags_reach_the_sweep(sweep_file: Path, capsys: pytest.CaptureFixture) -> None:
    from srblock.cli import build_parser

    args = build_parser().parse_args(
        ["sweep", "-c", str(sweep_file), "--arms", "base,sr", "--time-budget", "60", "--run-seconds", "5"]
    )
    assert (args.arms, args.time_budget, args.run_seconds) == (["base", "sr"], 60.0, 5.0)
