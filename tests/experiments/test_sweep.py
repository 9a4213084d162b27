"""The sweep runner: grid expansion, skipping finished runs, dry-run listing, aggregation statistics."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from srblock.engine.config import apply_overrides
from srblock.experiments import aggregate, expand_grid, format_plan, load_sweep, run_sweep, sweep_command
from srblock.experiments import sweep as sweep_module

from .conftest import write_two_arm_sweep


def _fake_load(recipe: str, overrides):
    """A stand-in for engine.load_config: YAML recipe + dotted ``key=value`` overrides (YAML-typed)."""
    return apply_overrides(yaml.safe_load(Path(recipe).read_text()), overrides)


# metric per (num_memories, seed): made-up numbers with unequal spread across arms
METRIC = {(0, 0): 90.10, (0, 1): 90.70, (0, 2): 89.90, (10, 0): 90.60, (10, 1): 91.35, (10, 2): 90.95}


class FakeTrain:
    """Records calls; writes summary.json and a fake checkpoint like the engine."""

    def __init__(self):
        self.calls = []

    def __call__(self, config, output_dir: Path):
        self.calls.append((config, output_dir))
        p = config["model"].get("num_memories", 0) if config["model"].get("sr_stage") else 0
        summary = {
            "test_acc1": METRIC[(p, config["seed"])],
            "best_val_acc": 80.0 + config["seed"],
            "params": 1000 + 10 * p,
            "sr_params": 10 * p,
            "wall_time_s": 1.5,
            "seed": config["seed"],
            "config": config,
        }
        (output_dir / "checkpoint_last.pt").write_bytes(b"x")
        (output_dir / "summary.json").write_text(json.dumps(summary))
        return summary


@pytest.fixture
def sweep_file(tmp_path: Path, tiny_recipe: Path) -> Path:
    return write_two_arm_sweep(
        tmp_path / "tiny.yaml",
        tiny_recipe,
        output=tmp_path / "out",
        seeds=[0, 1],
        metric="test_acc1",
        reference_effect=0.16,
        overrides={"train.epochs": 2},
    )


def test_expand_grid_is_seed_major_with_ordered_overrides(sweep_file):
    runs = expand_grid(load_sweep(sweep_file))
    assert [(r.arm, r.seed) for r in runs] == [("base", 0), ("sr", 0), ("base", 1), ("sr", 1)]
    assert runs[1].overrides == ["train.epochs=2", "model.sr_stage=3", "model.num_memories=10", "seed=0"]
    assert runs[3].output_dir.parts[-2:] == ("sr", "seed1")


def test_sweep_writes_csv_and_table_with_scipy_statistics(sweep_file, no_screen):
    train = FakeTrain()
    run_sweep(load_sweep(sweep_file), run_fn=train, load_fn=_fake_load, log=lambda _: None)
    assert len(train.calls) == 4
    assert all(c["train"]["epochs"] == 2 for c, _ in train.calls)
    out = sweep_file.parent / "out"
    assert not list(out.glob("*/*/checkpoint_*.pt")), "checkpoints must be deleted unless keep_checkpoints"

    with open(out / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [(r["arm"], r["seed"]) for r in rows] == [("base", "0"), ("base", "1"), ("sr", "0"), ("sr", "1")]
    assert float(rows[2]["value"]) == METRIC[(10, 0)]
    assert "trained for 2 epochs" in (out / "table.md").read_text()

    base = [METRIC[(0, 0)], METRIC[(0, 1)]]
    sr = [METRIC[(10, 0)], METRIC[(10, 1)]]
    table = (out / "table.md").read_text()
    sr_line = next(line for line in table.splitlines() if line.startswith("| `sr`"))
    cells = [c.strip() for c in sr_line.strip("|").split("|")]
    assert cells[1] == "2"
    assert cells[2] == f"{np.mean(sr):.2f} ± {np.std(sr, ddof=1):.2f}"
    assert cells[4] == f"{np.mean(sr) - np.mean(base):+.2f}"
    paired, welch = stats.ttest_rel(sr, base), stats.ttest_ind(sr, base, equal_var=False)
    for cell, ci in ((cells[5], paired.confidence_interval()), (cells[6], welch.confidence_interval())):
        assert cell == f"[{ci.low:+.2f}, {ci.high:+.2f}]"
    assert cells[7] == f"{welch.pvalue:.3g}"
    assert cells[8] == f"{paired.pvalue:.3g} (2)"  # seeds 0 and 1 pair up
    assert "`base` (baseline)" in table


def test_a_screen_keeps_its_intervals_but_shows_no_p_values(sweep_file):
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    table = (sweep_file.parent / "out" / "table.md").read_text()
    cells = [c.strip() for c in next(r for r in table.splitlines() if r.startswith("| `sr`")).strip("|").split("|")]
    assert cells[0] == "`sr` (screen)" and cells[1] == "2"
    assert cells[5].startswith("[") and cells[6].startswith("[")  # paired and Welch intervals stay
    assert cells[7:11] == ["–", "–", "–", "–"]  # p (Welch), p (paired), p (sign), seeds for Δ
    assert "(screen): 1 arm(s) with 3 seeds or fewer" in table


def test_arms_short_of_their_planned_seeds_are_marked_partial_until_every_seed_has_run(sweep_file, no_screen):
    """Past the screen, an arm's p-values are interim while the sweep still plans seeds for it: the table says so."""
    doc = yaml.safe_load(sweep_file.read_text())
    doc["seeds"] = [0, 1, 2]
    sweep_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, seeds=[0, 1])
    table = (sweep_file.parent / "out" / "table.md").read_text()
    assert "| `base` (baseline, partial) | 2 |" in table and "| `sr` (partial) | 2 |" in table
    assert "(partial): 2 arm(s) holding fewer of the sweep's seeds than it plans (`base` 2 of 3, `sr` 2 of 3)" in table
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    table = (sweep_file.parent / "out" / "table.md").read_text()
    assert "partial" not in table and "| `sr` | 3 |" in table


def test_an_arm_without_runs_yet_gets_dashes_not_nan(sweep_file):
    doc = yaml.safe_load(sweep_file.read_text())
    doc["arms"]["later"] = doc["arms"]["sr"]  # e.g. an arm added to a running sweep
    sweep_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, arms=["base", "sr"])
    table = (sweep_file.parent / "out" / "table.md").read_text()
    later = next(line for line in table.splitlines() if line.startswith("| `later`"))
    assert [c.strip() for c in later.strip("|").split("|")][1:6] == ["0", "– ± –", "[–, –]", "–", "–"]
    assert "nan" not in table


