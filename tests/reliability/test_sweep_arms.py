"""Sweeps: every arm checked before the first run, stale and broken runs named and never tabled, failures named
(or recorded with --keep-going), bad --baseline/--metric/--set never written to the output; a sweep runs the code it
started with."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

import srblock
from srblock.cli import main
from srblock.experiments import RunFailedError, aggregate, expand_grid, load_sweep, run_sweep, sweep_command

from .conftest import error_line, snapshot, tiny_config


class FakeTrain:
    """Writes a summary (with the config, as the engine does) without training; ``fail`` names runs that raise."""

    def __init__(self, fail: tuple[str, ...] = ()) -> None:
        self.calls: list[str] = []
        self.fail = fail

    def __call__(self, config: dict[str, Any], output_dir: Path) -> dict[str, Any]:
        name = f"{output_dir.parent.name}/{output_dir.name}"
        self.calls.append(name)
        if name in self.fail:
            raise FloatingPointError(f"non-finite training loss in {name}")
        acc = 50.0 + config["seed"] + config["model"].get("num_memories", 0)
        summary = {"test_acc1": acc, "seed": config["seed"], "config": config}
        (output_dir / "summary.json").write_text(json.dumps(summary))
        return summary


@pytest.fixture
def sweep_file(tiny_data: Path, tmp_path: Path) -> Path:
    recipe = tmp_path / "tiny.yaml"
    recipe.write_text(yaml.safe_dump(tiny_config(tiny_data)))
    doc = {
        "name": "tiny",
        "output": str(tmp_path / "out"),
        "baseline": "base",
        "seeds": [0, 1],
        "arms": {
            "base": {"recipe": str(recipe)},
            "sr": {"recipe": str(recipe), "overrides": {"model.num_memories": 4}},
        },
    }
    path = tmp_path / "sweep.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def _edit(path: Path, **arm_overrides: dict) -> None:
    doc = yaml.safe_load(path.read_text())
    for arm, overrides in arm_overrides.items():
        doc["arms"][arm]["overrides"] = overrides
    path.write_text(yaml.safe_dump(doc, sort_keys=False))


def test_stale_runs_are_listed_refused_and_rerun_only_when_asked(sweep_file: Path, capsys) -> None:
    first = FakeTrain()
    run_sweep(load_sweep(sweep_file), run_fn=first, log=lambda _: None)
    out = load_sweep(sweep_file).output
    _edit(sweep_file, sr={"model.num_memories": 5})  # the sr arm now means something else

    assert sweep_command(str(sweep_file), dry_run=True) == 0
    plan = capsys.readouterr().out
    assert plan.count("[stale]") == 2 and "model.num_memories 4 -> 5" in plan and "2 stale" in plan

    second = FakeTrain()
    with pytest.raises(ValueError, match=r"2 finished run\(s\) do not match.*sr/seed0.*--rerun-stale"):
        run_sweep(load_sweep(sweep_file), run_fn=second, log=lambda _: None)
    assert second.calls == []
    table = aggregate(out, sweep=load_sweep(sweep_file), log=lambda _: None)
    assert "| `sr` | 0 |" in table and "`sr/seed0` (stale: changed: model.num_memories 4 -> 5)" in table

    run_sweep(load_sweep(sweep_file), run_fn=second, log=lambda _: None, rerun_stale=True)
    assert second.calls == ["sr/seed0", "sr/seed1"]
    moved = sorted(p.parent.name + "/" + p.name.split("-")[0] for p in (out / ".stale").glob("*/*"))
    assert moved == ["sr/seed0", "sr/seed1"]  # the old results are kept, out of the way
    assert "| `sr` (screen) | 2 |" in aggregate(out, log=lambda _: None)


def test_a_report_from_the_saved_copy_names_the_recipe_change_and_the_way_out(sweep_file: Path) -> None:
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), log=lambda _: None)
    recipe = Path(load_sweep(sweep_file).arms[0].recipe)
    config = yaml.safe_load(recipe.read_text())
    ran, config["model"]["num_memories"] = config["model"]["num_memories"], 7  # a recipe default changed since
    recipe.write_text(yaml.safe_dump(config))
    table = aggregate(load_sweep(sweep_file).output, log=lambda _: None)  # from <output>/sweep.yaml
    assert "| `base` (baseline) | 0 |" in table and f"model.num_memories {ran} -> 7" in table
    assert "report with -c SWEEP where its file pins what they ran, or rerun with --rerun-stale" in table


def test_result_neutral_keys_and_new_defaults_do_not_make_runs_stale(sweep_file: Path, tmp_path: Path) -> None:
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), log=lambda _: None)
    summary_path = load_sweep(sweep_file).output / "base" / "seed0" / "summary.json"
    summary = json.loads(summary_path.read_text())
    del summary["config"]["train"]["grad_clip"]  # recorded by an older srblock, before the key existed
    summary["config"]["data"]["root"] = "/elsewhere"  # where the data was then
    summary_path.write_text(json.dumps(summary))
    again = FakeTrain()
    assert run_sweep(load_sweep(sweep_file, ["train.workers=0"]), run_fn=again, log=lambda _: None) == []
    assert again.calls == []


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"model.num_memoires": 4}, r"arm 'sr': unknown key model.num_memoires; did you mean 'num_memories'\?"),
        ({"model.regularizer": "dropblok"}, r"arm 'sr': .*dropblok"),  # found by the builder, on the meta device
        ({"data.root": "/no/such/folder"}, r"arm 'sr': data.root /no/such/folder does not exist"),
    ],
)
def test_a_broken_arm_is_named_before_any_run(sweep_file: Path, overrides: dict, message: str, capsys) -> None:
    _edit(sweep_file, sr=overrides)
    train = FakeTrain()
    with pytest.raises(ValueError, match=r"sweep tiny: 1 arm\(s\) cannot run, nothing was started: " + message):
        run_sweep(load_sweep(sweep_file), run_fn=train, log=lambda _: None)
    assert train.calls == [] and not load_sweep(sweep_file).output.exists()
    if "data.root" in overrides:  # --dry-run lists the plan and warns: the data may be mounted later
        assert sweep_command(str(sweep_file), dry_run=True) == 0
        assert re.search("warning: " + message, capsys.readouterr().out)
    else:
        with pytest.raises(ValueError, match=message):
            sweep_command(str(sweep_file), dry_run=True)


def test_a_failing_run_is_named_or_recorded_with_keep_going(sweep_file: Path, capsys) -> None:
    with pytest.raises(RunFailedError, match=r"run sr/seed0 failed: non-finite training loss"):
        sweep_command(str(sweep_file), run_fn=FakeTrain(fail=("sr/seed0",)))
    out = load_sweep(sweep_file).output
    assert not (out / "base" / "seed1").exists()  # stopped there

    train = FakeTrain(fail=("sr/seed0",))
    assert sweep_command(str(sweep_file), run_fn=train, keep_going=True) == 1
    assert train.calls == ["sr/seed0", "base/seed1", "sr/seed1"]  # base/seed0 was done
    failure = json.loads((out / "sr" / "seed0" / "failed.json").read_text())
    assert failure["type"] == "FloatingPointError" and "non-finite" in failure["error"]
    assert sweep_command(str(sweep_file), dry_run=True) == 0
    assert "[failed]" in capsys.readouterr().out

    assert sweep_command(str(sweep_file), run_fn=FakeTrain()) == 0  # retried; the record goes once it succeeds
    assert not (out / "sr" / "seed0" / "failed.json").exists()


def test_a_summary_that_does_not_parse_is_a_failure_not_a_result(sweep_file: Path) -> None:
    def empty_summary(config: dict, output_dir: Path) -> dict:
        (output_dir / "summary.json").write_text("")
        return {}

    with pytest.raises(RunFailedError, match=r"run base/seed0 failed: .*base/seed0/summary.json is damaged"):
        run_sweep(load_sweep(sweep_file), run_fn=empty_summary, log=lambda _: None)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--baseline", "srr"], r"baseline 'srr' is not an arm"),
        (
            ["--metric", "test_acc"],
            r"metric 'test_acc' is not a number in the runs' summary.json; did you mean .*'test_acc1'",
        ),
        (["--set", "model.widht=0.5"], r"unknown key model.widht; did you mean 'width'\?"),
    ],
)
def test_bad_options_are_refused_before_anything_is_written(sweep_file: Path, options: list, message: str, capsys):
    assert main(["sweep", "-c", str(sweep_file), *options]) == 2
    err = error_line(capsys)
    assert re.search(message, err), err
    assert not load_sweep(sweep_file).output.exists()  # no sweep.yaml with the typo in it


def test_bad_report_options_leave_the_tables_alone(sweep_file: Path) -> None:
    run_sweep(load_sweep(sweep_file), run_fn=FakeTrain(), log=lambda _: None)
    out = load_sweep(sweep_file).output
    before = snapshot(out)
    for options in ({"baseline": "nope"}, {"metric": "test_acc5"}):
        with pytest.raises(ValueError, match=r"'nope' is not an arm|'test_acc5' is not a number"):
            sweep_command(report=str(out), **options)
    assert snapshot(out) == before
    assert len(expand_grid(load_sweep(sweep_file))) == 4


# A sweep whose first run replaces every module of the srblock it runs (a copy), as a pull that changed them all would.
SWEEP_WITH_A_PULL = """
import json, sys
from pathlib import Path
from srblock.experiments import load_sweep, run_sweep

def train_then_pull(config, output_dir):
    for source in Path(sys.argv[2]).rglob("*.py"):
        source.write_text("raise RuntimeError('the new source')\\n")
    summary = {"test_acc1": 50.0 + config["seed"], "seed": config["seed"], "config": config}
    (output_dir / "summary.json").write_text(json.dumps(summary))
    return summary

run_sweep(load_sweep(sys.argv[1]), run_fn=train_then_pull, log=lambda _: None)
"""


def test_a_sweep_runs_the_code_it_started_with(sweep_file: Path, tmp_path: Path) -> None:
    package = tmp_path / "src" / "srblock"
    shutil.copytree(Path(srblock.__file__).parent, package, ignore=shutil.ignore_patterns("__pycache__"))
    env = {**os.environ, "PYTHONPATH": str(package.parent), "OMP_NUM_THREADS": "1"}
    argv = [sys.executable, "-c", SWEEP_WITH_A_PULL, str(sweep_file), str(package)]
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]  # its reports import nothing of the new source
    assert "raise RuntimeError" in (package / "io.py").read_text(), "the run replaced the source"
    table = (load_sweep(sweep_file).output / "table.md").read_text()
    assert "| `base` (baseline) | 2 |" in table and "| `sr` (screen) | 2 |" in table
