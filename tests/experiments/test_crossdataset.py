"""The cross-dataset report over baseline-vs-SR sweep folders (srblock.experiments.crossdataset, `srblock compare`)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from srblock.cli import main
from srblock.engine.config import apply_overrides
from srblock.experiments.crossdataset import compare_sweeps, format_report, read_pairs


def _fake_load(recipe: str, overrides) -> dict:
    """Stand-in for the engine's load_config: the recipe name ``<dataset>_<model>[_sr]`` gives the config."""
    dataset, model, *sr = recipe.split("_")
    config = {"data": {"name": dataset}, "model": {"name": f"tsc_{model}", **({"sr_stage": 3} if sr else {})}}
    return apply_overrides(config, overrides)


def make_sweep(
    root: Path,
    dataset: str,
    model: str,
    base: dict[int, float],
    sr: dict[int, float],
    *,
    time: float = 2.0,
    block1: dict[int, float] | None = None,
) -> Path:
    """A sweep folder as `srblock sweep` leaves it: sweep.yaml and <arm>/seed<N>/summary.json; ``block1``: the
    scores of a third arm, ``<baseline>-sr-m1`` (SR after block 1)."""
    folder = root / f"{dataset.lower()}-{model}"
    arms = {
        f"{dataset}-{model}": (f"{dataset}_{model}", base, []),
        f"{dataset}-{model}-sr": (f"{dataset}_{model}_sr", sr, []),
    }
    if block1 is not None:
        arms[f"{dataset}-{model}-sr-m1"] = (f"{dataset}_{model}_sr", block1, ["model.sr_stage=1"])
    doc = {
        "name": f"timeseries-{folder.name}",
        "output": str(folder),
        "metric": "test_acc1",
        "baseline": f"{dataset}-{model}",
        "seeds": sorted(set(base) | set(sr)),
        "arms": {arm: {"recipe": recipe, "seeds": sorted(scores), "overrides": dict(o.split("=") for o in extra)}
                 for arm, (recipe, scores, extra) in arms.items()},
    }  # fmt: skip
    folder.mkdir(parents=True)
    (folder / "sweep.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    for arm, (recipe, scores, extra) in arms.items():
        for seed, acc in scores.items():
            run = folder / arm / f"seed{seed}"
            run.mkdir(parents=True)
            is_sr = recipe.endswith("_sr")
            summary = {
                "test_acc1": acc,
                "epochs": 50.0,
                "params": 1000 + 300 * is_sr,
                "sr_params": 300 * is_sr,
                "wall_time_s": time * (1.5 if is_sr else 1.0),
                "seed": seed,
                "config": _fake_load(recipe, [*extra, f"seed={seed}"]),
            }
            if is_sr:
                summary["sr_dynamics"] = {"block3.sr.routing_entropy": 0.25, "block3.sr.memory_ratio": 0.5}
            (run / "summary.json").write_text(json.dumps(summary))
    return folder


def _row(report: str, dataset: str, model: str) -> list[str]:
    line = next(ln for ln in report.splitlines() if ln.startswith(f"| {dataset}") and f"| {model} |" in ln)
    return [c.strip() for c in line.strip("|").split("|")]


def test_pairs_by_seed_and_matches_scipy_paired_interval(tmp_path):
    base = {0: 90.0, 1: 91.0, 2: 89.5, 3: 90.5, 4: 92.0}  # seed 4 has no SR twin, seed 5 no baseline
    sr = {0: 90.8, 1: 91.2, 2: 90.9, 3: 90.6, 5: 80.0}
    (pair,) = read_pairs(make_sweep(tmp_path, "ArrowHead", "fcn", base, sr), load_fn=_fake_load)
    keys = [0, 1, 2, 3]
    res = stats.ttest_rel([sr[k] for k in keys], [base[k] for k in keys])
    ci = res.confidence_interval(0.95)
    assert (pair.dataset, pair.model, pair.paired.n) == ("ArrowHead", "fcn", 4)
    assert pair.paired.delta == pytest.approx(np.mean([sr[k] - base[k] for k in keys]))
    assert (pair.paired.ci_low, pair.paired.ci_high) == pytest.approx((ci.low, ci.high))
    assert (pair.sign.wins, pair.sign.n) == (4, 4)
    assert pair.means() == pytest.approx((np.mean([base[k] for k in keys]), np.mean([sr[k] for k in keys])))
    assert pair.time_ratio == pytest.approx(1.5) and pair.sr_params == 300 and pair.entropy == "0.250"
    assert (pair.base_seconds, pair.sr_seconds) == pytest.approx((5 * 2.0, 5 * 3.0))  # every finished run
    hours = dataclasses.replace(pair, base_seconds=3600.0, sr_seconds=5400.0)
    assert "Compute: 10 finished runs, 2.5 hours of run time" in format_report([hours], cd=None)


def test_wilcoxon_across_datasets_matches_scipy_and_screens_stay_out(tmp_path):
    deltas = {"ArrowHead": 0.4, "GunPoint": -0.2, "OSULeaf": 0.9, "ACSF1": 0.3}
    means = {}
    for i, (dataset, d) in enumerate(deltas.items()):
        base = {s: 80.0 + i + 0.3 * s for s in range(4)}  # 4 pairs: more than a screen
        sr = {s: v + d + 0.05 * s for s, v in base.items()}
        make_sweep(tmp_path, dataset, "fcn", base, sr)
        means[dataset] = (np.mean(list(base.values())), np.mean(list(sr.values())))
    make_sweep(tmp_path, "JapaneseVowels", "fcn", {0: 99.0, 1: 98.0}, {0: 50.0})  # one pair: a screen
    report, written = compare_sweeps([tmp_path], tmp_path / "out", load_fn=_fake_load)
    expected = stats.wilcoxon([m[1] for m in means.values()], [m[0] for m in means.values()])
    fcn = next(ln for ln in report.splitlines() if ln.startswith("| FCN+SR | "))
    assert fcn.split(" | ")[1:5] == ["4", "3", "1", "0"]  # datasets, SR above, below, ties: the screen is out
    assert f"| {expected.statistic:.1f} | {expected.pvalue:.3g} |" in fcn
    assert _row(report, "JapaneseVowels (screen)", "FCN")[4] == "1"
    assert written == [tmp_path / "out" / "crossdataset.md"]  # one model: no diagram
    assert "Not drawn" in report


def test_critical_difference_diagram_over_the_four_estimators(tmp_path):
    rng = np.random.default_rng(0)
    for dataset in ("ArrowHead", "GunPoint", "OSULeaf", "ACSF1", "BasicMotions"):
        for model in ("fcn", "resnet"):
            base = {s: float(80 + rng.normal()) for s in range(4)}
            make_sweep(tmp_path, dataset, model, base, {s: v + float(rng.normal()) for s, v in base.items()})
    make_sweep(  # tested (4 pairs), but it has no ResNet sweep: not in the diagram
        tmp_path, "JapaneseVowels", "fcn", {0: 99.0, 1: 98.0, 2: 97.0, 3: 98.5}, {0: 99.0, 1: 99.5, 2: 97.5, 3: 98.0}
    )
    report, written = compare_sweeps([tmp_path], tmp_path, load_fn=_fake_load)
    assert written == [tmp_path / "crossdataset.md", tmp_path / "cd.png"]
    assert (tmp_path / "cd.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "over 5 datasets (ACSF1, ArrowHead, BasicMotions, GunPoint, OSULeaf)" in report
    assert "Holm" in report and "estimators FCN, FCN+SR, ResNet, ResNet+SR" in report and "Friedman" in report
    assert "| SR pooled (every dataset × model) | 11 |" in report
    # written by us, so a second report replaces both; a sub-folder arg works like the parent
    compare_sweeps(sorted(p for p in tmp_path.iterdir() if p.is_dir()), tmp_path, load_fn=_fake_load)


def test_baseline_against_the_published_mean(tmp_path):
    make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})  # review: 100.0 (10 runs)
    make_sweep(tmp_path, "ArrowHead", "fcn", {0: 84.0, 1: 83.0}, {0: 84.0, 1: 84.0})  # review: 84.3 (10 runs)
    make_sweep(tmp_path, "ACSF1", "fcn", {0: 80.0, 1: 82.0}, {0: 80.0, 1: 81.0})  # dl-4-tsc: 89.8 (5 runs)
    make_sweep(tmp_path, "BasicMotions", "fcn", {0: 80.0, 1: 82.0}, {0: 80.0, 1: 81.0})  # nothing published
    report, _ = compare_sweeps([tmp_path], tmp_path / "out", load_fn=_fake_load)
    assert _row(report, "GunPoint", "FCN")[10:12] == ["100.0 ± 0.0 (10)", "-3.00 **> 2 pp**"]
    assert _row(report, "ArrowHead", "FCN")[10:12] == ["84.3 ± 1.5 (10)", "-0.80"]
    assert _row(report, "ACSF1", "FCN")[10:12] == ["89.8 ± 1.6 (5)", "-8.80 (5 runs)"]
    assert _row(report, "BasicMotions", "FCN")[10:12] == ["–", "–"]