def test_a_diverged_run_is_named_under_the_table_and_the_sweep_goes_on(sweep_file):
    """A run whose metric is NaN (written as null) is not counted and is named; the table after each run (which
    follows every run of a sweep) must not fail on it."""
    train = FakeTrain()

    def diverging(config, output_dir):
        summary = train(config, output_dir)
        if config["seed"] == 0 and config["model"].get("sr_stage"):
            summary["test_acc1"] = None
            (output_dir / "summary.json").write_text(json.dumps(summary))
        return summary

    run_sweep(load_sweep(sweep_file), run_fn=diverging, load_fn=_fake_load, log=lambda _: None)
    assert len(train.calls) == 4  # every run trained
    table = (sweep_file.parent / "out" / "table.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| `sr`"))
    assert [c.strip() for c in row.strip("|").split("|")][1] == "1"  # seed 1 only
    named = "Not counted (1, diverged or unscored): `sr/seed0` (no number for test_acc1 in its summary.json: null)"
    assert named in table


def test_resume_skips_finished_runs(sweep_file):
    sweep = load_sweep(sweep_file)
    first = FakeTrain()
    run_sweep(sweep, run_fn=first, load_fn=_fake_load, log=lambda _: None)
    # lose one run, as if the sweep had been interrupted during it
    (sweep.output / "sr" / "seed1" / "summary.json").unlink()
    second = FakeTrain()
    executed = run_sweep(sweep, run_fn=second, load_fn=_fake_load, log=lambda _: None)
    assert [(r.arm, r.seed) for r in executed] == [("sr", 1)]
    assert len(second.calls) == 1


def test_a_run_without_a_checkpoint_to_resume_keeps_its_files_and_starts_again(sweep_file, capsys):
    # killed before its first checkpoint, or a fresh checkout that kept the logs but not the ignored checkpoint
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    folder = _interrupt(sweep)
    (folder / "config.yaml").write_text("seed: 1\n")
    assert sweep_module.run_state(expand_grid(sweep)[3]).state == "interrupted"
    assert sweep_command(str(sweep_file), dry_run=True) == 0
    assert "[interrupted] sr" in capsys.readouterr().out

    second = FakeTrain()
    executed = run_sweep(sweep, run_fn=second, load_fn=_fake_load, log=lambda _: None)
    assert [(r.arm, r.seed) for r in executed] == [("sr", 1)] and second.calls[0][1] == folder
    (kept,) = (sweep.output / sweep_module.INTERRUPTED_DIR / "sr").iterdir()
    assert kept.name.startswith("seed1-")
    assert sorted(p.name for p in kept.iterdir()) == ["config.yaml", "metrics.csv"]
    assert (kept / "metrics.csv").read_text() == "step,loss\n12,0.5\n"
    assert (folder / "summary.json").is_file() and not (folder / "metrics.csv").exists()
    assert not (folder / sweep_module.LOCK).exists()


def _interrupt(sweep, arm: str = "sr", seed: int = 1) -> Path:
    """Leave the finished run ``arm``/``seed`` as a killed one that lost its checkpoint: a log, no summary."""
    folder = sweep.output / arm / f"seed{seed}"
    (folder / "summary.json").unlink()
    (folder / "metrics.csv").write_text("step,loss\n12,0.5\n")
    return folder


def test_an_interrupted_run_another_process_still_writes_is_left_alone(sweep_file):
    from srblock.io import lock_folder

    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    folder = _interrupt(sweep)
    second = FakeTrain()
    with lock_folder(folder):  # e.g. `srblock train --resume` before its first checkpoint
        run_sweep(sweep, run_fn=second, load_fn=_fake_load, log=lambda _: None)
        assert (folder / "metrics.csv").is_file() and (folder / ".srblock.lock").is_file()
    assert second.calls == [] and not (sweep.output / sweep_module.INTERRUPTED_DIR).exists()


def test_interrupted_runs_are_refused_under_torchrun_and_shown_before_a_failure(sweep_file, monkeypatch):
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    folder = _interrupt(sweep)
    (folder / sweep_module.FAILED).write_text('{"error": "killed"}')
    assert sweep_module.run_state(expand_grid(sweep)[3]).state == "interrupted"  # its files will move, failure too
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(ValueError, match=r"1 run\(s\) left files but no checkpoint .*sr/seed1.*without torchrun"):
        run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    assert (folder / "metrics.csv").is_file()


def test_a_bare_config_or_a_checkpoint_is_not_interrupted(sweep_file):
    run = expand_grid(load_sweep(sweep_file))[0]
    run.output_dir.mkdir(parents=True)
    (run.output_dir / "config.yaml").write_text("seed: 0\n")  # killed before anything else: starts fresh
    assert sweep_module.run_state(run).state == "todo"
    (run.output_dir / "metrics.csv").write_text("step\n")
    (run.output_dir / "checkpoint_last.pt").write_bytes(b"x")
    assert sweep_module.run_state(run).state == "partial"


def test_dry_run_lists_runs_and_their_state(sweep_file, capsys):
    sweep = load_sweep(sweep_file)
    run = expand_grid(sweep)[0]
    run.output_dir.mkdir(parents=True)
    (run.output_dir / "summary.json").write_text("{}")
    assert sweep_command(str(sweep_file), dry_run=True) == 0
    out = capsys.readouterr().out
    assert out.count("[done]") == 1 and out.count("[todo]") == 3
    assert "4 runs: 1 done, 3 to run" in out
    assert "seed=1" in format_plan(expand_grid(sweep))


def test_report_reaggregates_from_saved_sweep_copy(sweep_file):
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    (sweep.output / "table.md").unlink()
    table = aggregate(sweep.output, log=lambda _: None)
    assert "Δ vs base" in table and (sweep.output / "table.md").is_file()
    assert "seeds for Δ=0.16" in table


