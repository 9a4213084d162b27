"""The corruption benchmark of trained runs: the end-of-training option, ``srblock robustness RUN`` and ``SWEEP``."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from srblock.analysis.robustness import ROBUSTNESS_FILE, robustness_file, robustness_sweep
from srblock.cli import main
from srblock.data.corruptions import CORRUPTIONS, SEVERITIES
from srblock.engine import load_config

from .conftest import fake_robustness_run

RECIPE = """\
seed: 0
data: {{dataset: npz, root: {root}, val_fraction: 0.25, crop_padding: 1}}
model: {{name: cifar_resnet18, num_classes: 4, width: 0.0625, input_size: [3, 8, 8]}}
optim: {{lr: 0.05, momentum: 0.9}}
schedule: {{milestones: [1]}}
train: {{epochs: 1, batch_size: 24, device: cpu}}
"""


@pytest.fixture(scope="module")
def recipe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny npz dataset (8x8 images, 4 classes) and a one-epoch ResNet-18 recipe on it."""
    root = tmp_path_factory.mktemp("data")
    rng = np.random.default_rng(0)
    for name, n in (("train", 48), ("test", 16)):
        np.savez(root / f"{name}.npz", x=rng.integers(0, 255, (n, 8, 8, 3), dtype=np.uint8), y=np.arange(n) % 4)
    path = root / "tiny.yaml"
    path.write_text(RECIPE.format(root=root))
    return path


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


def _train(recipe: Path, out: Path, cache: Path, *extra: str) -> dict:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRBLOCK_CACHE", str(cache))
        assert main(["train", "-q", "-c", str(recipe), "--output", str(out), *extra]) == 0
    return json.loads((out / "summary.json").read_text())


@pytest.mark.slow
def test_train_robustness_option_stores_the_benchmark_in_the_summary(recipe: Path, cache: Path, tmp_path: Path):
    summary = _train(recipe, tmp_path / "run", cache, "--train.robustness", "true")
    corruption = summary["test_corruption"]
    assert list(corruption["acc1"]) == list(CORRUPTIONS)
    assert all(len(v) == len(SEVERITIES) and all(0 <= a <= 100 for a in v) for v in corruption["acc1"].values())
    mean = np.mean([np.mean(v) for v in corruption["acc1"].values()])
    assert summary["test_corruption_acc1"] == pytest.approx(mean) and corruption["count"] == 16
    assert any(cache.rglob("gaussian_noise-1.npy")), "the corrupted sets are cached"
    # the robustness command reads those numbers back from a run that kept a checkpoint: the same model, same sets
    assert main(["robustness", "-q", str(tmp_path / "run"), "--cache-dir", str(cache / "corruptions")]) == 0
    result = json.loads((tmp_path / "run" / ROBUSTNESS_FILE).read_text())
    assert result["test_corruption"]["acc1"] == corruption["acc1"]
    assert result["clean_acc1"] == pytest.approx(summary["test_acc1"])


options = st.tuples(st.integers(0, 10**6), st.none() | st.integers(1, 10**6))


@given(options, options)
def test_each_seed_and_subset_has_a_result_file_of_its_own(a: tuple, b: tuple) -> None:
    assert (robustness_file(*a) == robustness_file(*b)) == (a == b)
    assert (robustness_file(*a) == ROBUSTNESS_FILE) == (a == (0, None))  # the one a sweep's table reads


def test_robustness_option_is_validated(recipe: Path) -> None:
    assert load_config(recipe)["train"]["robustness"] is False
    with pytest.raises(ValueError, match=r"train\.robustness must be true or false"):
        load_config(recipe, ["train.robustness=yes please"])