def test_a_folder_that_is_not_a_sweep_is_one_clear_line(tmp_path, capsys):
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match=r"plain is not a sweep output folder .*sweep\.yaml"):
        compare_sweeps([tmp_path / "plain"], tmp_path, load_fn=_fake_load)
    assert main(["compare", str(tmp_path / "plain"), "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a sweep output folder" in err


def test_a_report_of_the_users_is_never_replaced(tmp_path):
    make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "crossdataset.md").write_text("my notes\n")
    with pytest.raises(FileExistsError, match="not written by srblock"):
        compare_sweeps([tmp_path / "gunpoint-fcn"], tmp_path / "out", load_fn=_fake_load)
    assert (tmp_path / "out" / "crossdataset.md").read_text() == "my notes\n"


def test_a_stale_run_is_left_out_of_the_pairs_and_named(tmp_path):
    folder = make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0, 2: 96.0}, {0: 98.0, 1: 97.0, 2: 10.0})
    summary_path = folder / "GunPoint-fcn-sr" / "seed2" / "summary.json"
    summary = json.loads(summary_path.read_text())
    summary["config"]["model"]["sr_stage"] = 2  # trained with another config than the sweep's arm now gives
    summary_path.write_text(json.dumps(summary))
    (pair,) = read_pairs(folder, load_fn=_fake_load)
    assert sorted(pair.sr) == [0, 1] and pair.paired.n == 2
    report, _ = compare_sweeps([folder], tmp_path / "out", load_fn=_fake_load)
    assert "Left out (1;" in report and "GunPoint-fcn-sr/seed2" in report