def test_time_per_run_says_what_each_runs_wall_time_was_measured_on(sweep_file):
    """Wall times compare arms only where the runs ran alike: the note names the GPUs and CPU threads behind them."""
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    table = (sweep.output / "table.md").read_text()
    assert "Time/run: the mean `wall_time_s` of the arm's runs" in table and "These runs ran on" not in table
    for (arm, seed), where in {
        ("base", 0): {"cpu_threads": 1},
        ("sr", 1): {"gpu": "NVIDIA H200", "cpu_threads": 8},
    }.items():
        summary = sweep.output / arm / f"seed{seed}" / "summary.json"
        summary.write_text(json.dumps({**json.loads(summary.read_text()), **where}))
    table = aggregate(sweep.output, log=lambda _: None)
    expected = "These runs ran on: CPU, 1 thread (1); CPU, threads not recorded (2); NVIDIA H200 (1)."
    assert expected in table
    with open(sweep.output / "results.csv") as f:
        rows = {(r["arm"], r["seed"]): r for r in csv.DictReader(f)}
    assert (rows[("base", "0")]["cpu_threads"], rows[("sr", "1")]["gpu"], rows[("sr", "0")]["cpu_threads"]) == (
        "1",
        "NVIDIA H200",
        "",
    )


def test_a_finished_runs_log_line_shows_its_metric_without_float_noise(sweep_file):
    class Train(FakeTrain):
        def __call__(self, config, output_dir: Path):
            summary = {**super().__call__(config, output_dir), "test_acc1": 0.1 * 781}  # 78.10000000000001
            (output_dir / "summary.json").write_text(json.dumps(summary))
            return summary

    lines: list[str] = []
    run_sweep(load_sweep(sweep_file), run_fn=Train(), load_fn=_fake_load, log=lines.append, arms=["base"], seeds=[0])
    assert any(re.search(r"base seed=0 done: test_acc1=78\.1 in \d+s$", line) for line in lines), lines


def test_analyze_takes_each_run_with_a_checkpoint_once(tmp_path, monkeypatch):
    import torch

    import srblock.analysis.report as report
    from srblock.experiments.sweep import analyze_sweep_runs

    calls, predicted = [], []

    def fake_analyze(checkpoint, *, split, output_dir):
        calls.append((checkpoint.relative_to(tmp_path).as_posix(), split))
        output_dir.mkdir()
        (output_dir / "analysis.json").write_text("{}")

    def fake_predict(checkpoint, *, split):
        predicted.append((checkpoint.relative_to(tmp_path).as_posix(), split))
        return torch.tensor([0, 1, 2, 2]), torch.tensor([0, 1, 2, 3])

    monkeypatch.setattr(report, "analyze_checkpoint", fake_analyze)
    monkeypatch.setattr(report, "predict_checkpoint", fake_predict)
    runs = {"base/seed0": (0, ["checkpoint_best.pt"]), "sr/seed0": (10, ["checkpoint_best.pt", "checkpoint_last.pt"])}
    runs |= {"sr/seed1": (10, ["checkpoint_last.pt"]), "sr/seed2": (10, [])}  # seed2: its checkpoint was deleted
    runs |= {"seg/seed0": (10, ["checkpoint_best.pt"])}  # segmentation: analysed, no per-image predictions
    for name, (sr_params, checkpoints) in runs.items():
        (tmp_path / name).mkdir(parents=True)
        task = "segmentation" if name.startswith("seg") else "classification"
        summary = {"sr_params": sr_params, "test_acc1": 75.0, "config": {"task": task}}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
        for checkpoint in checkpoints:
            (tmp_path / name / checkpoint).write_bytes(b"x")
    logged = []
    written = analyze_sweep_runs(tmp_path, log=logged.append)
    kept = ["sr/seed0/checkpoint_best.pt", "sr/seed1/checkpoint_last.pt"]
    assert predicted == [(c, "test") for c in ("base/seed0/checkpoint_best.pt", *kept)]
    assert calls == [(c, "test") for c in ("seg/seed0/checkpoint_best.pt", *kept)]
    assert written == [
        tmp_path / "base/seed0/predictions_test.npz",
        tmp_path / "seg/seed0/analysis_test",
        tmp_path / "sr/seed0/predictions_test.npz",
        tmp_path / "sr/seed0/analysis_test",
        tmp_path / "sr/seed1/predictions_test.npz",
        tmp_path / "sr/seed1/analysis_test",
    ]
    saved = np.load(tmp_path / "sr/seed0/predictions_test.npz")
    assert saved["predictions"].tolist() == [0, 1, 2, 2] and saved["labels"].tolist() == [0, 1, 2, 3]
    assert str(saved["checkpoint"]) == "checkpoint_best.pt"
    # the best checkpoint scores 75 %, as its summary says; the last one is not compared with the best's number
    assert not [line for line in logged if line.startswith("warning")]
    assert analyze_sweep_runs(tmp_path, log=lambda _: None) == [] and len(calls) == 3 and len(predicted) == 3


def test_analyze_warns_when_a_checkpoint_no_longer_scores_its_summary(tmp_path, monkeypatch):
    import torch

    import srblock.analysis.report as report
    from srblock.experiments.sweep import analyze_sweep_runs

    monkeypatch.setattr(report, "predict_checkpoint", lambda c, *, split: (torch.tensor([0, 1]), torch.tensor([0, 0])))
    (tmp_path / "base/seed0").mkdir(parents=True)
    (tmp_path / "base/seed0/summary.json").write_text(json.dumps({"sr_params": 0, "test_acc1": 75.0}))
    (tmp_path / "base/seed0/checkpoint_best.pt").write_bytes(b"x")
    logged = []
    analyze_sweep_runs(tmp_path, log=logged.append)
    assert logged[-1] == f"warning: {tmp_path / 'base/seed0/checkpoint_best.pt'} scores 50.00 % on test now, its " + (
        "summary says 75.0"
    )