def test_robustness_command_on_a_run_prints_the_table(recipe: Path, cache: Path, tmp_path: Path, capsys) -> None:
    run = tmp_path / "run"
    _train(recipe, run, cache)
    capsys.readouterr()
    assert main(["robustness", str(run), "--cache-dir", str(cache / "corruptions")]) == 0
    printed = capsys.readouterr().out
    assert "| gaussian_noise |" in printed and "mCA" in printed
    result = json.loads((run / ROBUSTNESS_FILE).read_text())
    assert result["drop"] == pytest.approx(result["clean_acc1"] - result["test_corruption_acc1"])
    before = (run / ROBUSTNESS_FILE).stat().st_mtime_ns
    assert main(["robustness", "-q", str(run), "--cache-dir", str(cache / "corruptions")]) == 0
    assert (run / ROBUSTNESS_FILE).stat().st_mtime_ns == before, "an existing robustness.json is read, not redone"
    full = (run / ROBUSTNESS_FILE).read_bytes()
    assert main(["robustness", "-q", str(run), "--max-images", "8", "--cache-dir", str(cache / "corruptions")]) == 0
    quick = json.loads((run / "robustness-n8.json").read_text())
    assert quick["max_images"] == 8 and quick["test_corruption"]["count"] == 8, "a subset is scored anew"
    other = ["--seed", "1", "--max-images", "8", "--cache-dir", str(cache / "c1")]
    assert main(["robustness", "-q", str(run), *other]) == 0
    assert json.loads((run / "robustness-seed1-n8.json").read_text())["seed"] == 1
    assert (run / ROBUSTNESS_FILE).read_bytes() == full, "no result replaces another"


def test_robustness_command_refuses_a_folder_without_runs(tmp_path: Path, capsys) -> None:
    assert main(["robustness", str(tmp_path)]) == 2
    assert "neither a run folder" in capsys.readouterr().err


def test_robustness_command_reads_a_run_trained_with_the_option(tmp_path: Path, capsys) -> None:
    fake_robustness_run(tmp_path / "run", 0, clean=90.0, mca=70.0)
    assert main(["robustness", str(tmp_path / "run")]) == 0
    printed = capsys.readouterr().out
    assert "| gaussian_noise | 72.00 | 71.00 | 70.00 | 69.00 | 68.00 | 70.00 |" in printed
    assert "clean top-1 90.00 %, mCA 70.00 %, drop 20.00 pp" in printed
    assert main(["robustness", str(tmp_path / "run"), "--seed", "1"]) == 2, "another corruption seed: no numbers"


def test_sweep_table_pairs_arms_by_seed(tmp_path: Path) -> None:
    for seed in range(3):
        fake_robustness_run(tmp_path / "base" / f"seed{seed}", seed, 90.0 + seed, 70.0 + seed)
        fake_robustness_run(tmp_path / "sr" / f"seed{seed}", seed, 90.5 + seed, 71.0 + seed + 0.1 * seed)
        summary_path = tmp_path / "sr" / f"seed{seed}" / "summary.json"
        summary = json.loads(summary_path.read_text())
        summary["test_corruption"]["by_severity"][4] += 1.0  # SR ahead by 1 pp more at severity 5
        summary_path.write_text(json.dumps(summary))
    (tmp_path / "sr" / "seed9").mkdir()
    (tmp_path / "sr" / "seed9" / "summary.json").write_text(json.dumps({"seed": 9, "test_acc1": 50.0}))
    text = robustness_sweep(tmp_path, log=lambda _: None)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    assert "`base` (baseline)" in rows, "without a baseline: the first arm"
    sr = [c.strip() for c in rows["`sr` (screen)"].split("|")[1:-1]]
    assert sr[1] == "3" and sr[3].startswith("+0.50") and sr[5].startswith("+1.10")  # Δ clean, Δ mCA (paired)
    assert "sign 3/3" in sr[6]
    assert "| gaussian_noise | 71.00 | +1.10" in text, "per-corruption Δ is paired too"
    assert "| 1 | 73.00 | +1.10" in text and "| 5 | 69.00 | +2.10" in text, "per severity, each in its row"
    assert "Left out" in text and "`sr/seed9`" in text
    assert (tmp_path / "robustness.md").read_text() == text