def test_cli_writes_into_the_folders_parent_by_default(tmp_path, monkeypatch, capsys):
    from srblock.experiments import crossdataset

    real = crossdataset.compare_sweeps
    monkeypatch.setattr(crossdataset, "compare_sweeps", lambda f, o: real(f, o, load_fn=_fake_load))
    make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})
    make_sweep(tmp_path, "ArrowHead", "fcn", {0: 84.0, 1: 83.0}, {0: 84.0, 1: 84.0})
    assert main(["compare", str(tmp_path / "gunpoint-fcn"), str(tmp_path / "arrowhead-fcn")]) == 0
    assert (tmp_path / "crossdataset.md").read_text().startswith("# Cross-dataset report: 2 sweeps")
    assert main(["compare", str(tmp_path)]) == 0  # the folder of sweep folders: the same place, replaced (ours)
    assert "wrote " + str(tmp_path / "crossdataset.md") in capsys.readouterr().out


def test_a_later_report_without_a_diagram_removes_the_earlier_diagram(tmp_path):
    rng = np.random.default_rng(1)
    for dataset in ("ArrowHead", "GunPoint"):
        for model in ("fcn", "resnet"):
            base = {s: float(80 + rng.normal()) for s in range(4)}
            make_sweep(tmp_path / "runs", dataset, model, base, {s: v + float(rng.normal()) for s, v in base.items()})
    _, written = compare_sweeps([tmp_path / "runs"], tmp_path, load_fn=_fake_load)
    assert tmp_path / "cd.png" in written
    report, written = compare_sweeps([tmp_path / "runs" / "arrowhead-fcn"], tmp_path, load_fn=_fake_load)
    assert written == [tmp_path / "crossdataset.md"] and not (tmp_path / "cd.png").exists()
    assert "cd.png" not in report
    (tmp_path / "cd.png").write_bytes(b"someone's own picture")  # not ours: refused, nothing replaced
    with pytest.raises(FileExistsError, match=r"cd\.png"):
        compare_sweeps([tmp_path / "runs" / "arrowhead-fcn"], tmp_path, load_fn=_fake_load)
    assert (tmp_path / "cd.png").read_bytes() == b"someone's own picture"