def test_noise_report_splits_each_arms_spread_and_needs_one_test_set(tmp_path):
    from srblock.analysis.stats import seed_effect, seed_noise
    from srblock.experiments.sweep import report_sweep_noise

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=200).astype(np.int16)
    correct = {"base": rng.random((3, 200)) < 0.7, "sr": rng.random((4, 200)) < 0.8, "lone": rng.random((1, 200)) < 0.5}
    assert report_sweep_noise(tmp_path) is None
    for arm, runs in correct.items():
        for seed, right in enumerate(runs):
            (tmp_path / arm / f"seed{seed}").mkdir(parents=True)
            predictions = np.where(right, labels, (labels + 1) % 10)
            np.savez(tmp_path / arm / f"seed{seed}" / "predictions_test.npz", predictions=predictions, labels=labels)
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump({"baseline": "base"}))
    table = report_sweep_noise(tmp_path).read_text()
    for arm in ("base", "sr"):
        r = seed_noise(correct[arm])
        row = f"| {arm} | {r.runs} | {r.mean:.2f} | {r.std:.2f} | {r.flip_std:.2f} | {r.rest_std:.2f} | "
        assert row + f"{r.disagreement:.1f} % |" in table
    paired = np.mean([100 * (correct["sr"][s] != correct["base"][s]).mean() for s in range(3)])
    r = np.corrcoef(correct["sr"][:3].mean(1), correct["base"].mean(1))[0, 1]
    assert table.splitlines()[3].endswith(f"| {paired:.1f} % | {r:+.2f} (3) |")  # sr against base, seeds both ran
    assert table.splitlines()[2].endswith("| – | – |")  # the baseline's own row
    assert "| lone |" not in table  # one run has no spread
    effect = seed_effect([100 * correct[a][:3].mean(1) for a in ("base", "sr")])  # sr ran every seed of base
    assert (
        f"over the 2 arms that ran all 3 of the baseline's seeds (base, sr): the seed explains "
        f"{100 * effect.share:.0f} % of the per-run variance of test top-1 (two-way ANOVA, F = {effect.f:.2f}" in table
    )
    by_sr = report_sweep_noise(tmp_path, baseline="sr").read_text().splitlines()[2]
    assert by_sr.endswith(f"| {paired:.1f} % | {r:+.2f} (3) |")
    np.savez(tmp_path / "sr/seed3/predictions_test.npz", predictions=labels[:100], labels=labels[:100])
    with pytest.raises(
        ValueError, match=r"sr/seed3/predictions_test\.npz scores other test labels .* holds 100 images"
    ):
        report_sweep_noise(tmp_path)


def test_a_second_metric_gets_its_own_table_and_leaves_the_sweeps_table(sweep_file):
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    before = {name: (sweep.output / name).read_text() for name in ("table.md", "results.csv")}
    assert sweep_command(report=str(sweep.output), metric="best_val_acc") == 0
    assert {name: (sweep.output / name).read_text() for name in before} == before
    table = (sweep.output / "table-best_val_acc.md").read_text()
    sr_line = next(line for line in table.splitlines() if line.startswith("| `sr`"))
    assert "best_val_acc mean ± std" in table and sr_line.split("|")[3].strip() == "80.50 ± 0.71"


def test_run_fn_without_summary_gets_one_written(sweep_file):
    sweep = load_sweep(sweep_file)

    def quiet_train(config, output_dir):
        return {"test_acc1": 50.0 + config["seed"]}

    run_sweep(sweep, run_fn=quiet_train, load_fn=_fake_load, log=lambda _: None)
    summary = json.loads((sweep.output / "base" / "seed1" / "summary.json").read_text())
    assert summary["test_acc1"] == 51.0 and summary["seed"] == 1


def test_bad_sweep_file_names_the_problem(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"output": "x", "seeds": [0], "arms": {"a": {"recipe": "r.yaml"}}, "baseline": "b"}))
    with pytest.raises(ValueError, match="baseline 'b' is not an arm"):
        load_sweep(path)
    with pytest.raises(FileNotFoundError, match="neither a file nor a built-in sweep file"):
        load_sweep(tmp_path / "missing.yaml")


def test_cli_verb_dry_run_and_report(sweep_file, capsys):
    from srblock.cli import main

    assert main(["sweep", "-c", str(sweep_file), "--dry-run"]) == 0
    assert "4 runs: 0 done, 4 to run" in capsys.readouterr().out
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    assert main(["sweep", "--report", str(sweep.output), "--baseline", "sr"]) == 0
    assert "Δ vs sr" in capsys.readouterr().out


def test_after_run_command_sees_each_finished_run(sweep_file, tmp_path):
    log = tmp_path / "hook.log"
    cmd = f'echo "$SRBLOCK_RUN_ARM $SRBLOCK_RUN_SEED $(basename $SRBLOCK_RUN_DIR)" >> {log}'
    sweep_command(str(sweep_file), after_run=cmd, run_fn=FakeTrain(), load_fn=_fake_load)
    assert log.read_text().splitlines() == ["base 0 seed0", "sr 0 seed0", "base 1 seed1", "sr 1 seed1"]


def test_keep_checkpoints_best_keeps_only_the_best(sweep_file):
    sweep = load_sweep(sweep_file)
    sweep.keep_checkpoints = "best"

    def train(config, output_dir):
        for name in ("checkpoint_last.pt", "checkpoint_best.pt"):
            (output_dir / name).write_bytes(b"x")
        return {"test_acc1": 1.0}

    run_sweep(sweep, run_fn=train, load_fn=_fake_load, log=lambda _: None)
    assert sorted(p.name for p in sweep.output.glob("*/*/*.pt")) == ["checkpoint_best.pt"] * 4


def test_arm_with_its_own_seeds(sweep_file):
    doc = yaml.safe_load(sweep_file.read_text())
    doc["arms"]["sr"]["seeds"] = [1, 2]
    sweep_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    runs = expand_grid(load_sweep(sweep_file))
    assert [(r.arm, r.seed) for r in runs] == [("base", 0), ("base", 1), ("sr", 1), ("sr", 2)]


def test_concurrent_sweeps_on_one_grid_train_each_run_once(sweep_file):
    """Two sweep processes on the same grid (e.g. one per core): a run claimed or finished by one is skipped by the
    other; a lock left by a process that died is taken over."""
    import os
    import socket

    sweep = load_sweep(sweep_file)
    runs = expand_grid(sweep)
    held = runs[0].output_dir
    held.mkdir(parents=True)
    (held / ".sweep.lock").write_text(f"{socket.gethostname()}:{os.getppid()}")  # a live process trains it
    dead = runs[1].output_dir
    dead.mkdir(parents=True)
    (dead / ".sweep.lock").write_text(f"{socket.gethostname()}:999999999")  # no such process
    first, second = FakeTrain(), FakeTrain()

    def train_then_other_sweep(config, output_dir):
        summary = first(config, output_dir)
        if len(first.calls) == 1:  # the second process starts while the first is in its first run
            run_sweep(load_sweep(sweep_file), run_fn=second, load_fn=_fake_load, log=lambda _: None)
        return summary

    run_sweep(sweep, run_fn=train_then_other_sweep, load_fn=_fake_load, log=lambda _: None)
    trained = [d for _, d in first.calls] + [d for _, d in second.calls]
    assert sorted(map(str, trained)) == sorted(str(r.output_dir) for r in runs[1:])  # each once, not the held one
    assert second.calls and len(first.calls) + len(second.calls) == 3
    assert not (dead / ".sweep.lock").exists() and (held / ".sweep.lock").exists()


