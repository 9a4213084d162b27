"""Each arm's step time against its control's (``srblock sweep -c SWEEP --time-arms``) and its columns in the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from srblock.cli import main
from srblock.experiments import latency, load_sweep, run_sweep
from srblock.experiments.sweep import aggregate


@pytest.fixture
def blocks(tmp_path: Path, tiny_recipe: Path) -> Path:
    """A sweep file of plug-in blocks at batch 4: none, SE, SR, and SR+SE whose control is SE."""
    arms = {
        "none": {"recipe": str(tiny_recipe)},
        "se": {"recipe": str(tiny_recipe), "overrides": {"model.attention": "se"}},
        "sr": {"recipe": str(tiny_recipe), "overrides": {"model.sr_stage": 3}},
        "se-sr": {"recipe": str(tiny_recipe), "overrides": {"model.attention": "se", "model.sr_stage": 3}},
    }
    arms["se-sr"]["baseline"] = "se"
    doc = {"name": "blocks", "output": str(tmp_path / "out"), "baseline": "none", "seeds": [0, 1]}
    doc |= {"overrides": {"train.batch_size": 4}, "arms": arms}
    path = tmp_path / "blocks.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def test_each_arm_is_timed_against_its_own_control_round_by_round(blocks, monkeypatch):
    """Ratios are medians of per-round ratios to the arm's control (its 'baseline:' or the sweep's), so a round
    where the machine was slow for every arm does not move them."""
    rounds = {"none": [1.0, 2.0, 1.0], "se": [1.5, 3.0, 1.2], "sr": [1.1, 2.2, 1.3], "se-sr": [3.0, 3.3, 1.8]}
    calls = []

    def fake_timings(steps, *, repeats, warmup, device):
        calls.append((sorted(steps), repeats, warmup))
        return {arm: list(times) for arm, times in rounds.items()}

    monkeypatch.setattr(latency, "interleaved_timings", fake_timings)
    result = latency.measure_latency(load_sweep(blocks), repeats=3, warmup=0)
    assert calls == [(sorted(rounds), 3, 0)] * 2  # train, then eval: every arm in one interleaved run
    arms = result["arms"]
    assert arms["none"] == {"control": "none", "train": 1.0, "eval": 1.0, "train_ms": 1000.0, "eval_ms": 1000.0}
    assert arms["sr"]["control"] == "none" and arms["sr"]["train"] == pytest.approx(1.1)  # median of 1.1, 1.1, 1.3
    assert arms["se-sr"]["control"] == "se" and arms["se-sr"]["train"] == pytest.approx(1.5)  # 2.0, 1.1, 1.5
    assert result["batch"] == 4 and result["repeats"] == 3 and result["sweep"] == "blocks"


def test_time_arms_writes_latency_json_and_the_table_shows_it(blocks, capsys):
    sweep = load_sweep(blocks)

    def fake_train(config: dict, output_dir: Path) -> dict:
        summary = {"test_acc1": 90.0 + config["seed"], "seed": config["seed"], "wall_time_s": 1.0, "config": config}
        (output_dir / "summary.json").write_text(json.dumps(summary))
        return summary

    run_sweep(sweep, run_fn=fake_train, log=lambda _: None)
    assert main(["sweep", "-c", str(blocks), "--time-arms"]) == 0
    out = sweep.output
    timed = json.loads((out / "latency.json").read_text())
    assert set(timed["arms"]) == {"none", "se", "sr", "se-sr"} and timed["arms"]["none"]["train"] == 1.0
    assert all(row["train_ms"] > 0 and row["eval_ms"] > 0 for row in timed["arms"].values())
    assert "latency.json" in (out / ".srblock-owned.json").read_text()
    table = (out / "table.md").read_text()
    header = next(line for line in table.splitlines() if line.startswith("| arm"))
    assert header.endswith("| train step × | inference × |")
    sr_row = next(line for line in table.splitlines() if line.startswith("| `sr`"))
    assert sr_row.endswith(f"| {timed['arms']['sr']['train']:.2f} | {timed['arms']['sr']['eval']:.2f} |")
    assert "at batch 4 in turn (`latency.json`" in table
    assert "wrote" in capsys.readouterr().out


def test_an_arm_the_timing_does_not_know_shows_a_dash_and_a_foreign_file_is_refused(blocks):
    sweep = load_sweep(blocks)
    sweep.output.mkdir(parents=True)
    (sweep.output / "latency.json").write_text("{}")  # not written by srblock
    with pytest.raises(FileExistsError):
        latency.write_latency(sweep)
    assert (sweep.output / "latency.json").read_text() == "{}"
    timed = {"repeats": 3, "batch": 4, "device": "cpu", "threads": 1, "torch": "x"}
    timed["arms"] = {"none": {"train": 1.0, "eval": 1.0}}  # from before the other arms were added
    (sweep.output / "latency.json").write_text(json.dumps(timed))
    sweep.output.joinpath("none", "seed0").mkdir(parents=True)
    summary = {"test_acc1": 90.0, "seed": 0, "wall_time_s": 1.0}
    sweep.output.joinpath("none", "seed0", "summary.json").write_text(json.dumps(summary))
    table = aggregate(sweep.output, sweep=sweep, log=lambda _: None, load_fn=lambda recipe, o: {})
    assert next(line for line in table.splitlines() if line.startswith("| `se`")).endswith("| – | – |")