def test_a_sweep_without_finished_runs_is_named_not_tabled(tmp_path):
    make_sweep(tmp_path, "ArrowHead", "fcn", {0: 90.0, 1: 91.0, 2: 89.5, 3: 90.5}, {0: 90.8, 1: 91.2, 2: 90.9, 3: 90.6})
    waiting = make_sweep(tmp_path, "GunPoint", "fcn", {0: 99.0}, {0: 99.0})
    (waiting / "GunPoint-fcn-sr" / "seed0" / "summary.json").unlink()  # its baseline run has finished
    report, _ = compare_sweeps([tmp_path], tmp_path, load_fn=_fake_load)
    assert "No finished run yet (1, not in the table): gunpoint-fcn." in report
    assert "Compute: 9 finished runs" in report  # the waiting sweep's baseline run counts
    assert "gunpoint" not in report.split("No finished run yet")[0].lower()
    assert _row(report, "ArrowHead", "FCN")[4] == "4"


def test_a_second_sr_arm_is_its_own_row_test_and_estimator(tmp_path):
    rng = np.random.default_rng(2)
    for dataset in ("ArrowHead", "GunPoint", "OSULeaf"):
        for model in ("fcn", "resnet"):
            base = {s: float(80 + rng.normal()) for s in range(4)}
            sr = {s: v + float(rng.normal()) for s, v in base.items()}
            make_sweep(tmp_path, dataset, model, base, sr, block1={s: v + 1.0 + 0.1 * s for s, v in base.items()})
    report, written = compare_sweeps([tmp_path], tmp_path, load_fn=_fake_load)
    row = next(ln for ln in report.splitlines() if ln.startswith("| GunPoint | FCN | SR m1 (block 1, P"))
    assert [c.strip() for c in row.strip("|").split("|")][4:5] == ["4"]  # its pairs
    assert "| FCN+SR m1 | 3 | 3 | 0 | 0 |" in report  # above its baseline on every dataset
    assert (
        "| SR m1 pooled (every dataset × model) | 6 |" in report
        and "| SR pooled (every dataset × model) | 6 |" in report
    )
    assert "estimators FCN, FCN+SR, FCN+SR m1, ResNet, ResNet+SR, ResNet+SR m1" in report
    assert "Compute: 72 finished runs" in report and report.startswith("# Cross-dataset report: 6 sweeps")
    assert tmp_path / "cd.png" in written


def test_one_sweep_named_twice_under_other_spellings_is_read_once(tmp_path, monkeypatch):
    make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})
    monkeypatch.chdir(tmp_path)
    again = [Path("gunpoint-fcn"), tmp_path / "gunpoint-fcn" / ".." / "gunpoint-fcn"]
    report, _ = compare_sweeps([tmp_path, *again], tmp_path / "out", load_fn=_fake_load)
    assert report.startswith("# Cross-dataset report: 1 sweeps")
    other = make_sweep(tmp_path / "other", "GunPoint", "fcn", {0: 96.0}, {0: 95.0})  # a second sweep: refused
    with pytest.raises(ValueError, match=r"one sweep per dataset × model; GunPoint × fcn comes from two: .*other"):
        compare_sweeps([tmp_path, other], tmp_path / "out", load_fn=_fake_load)


def test_a_run_without_a_number_for_the_metric_is_left_out_and_named(tmp_path):
    base = {0: 97.0, 1: 97.0, 2: 96.0, 3: 95.0, 4: 96.5}
    folder = make_sweep(tmp_path, "GunPoint", "fcn", base, {0: 98.0, 1: 97.0, 2: 99.0, 3: 96.0, 4: 97.5})
    for seed, value in ((2, None), (3, float("nan"))):  # NaN: written as null by srblock, as NaN by json.dumps
        path = folder / "GunPoint-fcn-sr" / f"seed{seed}" / "summary.json"
        path.write_text(json.dumps({**json.loads(path.read_text()), "test_acc1": value}))
    (pair,) = read_pairs(folder, load_fn=_fake_load)
    assert sorted(pair.sr) == [0, 1, 4] and (pair.sign.wins, pair.sign.n) == (2, 2)  # seed 1: a tie
    report, _ = compare_sweeps([folder], tmp_path / "out", load_fn=_fake_load)
    assert (
        "GunPoint-fcn-sr/seed2" in report and "GunPoint-fcn-sr/seed3" in report and "no number for test_acc1" in report
    )


def test_an_sr_arm_whose_baseline_has_no_run_yet_shows_no_published_difference(tmp_path):
    folder = make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})
    for seed in (0, 1):
        (folder / "GunPoint-fcn" / f"seed{seed}" / "summary.json").unlink()
    report, _ = compare_sweeps([folder], tmp_path / "out", load_fn=_fake_load)
    row = _row(report, "GunPoint (screen)", "FCN")
    assert row[4:8] == ["0", "– ± –", "97.50 ± 0.71", "–"] and row[10:12] == ["100.0 ± 0.0 (10)", "–"]