def test_report_draws_and_tables_the_sr_dynamics_of_the_arms_that_have_them(tmp_path):
    from srblock.experiments.sweep import report_sweep_dynamics

    cols = "layer3.sr.memory_ratio,layer3.sr.routing_change,layer3.sr.routing_entropy,layer3.sr.memory_spread"
    ends = {"layer3.sr.memory_ratio": 0.01, "layer3.sr.routing_entropy": 0.99}
    first = "0.5,0.005,0.05,0.99,0.3\n"  # a curve needs two evaluations
    runs = (("base", 0, "epoch,val_acc1", "1.0,50", {}), ("sr", 0, f"epoch,{cols}", "1.0,0.01,0.1,0.99,0.2", ends))
    runs += (("sr", 1, f"epoch,{cols}", first + "1.0,0.03,0.1,0.97,0.2", {**ends, "layer3.sr.memory_ratio": 0.03}),)
    for arm, seed, header, row, end in runs:
        run = tmp_path / arm / f"seed{seed}"
        run.mkdir(parents=True)
        (run / "summary.json").write_text(json.dumps({"sr_dynamics": end} if end else {}))
        (run / "metrics.csv").write_text(f"{header}\n{row}\n")
    analysis = {"blocks": {"layer3.sr": {"routing_control": {"eta2_init": 0.1, "delta": 0.005}}}}
    analysis["ablation"] = {"delta_pp": -0.25}  # removing SR cost 0.25 points
    (tmp_path / "sr" / "seed1" / "analysis_test").mkdir()
    (tmp_path / "sr" / "seed1" / "analysis_test" / "analysis.json").write_text(json.dumps(analysis))
    assert report_sweep_dynamics(tmp_path) == [tmp_path / "dynamics.png", tmp_path / "dynamics.md"]
    assert (tmp_path / "dynamics.png").stat().st_size
    table = (tmp_path / "dynamics.md").read_text().splitlines()
    assert len([line for line in table if line.startswith("| `")]) == 1  # the baseline has no SR columns
    assert table[0].endswith("| eta2_gain | sr_contribution_pp |")
    assert table[2] == "| `sr` | layer3.sr | 2 | 0.02 ± 0.014 | – | – | 0.99 ± 0 | – | 0.05 (1) | 0.25 (1) |"
    assert "routing_contribution_pp" not in (tmp_path / "dynamics.md").read_text()  # no analysis has the control
    analysis["ablation"]["routing_pp"] = 0.0  # an analysis with the fixed-routing control: the routing added nothing
    (tmp_path / "sr" / "seed1" / "analysis_test" / "analysis.json").write_text(json.dumps(analysis))
    report_sweep_dynamics(tmp_path)
    table = (tmp_path / "dynamics.md").read_text().splitlines()
    assert table[0].endswith("| eta2_gain | sr_contribution_pp | routing_contribution_pp |")
    assert table[2].endswith("| 0.05 (1) | 0.25 (1) | 0 (1) |")
    (tmp_path / "dynamics.png").unlink()
    (tmp_path / "sr" / "seed1" / "metrics.csv").write_text(f"epoch,{cols}\n1.0,0.03,0.1,0.97,0.2\n")
    assert report_sweep_dynamics(tmp_path) == [tmp_path / "dynamics.md"]  # one evaluation a run: a table, no curve
    assert not (tmp_path / "dynamics.png").exists()
    for seed in (0, 1):
        (tmp_path / "sr" / f"seed{seed}" / "metrics.csv").write_text("epoch,val_acc1\n1.0,50\n")
    assert report_sweep_dynamics(tmp_path) == [] and not (tmp_path / "dynamics.png").exists()


def _top1(seed: int, ls: bool, sr: bool) -> float:
    """Made-up top-1: seed noise shared by every arm, plus effects of label smoothing and SR that vary by seed."""
    noise = {0: 0.0, 1: 0.7, 2: -0.4, 3: 0.2}[seed]
    return 90.0 + noise + ls * (1.0 + 0.2 * (seed == 1)) + sr * (0.4 + 0.15 * (seed == 2)) + 0.1 * seed * (ls and sr)


class ControlledTrain(FakeTrain):
    """:func:`_top1` as the metric, with SR dynamics per block."""

    def __call__(self, config, output_dir: Path):
        sr = bool(config["model"].get("sr_stage"))
        ls = config["train"].get("label_smoothing", 0) > 0
        seed = config["seed"]
        summary = {
            "test_acc1": _top1(seed, ls, sr),
            "params": 1000,
            "sr_params": 10 * sr,
            "seed": seed,
            "config": config,
        }
        if sr:
            stages = config["model"]["sr_stage"]
            stages = stages if isinstance(stages, list) else [stages]
            summary["sr_dynamics"] = {
                f"layer{m}.sr.{col}": value + 0.01 * seed + 0.1 * m
                for m in stages
                for col, value in (("routing_entropy", 0.5), ("memory_ratio", 0.02))
            }
        (output_dir / "summary.json").write_text(json.dumps(summary))
        return summary


def _cells(table: str, arm: str) -> list[str]:
    line = next(line for line in table.splitlines() if line.startswith(f"| `{arm}`"))
    return [c.strip() for c in line.strip("|").split("|")]