def test_sweep_table_marks_arms_as_the_sweep_table_does(tmp_path: Path) -> None:
    for seed in range(4):
        fake_robustness_run(tmp_path / "base" / f"seed{seed}", seed, 90.0, 70.0)
        fake_robustness_run(tmp_path / "sr" / f"seed{seed}", seed, 90.0, 71.0 + 0.1 * seed)
    for seed in range(2):
        fake_robustness_run(tmp_path / "few" / f"seed{seed}", seed, 90.0, 71.0 + 0.1 * seed)
    planned = {"base": 5, "sr": 4, "few": 5}
    text = robustness_sweep(tmp_path, baseline="base", planned=planned, log=lambda _: None)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| `")}
    assert set(rows) == {"`base` (baseline, partial)", "`sr`", "`few` (screen)"}, "a screen is not also partial"
    assert "– (screen, 2)" in rows["`few` (screen)"] and "– (screen" not in rows["`sr`"]
    assert "(partial): arm(s) holding fewer of the sweep's seeds than it plans (`base` 4 of 5)" in text
    assert "(screen): arm(s) with 3 runs or fewer (`few`)" in text
    unplanned = robustness_sweep(tmp_path, baseline="base", log=lambda _: None)
    assert "partial" not in unplanned and "`few` (screen)" in unplanned, "no plan: nothing is short of it"


def test_robustness_command_reads_the_plan_of_a_sweep_folder(recipe: Path, tmp_path: Path, capsys) -> None:
    """``srblock robustness SWEEP`` takes the baseline and each arm's planned seeds from the sweep's copy."""
    for arm, mca in (("a", 70.0), ("b", 71.0)):
        for seed in range(4):
            fake_robustness_run(tmp_path / arm / f"seed{seed}", seed, 90.0, mca + 0.1 * seed)
    doc = {"name": "rob", "output": str(tmp_path), "metric": "test_acc1", "baseline": "b", "seeds": [0, 1, 2, 3, 4]}
    doc["arms"] = {"a": {"recipe": str(recipe)}, "b": {"recipe": str(recipe), "seeds": [0, 1, 2, 3]}}
    (tmp_path / "sweep.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    assert main(["robustness", str(tmp_path)]) == 0
    text = (tmp_path / "robustness.md").read_text()
    assert "| `b` (baseline) | 4 |" in text and "| `a` (partial) | 4 |" in text and capsys.readouterr().out
    assert main(["robustness", str(tmp_path), "--baseline", "a"]) == 0
    assert "| `a` (baseline, partial) | 4 |" in (tmp_path / "robustness.md").read_text()


@pytest.mark.slow
def test_sweep_command_scores_runs_that_kept_a_checkpoint(recipe: Path, cache: Path, tmp_path: Path) -> None:
    sweep = tmp_path / "sweep"
    for arm, lr in (("a", "0.05"), ("b", "0.01")):
        for seed in (0, 1):
            _train(recipe, sweep / arm / f"seed{seed}", cache, "--seed", str(seed), "--optim.lr", lr)
    shutil.copy(sweep / "a" / "seed0" / "summary.json", tmp_path / "kept.json")
    assert main(["robustness", "-q", str(sweep), "--baseline", "b", "--cache-dir", str(cache / "corruptions")]) == 0
    assert all((sweep / arm / f"seed{s}" / ROBUSTNESS_FILE).is_file() for arm in "ab" for s in (0, 1))
    text = (sweep / "robustness.md").read_text()
    assert "`b` (baseline)" in text and "| `a` | 2 |" in text


def test_a_resumed_run_may_switch_the_benchmark_on(recipe: Path, cache: Path, tmp_path: Path) -> None:
    from srblock.engine import train

    out = tmp_path / "run"
    train(load_config(recipe, ["train.epochs=2"]), out, stop_after=1, quiet=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRBLOCK_CACHE", str(cache))
        config = load_config(recipe, ["train.epochs=2", "train.robustness=true"])
        summary = train(config, out, resume=True, quiet=True)
    assert summary["test_corruption_acc1"] is not None
    assert summary["config_changes"][0]["changes"] == {"train.robustness": [False, True]}


def test_sweep_report_compares_arms_on_mca(tmp_path: Path) -> None:
    from srblock.experiments.sweep import aggregate

    for seed in range(2):
        fake_robustness_run(tmp_path / "base" / f"seed{seed}", seed, 90.0, 70.0 + seed)
        fake_robustness_run(tmp_path / "sr" / f"seed{seed}", seed, 90.0, 70.5 + seed)
    table = aggregate(tmp_path, metric="test_corruption_acc1", baseline="base", log=lambda _: None)
    assert "test_corruption_acc1 mean ± std" in table and "| `sr` (screen) | 2 | 71.00 ± 0.71 |" in table


def test_jpeg_grid_benchmark_on_a_run(recipe: Path, cache: Path, tmp_path: Path) -> None:
    import subprocess
    import sys

    run, out = tmp_path / "run", tmp_path / "grid.json"
    summary = _train(recipe, run, cache)
    script = Path(__file__).resolve().parents[2] / "benchmarks" / "jpeg_grid.py"
    cmd = [sys.executable, str(script), str(run), "--device", "cpu", "--qualities", "90", "10", "--shifts", "0", "4"]
    subprocess.run([*cmd, "--out", str(out)], check=True, capture_output=True, timeout=300)
    rows = json.loads(out.read_text())["rows"]
    assert [(r["shift"], r["quality"]) for r in rows] == [(None, None), (0, 90), (0, 10), (4, 90), (4, 10)]
    assert rows[0]["acc1"] == pytest.approx(summary["test_acc1"]) and rows[0]["rms"] == 0
    assert 0 < rows[1]["rms"] < rows[2]["rms"] and 0 < rows[3]["rms"] < rows[4]["rms"]
    assert all(0 <= r["acc1"] <= 100 for r in rows)
    bad = subprocess.run([*cmd[:-2], "8"], capture_output=True, text=True, timeout=300)
    assert bad.returncode != 0 and "--shifts must lie in 0..7 (the JPEG block is 8 pixels), got [8]" in bad.stderr


def test_a_robustness_sweep_tables_the_mca_with_every_table(recipe: Path, cache: Path, tmp_path: Path) -> None:
    """As cifar10_cpu_w25_robustness runs: train.robustness in every run, test_corruption_acc1 a report metric, so
    table-test_corruption_acc1.md holds each finished run's mCA, paired by seed."""
    from srblock.experiments import load_sweep, run_sweep

    doc = {"name": "rob", "output": str(tmp_path / "out"), "baseline": "a", "seeds": [0, 1]}
    doc |= {"report_metrics": ["test_corruption_acc1"], "overrides": {"train.robustness": True}}
    doc["arms"] = {"a": {"recipe": str(recipe)}, "b": {"recipe": str(recipe), "overrides": {"optim.lr": 0.01}}}
    (tmp_path / "rob.yaml").write_text(yaml.safe_dump(doc))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("SRBLOCK_CACHE", str(cache))
        run_sweep(load_sweep(tmp_path / "rob.yaml"), log=lambda _: None)
    mca = {
        arm: [json.loads((tmp_path / "out" / arm / f"seed{s}" / "summary.json").read_text()) for s in (0, 1)]
        for arm in ("a", "b")
    }
    table = (tmp_path / "out" / "table-test_corruption_acc1.md").read_text()
    row = next(line for line in table.splitlines() if line.startswith("| `b`"))
    delta = np.mean([mca["b"][s]["test_corruption_acc1"] - mca["a"][s]["test_corruption_acc1"] for s in (0, 1)])
    assert row.split("|")[2].strip() == "2" and f"{delta:+.2f}" in row
    # robustness.md comes with every table too, from the summaries alone (no checkpoint kept), with the same Δ mCA
    text = (tmp_path / "out" / "robustness.md").read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `b`"))
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[:2] == ["`b` (screen)", "2"] and cells[5].startswith(f"{delta:+.2f}") and "partial" not in text
    # the sweep's refresh reads its own finished runs only, as table.md does: not a folder of an arm it does not plan
    from srblock.experiments.sweep import report_tables

    fake_robustness_run(tmp_path / "out" / "c" / "seed0", 0, 90.0, 70.0)
    report_tables(tmp_path / "out", log=lambda _: None)
    assert "`c`" not in (tmp_path / "out" / "robustness.md").read_text()
    assert "`c`" in robustness_sweep(tmp_path / "out", log=lambda _: None), "without the sweep every run folder counts"
    # before the baseline has a finished run (another order of arms, --arms b) the refresh waits, saying why
    (tmp_path / "out" / "a").rename(tmp_path / "a-elsewhere")
    said: list[str] = []
    report_tables(tmp_path / "out", log=said.append)
    assert "robustness: robustness.md not written yet: baseline 'a' has no scored runs" in "\n".join(said)