def test_the_screen_line_counts_sr_arms(tmp_path):
    make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0}, block1={0: 96.0, 1: 97.0})
    report, _ = compare_sweeps([tmp_path], tmp_path / "out", load_fn=_fake_load)
    assert "(screen): 2 SR arms (of 1 dataset × model) with 3 pairs or fewer" in report


def test_cli_default_output_does_not_move_when_a_folder_is_named_twice(tmp_path, monkeypatch):
    from srblock.experiments import crossdataset

    real = crossdataset.compare_sweeps
    monkeypatch.setattr(crossdataset, "compare_sweeps", lambda f, o: real(f, o, load_fn=_fake_load))
    runs = tmp_path / "runs"
    make_sweep(runs, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})
    for folders in ([runs, runs], [runs, runs / "gunpoint-fcn"]):  # as `srblock compare runs` alone: into runs
        assert main(["compare", *map(str, folders)]) == 0
        assert (runs / "crossdataset.md").is_file() and not (tmp_path / "crossdataset.md").exists()
        (runs / "crossdataset.md").unlink()


def test_sweeps_of_different_metrics_are_not_mixed(tmp_path):
    make_sweep(tmp_path, "GunPoint", "fcn", {0: 97.0, 1: 97.0}, {0: 98.0, 1: 97.0})
    last = make_sweep(tmp_path, "ArrowHead", "fcn", {0: 84.0, 1: 83.0}, {0: 84.0, 1: 84.0})
    doc = yaml.safe_load((last / "sweep.yaml").read_text())
    (last / "sweep.yaml").write_text(yaml.safe_dump({**doc, "metric": "test_acc1_last"}, sort_keys=False))
    with pytest.raises(
        ValueError, match=r"one metric .*; they use test_acc1_last \(.*arrowhead-fcn\), test_acc1 \(.*gunpoint-fcn\)$"
    ):
        compare_sweeps([tmp_path], tmp_path / "out", load_fn=_fake_load)


def test_equal_means_summed_in_another_order_tie_in_the_ranks_and_the_wilcoxon(tmp_path):
    # 0.1 + 0.2 + 0.3 != 0.3 + 0.2 + 0.1 in floating point: the same scores over seeds must still be one mean
    values, swapped = [99.1, 99.2, 99.3, 99.4], [99.1, 99.2, 99.4, 99.3]
    folder = make_sweep(tmp_path, "GunPoint", "fcn", dict(enumerate(values)), dict(enumerate(swapped)))
    (pair,) = read_pairs(folder, load_fn=_fake_load)
    assert np.mean(values) != np.mean(swapped)  # the float noise the rounding removes
    base, sr = pair.means()
    assert base == sr
    from srblock.experiments.crossdataset import cd_scores, wilcoxon_over

    row = wilcoxon_over([pair], "FCN+SR")
    assert (row.above, row.below, row.ties) == (0, 0, 1)
    _, _, scores = cd_scores([pair])
    assert scores[0, 0] == scores[0, 1]  # tied scores get tied ranks in the Friedman test and the diagram


def test_average_ranks_put_the_best_first_and_share_ties():
    from srblock.experiments.crossdataset import average_ranks

    scores = np.array([[90.0, 80.0, 70.0], [60.0, 75.0, 75.0]])  # dataset 2: the last two tie for rank 1.5
    np.testing.assert_allclose(average_ranks(scores), [(1 + 3) / 2, (2 + 1.5) / 2, (3 + 1.5) / 2])


def test_the_report_states_the_diagrams_average_ranks(tmp_path):
    for i, dataset in enumerate(("ArrowHead", "GunPoint", "OSULeaf")):
        for model, offset in (("fcn", 0.0), ("resnet", 1.0)):  # ResNet above FCN, SR below each, on every dataset
            base = {s: 80.0 + i + offset + 0.1 * s for s in range(4)}
            make_sweep(tmp_path, dataset, model, base, {s: v - 2.0 for s, v in base.items()})
    report, _ = compare_sweeps([tmp_path], tmp_path, load_fn=_fake_load)
    # per dataset: ResNet 81.x, FCN 80.x, ResNet+SR 79.x, FCN+SR 78.x -> ranks 1, 2, 3, 4 on all three
    assert "Average rank (1 = best): ResNet 1.00, FCN 2.00, ResNet+SR 3.00, FCN+SR 4.00." in report