def test_an_arm_is_compared_with_its_own_baseline(sweep_file):
    doc = yaml.safe_load(sweep_file.read_text())
    recipe = doc["arms"]["base"]["recipe"]
    doc["seeds"] = [0, 1, 2, 3]  # more than a screen: the table prints p-values
    doc["arms"]["ls"] = {"recipe": recipe, "overrides": {"train.label_smoothing": 0.1}}
    doc["arms"]["ls-sr"] = {
        "recipe": recipe,
        "overrides": {"train.label_smoothing": 0.1, "model.sr_stage": [3, 4], "model.num_memories": 10},
        "baseline": "ls",
    }
    sweep_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_sweep(load_sweep(sweep_file), run_fn=ControlledTrain(), load_fn=_fake_load, log=lambda _: None)
    table = (sweep_file.parent / "out" / "table.md").read_text()
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    col = {name: i for i, name in enumerate(header)}
    assert header[:2] == ["arm", "vs"] and "Δ" in col
    kinds = {"base": (False, False), "sr": (False, True), "ls": (True, False), "ls-sr": (True, True)}
    values = {arm: [_top1(seed, *kind) for seed in range(4)] for arm, kind in kinds.items()}
    rows = {arm: _cells(table, arm) for arm in values}
    assert rows["base"][col["vs"]] == "–" and rows["sr"][col["vs"]] == "`base`" and rows["ls"][col["vs"]] == "`base`"
    assert rows["ls-sr"][col["vs"]] == "`ls`"
    for arm, control in (("ls-sr", "ls"), ("ls", "base"), ("sr", "base")):
        diff = np.array(values[arm]) - np.array(values[control])
        assert rows[arm][col["Δ"]] == f"{diff.mean():+.2f}"
        ci = stats.ttest_rel(values[arm], values[control]).confidence_interval()
        assert rows[arm][col["Δ 95 % CI (paired)"]] == f"[{ci.low:+.2f}, {ci.high:+.2f}]"
    assert rows["ls-sr"][col["p (sign, wins/n)"]].endswith("(4/4)")  # vs ls every seed wins; vs base as well
    # Holm over the three tested arms: the smallest paired p times 3, none below its raw p, none for the baseline
    controls = {"ls-sr": "ls", "ls": "base", "sr": "base"}
    raw = {arm: stats.ttest_rel(values[arm], values[c]).pvalue for arm, c in controls.items()}
    first = min(raw, key=raw.get)
    assert rows[first][col["p (paired, Holm)"]] == f"{min(1.0, 3 * raw[first]):.3g}"
    assert all(float(rows[arm][col["p (paired, Holm)"]]) >= float(f"{raw[arm]:.3g}") for arm in controls)
    assert rows["base"][col["p (paired, Holm)"]] == "–" and "over the 3 arm(s) with a paired p" in table
    assert "its `vs` arm" in table
    again = aggregate(sweep_file.parent / "out", log=lambda _: None)  # from the output's sweep.yaml copy
    assert _cells(again, "ls-sr")[col["vs"]] == "`ls`" and _cells(again, "ls-sr")[col["Δ"]] == rows["ls-sr"][col["Δ"]]
    # dynamics: one value per block for the two-block arm, the mean over seeds; none without SR
    # (seeds 0-3: the seed term's mean is 0.015)
    assert rows["sr"][col["routing entropy"]] == "0.815" and rows["sr"][col["memory ratio"]] == "0.335"
    assert rows["ls-sr"][col["routing entropy"]] == "layer3 0.815; layer4 0.915"
    assert rows["base"][col["routing entropy"]] == "–"


def test_table_counts_forward_flops_of_each_arms_model(sweep_file):
    from srblock.analysis.overhead import count_macs
    from srblock.models import create_model

    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    table = (sweep_file.parent / "out" / "table.md").read_text()
    header = [c.strip() for c in table.splitlines()[0].strip("|").split("|")]
    assert "vs" not in header and "Δ vs base" in header  # no arm names its own baseline: the table as before
    flops = {arm: _cells(table, arm)[header.index("MFLOPs/image")] for arm in ("base", "sr")}
    image = torch.zeros(1, 3, 32, 32)
    for arm, options in (("base", {}), ("sr", {"sr_stage": 3, "num_memories": 10})):
        model = create_model("cifar_resnet18", width=0.25, **options)
        assert flops[arm] == f"{2 * count_macs(model, image) / 1e6:,.1f}"
    assert float(flops["sr"]) > float(flops["base"])


@pytest.mark.parametrize(("baseline", "match"), [("nope", "which must be another arm"), ("sr", "another arm")])
def test_an_arms_baseline_must_be_another_arm(sweep_file, baseline, match):
    doc = yaml.safe_load(sweep_file.read_text())
    doc["arms"]["sr"]["baseline"] = baseline
    sweep_file.write_text(yaml.safe_dump(doc))
    with pytest.raises(ValueError, match=match):
        load_sweep(sweep_file)


def test_seeds_limit_the_runs_and_table_only_their_runs_beside_the_full_table(sweep_file):
    doc = yaml.safe_load(sweep_file.read_text())
    doc["seeds"] = [0, 1, 2]
    sweep_file.write_text(yaml.safe_dump(doc, sort_keys=False))
    train = FakeTrain()
    sweep_command(str(sweep_file), seeds=[1, 2], run_fn=train, load_fn=_fake_load)
    assert sorted((c["seed"], p.parent.name) for c, p in train.calls) == [
        (1, "base"),
        (1, "sr"),
        (2, "base"),
        (2, "sr"),
    ]
    out = sweep_file.parent / "out"
    sweep_command(str(sweep_file), seeds=[0], run_fn=train, load_fn=_fake_load)  # the rest of the grid
    full, csv_before = (out / "table.md").read_text(), (out / "results.csv").read_text()
    sweep_command(str(sweep_file), report=str(out), seeds=[1, 2], load_fn=_fake_load)
    fresh = (out / "table-seeds1-2.md").read_text()
    assert (out / "table.md").read_text() == full and (out / "results.csv").read_text() == csv_before
    cells = [c.strip() for c in next(r for r in fresh.splitlines() if r.startswith("| `sr`")).strip("|").split("|")]
    diffs = [METRIC[(10, s)] - METRIC[(0, s)] for s in (1, 2)]
    ci = stats.ttest_rel([METRIC[(10, s)] for s in (1, 2)], [METRIC[(0, s)] for s in (1, 2)]).confidence_interval()
    assert cells[1] == "2" and cells[4] == f"{np.mean(diffs):+.2f}" and cells[5] == f"[{ci.low:+.2f}, {ci.high:+.2f}]"
    assert "4 finished runs under" in fresh and "Seeds 1-2 only (`--seeds`)." in fresh
    with pytest.raises(ValueError, match="has none of the seeds 7-8; its seeds are 0-2"):
        sweep_command(str(sweep_file), seeds=[7, 8], run_fn=train, load_fn=_fake_load)


def test_cli_reads_seed_ranges_and_names_a_bad_one(capsys):
    from srblock.cli import main

    with pytest.raises(SystemExit):
        main(["sweep", "--report", ".", "--seeds", "3-x"])
    assert "seeds: expected N, N-M or a comma list of them (3-9, 0,2,5), got '3-x'" in capsys.readouterr().err


@given(st.lists(st.integers(min_value=0, max_value=60), min_size=1, max_size=20))
def test_seed_text_reads_back_as_the_same_seeds(seeds: list[int]) -> None:
    from srblock.experiments import format_seeds, parse_seeds

    assert parse_seeds(format_seeds(seeds)) == sorted(set(seeds))


def test_dry_run_lists_only_the_selected_runs(sweep_file, capsys):
    sweep = load_sweep(sweep_file)
    arm = sweep.arms[0].name
    assert sweep_command(str(sweep_file), dry_run=True, arms=[arm], seeds=[0]) == 0
    out = capsys.readouterr().out
    assert out.count("[todo]") == 1 and f"{arm} " in out and "seed=1" not in out
    assert "3 other runs of the sweep left out" in out and "1 runs: 0 done, 1 to run" in out
    with pytest.raises(ValueError, match="unknown arm"):
        sweep_command(str(sweep_file), dry_run=True, arms=["nope"])
    with pytest.raises(ValueError, match="none of the seeds"):
        sweep_command(str(sweep_file), dry_run=True, seeds=[99])


def _second_sweep(sweep_file: Path, reuse, **changes) -> Path:
    """The same grid under another output, reusing ``reuse`` (changes: top-level keys of the file)."""
    doc = yaml.safe_load(sweep_file.read_text())
    doc.update(name="second", output=str(sweep_file.parent / "second"), reuse=reuse, **changes)
    path = sweep_file.parent / "second.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_reuse_copies_a_finished_run_of_the_same_config_instead_of_training_it(sweep_file, capsys):
    first = load_sweep(sweep_file)
    run_sweep(first, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    # the second sweep shares the arm `base` and adds one: only the new arm trains
    doc = yaml.safe_load(sweep_file.read_text())
    doc["arms"]["sr20"] = {"recipe": doc["arms"]["sr"]["recipe"], "overrides": {"model.sr_stage": 3}}
    del doc["arms"]["sr"]
    path = _second_sweep(sweep_file, str(first.output), arms=doc["arms"])
    sweep_command(str(path), dry_run=True, load_fn=_fake_load)
    plan = capsys.readouterr().out
    assert plan.count("[reusable]") == 2 and f"copies the finished {first.output / 'base' / 'seed1'}" in plan
    assert "4 runs: 0 done, 4 to run (2 of them copied from the reuse folders)" in plan
    train, hooked = FakeTrain(), []
    second = load_sweep(path)
    logged = []

    def hook(run, summary) -> None:  # as sweeps/commit_run.sh: the tables must hold the run when it is called
        with open(second.output / "results.csv") as f:
            listed = {(r["arm"], int(r["seed"])) for r in csv.DictReader(f)}
        assert (run.arm, run.seed) in listed and (second.output / "table.md").is_file(), run.name
        hooked.append(run)

    run_sweep(second, run_fn=train, load_fn=_fake_load, log=logged.append, after_run=hook)
    assert any(m.startswith("sweep second: 4 runs, 0 done, 2 copied from the reuse folders, 2 to run") for m in logged)
    assert sorted(out.parent.name for _, out in train.calls) == ["sr20", "sr20"]
    assert sorted(r.name for r in hooked) == ["base/seed0", "base/seed1", "sr20/seed0", "sr20/seed1"]
    for seed in (0, 1):
        source, copy = first.output / "base" / f"seed{seed}", second.output / "base" / f"seed{seed}"
        summary = json.loads((copy / "summary.json").read_text())
        assert summary.pop("reused_from") == str(source)
        assert summary == json.loads((source / "summary.json").read_text())
    with open(second.output / "results.csv") as f:
        assert [(r["arm"], r["seed"]) for r in csv.DictReader(f)][:2] == [("base", "0"), ("base", "1")]
    assert "4 finished runs under" in (table := (second.output / "table.md").read_text())
    assert "2 of them copied from another sweep's runs of the same config (`reuse:`)." in table
    assert "copied" not in (first.output / "table.md").read_text()
    # run again: everything is done, nothing trains or copies
    again = FakeTrain()
    run_sweep(load_sweep(path), run_fn=again, load_fn=_fake_load, log=lambda _: None)
    assert again.calls == []


def test_reuse_trains_a_run_whose_twin_has_another_config_or_is_missing(sweep_file):
    first = load_sweep(sweep_file)
    run_sweep(first, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, seeds=[0])
    path = _second_sweep(sweep_file, [str(first.output)], overrides={"train.epochs": 3})  # another config
    train = FakeTrain()
    run_sweep(load_sweep(path), run_fn=train, load_fn=_fake_load, log=lambda _: None)
    assert len(train.calls) == 4
    path = _second_sweep(sweep_file, [str(sweep_file.parent / "nowhere"), str(first.output)])
    (sweep_file.parent / "second").rename(sweep_file.parent / "second-epochs3")
    train = FakeTrain()
    run_sweep(load_sweep(path), run_fn=train, load_fn=_fake_load, log=lambda _: None)
    assert sorted((c["seed"], out.parent.name) for c, out in train.calls) == [(1, "base"), (1, "sr")]


@pytest.mark.parametrize(
    ("reuse", "message"),
    [
        (7, "reuse must be a folder or a list of folders (other sweeps' outputs), got 7"),
        ([], "reuse must be a folder or a list of folders (other sweeps' outputs), got []"),
        (["a", ""], "reuse must be a folder or a list of folders (other sweeps' outputs), got ['a', '']"),
        ("OWN", "reuse names the sweep's own output"),
    ],
)
def test_reuse_is_checked_when_the_sweep_loads(sweep_file, reuse, message):
    path = _second_sweep(sweep_file, str(sweep_file.parent / "second") if reuse == "OWN" else reuse)
    with pytest.raises(ValueError, match=f"second.yaml: {re.escape(message)}"):
        load_sweep(path)


def _set_wall_time(sweep, arm: str, seed: int, seconds: float) -> None:
    """Make a finished run's summary say it took ``seconds`` (as a run that shared the machine would)."""
    summary = sweep.output / arm / f"seed{seed}" / "summary.json"
    summary.write_text(json.dumps({**json.loads(summary.read_text()), "wall_time_s": seconds}))


def _dry_run_after_a_run(sweep, sweep_file, capsys, arm: str, seconds: float) -> str:
    """Run seed 0 of ``arm``, make it have taken ``seconds``, and return what ``--dry-run`` then prints."""
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, arms=[arm], seeds=[0])
    _set_wall_time(sweep, arm, 0, seconds)
    sweep_command(str(sweep_file), dry_run=True, load_fn=_fake_load)
    return capsys.readouterr().out


def test_dry_run_estimates_the_run_time_left_from_each_arms_finished_runs(sweep_file, capsys):
    sweep = load_sweep(sweep_file)
    sweep_command(str(sweep_file), dry_run=True, load_fn=_fake_load)
    expected = "time left: not known yet, none of the 4 run(s) to train has an arm with a finished run"
    assert expected in capsys.readouterr().out
    assert (
        "time left: about 1.5 h of run time for 1 run(s), at the median of their arm's finished runs (partial runs "
        "counted whole); 2 run(s) of arms without a finished run not counted; all 3 at the sweep's fastest run "
        "(5400 s): 4.5 h"
    ) in _dry_run_after_a_run(sweep, sweep_file, capsys, "base", 5400.0)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)  # wall_time_s 1.5 each
    sweep_command(str(sweep_file), dry_run=True, load_fn=_fake_load)
    assert "time left" not in capsys.readouterr().out  # nothing left to train


def test_dry_run_also_gives_the_fastest_finished_run_when_the_arms_runs_differ(sweep_file, capsys):
    doc = yaml.safe_load(sweep_file.read_text())
    sweep_file.write_text(yaml.safe_dump({**doc, "seeds": [0, 1, 2]}, sort_keys=False))
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, arms=["base"], seeds=[0, 1])
    for seed, wall in ((0, 5400.0), (1, 1800.0)):  # seed 0 shared the machine with another run
        _set_wall_time(sweep, "base", seed, wall)
    sweep_command(str(sweep_file), dry_run=True, load_fn=_fake_load)
    assert (
        "time left: about 1.0 h of run time for 1 run(s), at the median of their arm's finished runs (partial runs "
        "counted whole), 30 min at the fastest (runs that shared the machine took longer); 3 run(s) of arms without "
        "a finished run not counted; all 4 at the sweep's fastest run (1800 s): 2.0 h"
    ) in capsys.readouterr().out
    # every arm has a run now, but sr's only one shared the machine: the sweep's fastest run gives the floor
    assert (
        "time left: about 5.0 h of run time for 3 run(s), at the median of their arm's finished runs (partial runs "
        "counted whole), 4.5 h at the fastest (runs that shared the machine took longer); all 3 at the sweep's "
        "fastest run (1800 s): 1.5 h"
    ) in _dry_run_after_a_run(sweep, sweep_file, capsys, "sr", 7200.0)


def test_dry_run_adds_each_arms_training_step_from_the_sweeps_latency_file(sweep_file, capsys):
    """With ``latency.json`` (``--time-arms``) the runs left are also given at the fastest run plus their steps times
    their arm's step less that run's arm's: sr's step takes 0.1 s longer, 3600 steps add 6 min to each sr run."""
    doc = yaml.safe_load(sweep_file.read_text())
    batch = 128  # the engine's resolved config names it; the fake runs' config has what the sweep sets
    sweep_file.write_text(yaml.safe_dump({**doc, "overrides": {**doc["overrides"], "train.batch_size": batch}}))
    sweep = load_sweep(sweep_file)
    run_sweep(sweep, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None, arms=["base"], seeds=[0])
    path = sweep.output / "base" / "seed0" / "summary.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "wall_time_s": 3600.0, "steps": 3600}))
    latency = {"batch": batch, "arms": {"base": {"train_ms": 100.0}, "sr": {"train_ms": 200.0}}}
    at_floor = "all 3 at the sweep's fastest run (3600 s): 3.0 h"
    for timed, expected in (
        (latency, f"{at_floor}, 3.2 h with each arm's training step from latency.json"),  # 3600 + 2 x 3960 s
        ({**latency, "batch": batch + 1}, at_floor),  # measured at another batch size: not used
        ({**latency, "arms": {"base": {"train_ms": 100.0}}}, at_floor),  # sr not timed
    ):
        (sweep.output / "latency.json").write_text(json.dumps(timed))
        sweep_command(str(sweep_file), dry_run=True, load_fn=_fake_load)
        assert capsys.readouterr().out.rstrip().endswith(expected)


def test_dry_run_of_a_sweep_that_reuses_runs_estimates_from_their_twins(sweep_file, capsys):
    first = load_sweep(sweep_file)
    run_sweep(first, run_fn=FakeTrain(), load_fn=_fake_load, log=lambda _: None)
    for seed, wall in ((0, 900.0), (1, 1200.0)):
        _set_wall_time(first, "base", seed, wall)
    doc = yaml.safe_load(sweep_file.read_text())  # `base` is copied, `sr20` is new: none of its runs has finished
    doc["arms"] = {"base": doc["arms"]["base"], "sr20": {**doc["arms"]["sr"], "overrides": {"model.sr_stage": 3}}}
    path = _second_sweep(sweep_file, str(first.output), arms=doc["arms"])
    sweep_command(str(path), dry_run=True, load_fn=_fake_load)
    assert (
        "time left: none of the 2 run(s) to train has an arm with a finished run; all 2 at the sweep's fastest run "
        "(900 s): 30 min"
    ) in capsys.readouterr().out
    # without anything to copy, no run time is known
    path = _second_sweep(sweep_file, str(sweep_file.parent / "nowhere"), arms=doc["arms"])
    sweep_command(str(path), dry_run=True, load_fn=_fake_load)
    assert "time left: not known yet, none of the 4 run(s) to train" in capsys.readouterr().out
