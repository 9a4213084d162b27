"""The trend over ordered arms: the per-seed slope test against scipy, and ``srblock trend`` on a small fake sweep."""

from __future__ import annotations

import dataclasses
import json
import math
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from srblock.analysis.plots import is_png
from srblock.analysis.stats import paired_trend
from srblock.cli import main
from srblock.experiments import load_sweep, run_sweep, sweep_command
from srblock.experiments.sweep import read_sweep_copy
from srblock.experiments.trend import parse_levels, report_trends, trend_figure, trend_report

NOISE = {0: 0.0, 1: 0.6, 2: -0.5, 3: 0.3, 4: -0.2}  # seed noise every arm shares


def _top1(stage: int | None, seed: int) -> float:
    """Made-up top-1: +0.2 pp per stage deeper with a seed-dependent wobble, on top of the shared seed noise."""
    return 90.0 + NOISE[seed] + (0.0 if stage is None else 0.2 * stage + 0.04 * ((7 * stage + 3 * seed) % 5))


def _train(config: dict, output_dir: Path) -> dict:
    top1 = _top1(config["model"]["sr_stage"], config["seed"])
    summary = {"test_acc1": top1, "test_acc1_last": top1 - 0.1 * (config["model"]["sr_stage"] or 0) ** 2}
    summary["seed"] = config["seed"]
    summary |= {"wall_time_s": 1.0, "config": config}
    (output_dir / "summary.json").write_text(json.dumps(summary))
    return summary


def _placement_file(tmp_path: Path, recipe: Path, **extra) -> Path:
    """A sweep file: a baseline and SR after stages 1-4, five seeds each."""
    arms = {"base": {"recipe": str(recipe)}}
    arms |= {f"m{m}": {"recipe": str(recipe), "overrides": {"model.sr_stage": m}} for m in range(1, 5)}
    doc = {"name": "placement", "output": str(tmp_path / "out"), "metric": "test_acc1", "baseline": "base"}
    doc |= {"seeds": list(NOISE), "arms": arms, **extra}
    path = tmp_path / "placement.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@pytest.fixture
def placement(tmp_path: Path, tiny_recipe: Path) -> Path:
    """A finished sweep: a baseline and SR after stages 1-4, five seeds each."""
    run_sweep(load_sweep(_placement_file(tmp_path, tiny_recipe)), run_fn=_train, log=lambda _: None)
    return tmp_path / "out"


def test_the_slope_test_is_scipys_regression_per_seed_then_a_t_test_over_seeds():
    levels = {m: {seed: _top1(m, seed) for seed in NOISE} for m in range(1, 5)}
    slopes = [stats.linregress(range(1, 5), [levels[m][seed] for m in range(1, 5)]).slope for seed in NOISE]
    r = paired_trend(levels)
    test = stats.ttest_1samp(slopes, 0.0)
    assert r.n == 5 and r.slope == pytest.approx(np.mean(slopes)) and r.p == pytest.approx(test.pvalue)
    assert (r.ci_low, r.ci_high) == pytest.approx(tuple(test.confidence_interval()))
    assert r.sign.wins == sum(s > 0 for s in slopes) and r.sign.n == 5
    friedman = stats.friedmanchisquare(*[[levels[m][seed] for seed in NOISE] for m in range(1, 5)])
    assert r.friedman_p == pytest.approx(friedman.pvalue)


def test_the_trend_uses_only_seeds_that_ran_every_level_and_needs_two_levels():
    levels = {1: {0: 90.0, 1: 91.0, 2: 90.0}, 2: {0: 91.0, 1: 91.5}}
    r = paired_trend(levels)
    assert r.n == 2 and r.slope == pytest.approx(0.75)
    assert math.isnan(r.friedman_p)  # two levels: Friedman's test needs three
    none = paired_trend({1: {0: 90.0}, 2: {1: 91.0}, 3: {2: 92.0}})  # no seed ran every level: nothing to test
    assert none.n == 0 and math.isnan(none.slope) and math.isnan(none.p) and none.sign.n == 0
    with pytest.raises(ValueError, match="at least 2 levels, got 1"):
        paired_trend({1: {0: 90.0}})


def test_a_sweep_file_declares_its_trends_and_every_table_it_writes_brings_them_up_to_date(tmp_path, tiny_recipe):
    """The trends of a sweep file are reported with each table: after each run (so a commit of the run holds them),
    at the end, and by ``--report`` for another metric; they live in the output's sweep.yaml copy."""
    trends = {"depth": {"m1": 1, "m2": 2, "m3": 3, "m4": 4}, "ends": {"m1": 1, "m4": 4.0}}
    sweep = load_sweep(_placement_file(tmp_path, tiny_recipe, trends=trends))
    assert sweep.trends == {"depth": {"m1": 1.0, "m2": 2.0, "m3": 3.0, "m4": 4.0}, "ends": {"m1": 1.0, "m4": 4.0}}
    out = tmp_path / "out"
    seen = []  # the depth trend's seed count each time a run finished (the after-run hook: a commit)

    def hook(run, summary) -> None:
        text = (out / "trend-depth.md").read_text()
        seen.append(int(re.search(r"over the (\d+) seed", text).group(1)))

    run_sweep(sweep, run_fn=_train, log=lambda _: None, after_run=hook)
    assert seen == [seed + (arm == 4) for seed in NOISE for arm in range(5)]  # seed-major: base, m1 ... m4
    assert read_sweep_copy(out).trends == sweep.trends
    expected, _ = trend_report(out, sweep.trends["depth"], name="check")
    assert (out / "trend-depth.md").read_text() == expected.replace("over check", "over depth")
    assert is_png(out / "trend-ends.png")
    assert sweep_command(report=str(out), metric="test_acc1_last") == 0
    last = {m: {s: _top1(m, s) - 0.1 * m**2 for s in NOISE} for m in (1, 4)}
    text = (out / "trend-ends-test_acc1_last.md").read_text()
    assert f"ran every level and its control: {paired_trend(last).slope:+.3f}" in text
    no_trends = dataclasses.replace(sweep, trends={})
    assert report_trends(out, sweep=no_trends) == [] and report_trends(tmp_path / "elsewhere") == []


def test_a_file_of_the_users_under_a_declared_trends_name_stops_the_sweep_before_its_first_run(tmp_path, tiny_recipe):
    sweep = load_sweep(_placement_file(tmp_path, tiny_recipe, trends={"depth": {"m1": 1, "m2": 2}}))
    sweep.output.mkdir()
    (sweep.output / "trend-depth.png").write_bytes(b"my plot")
    trained = []
    with pytest.raises(FileExistsError):
        run_sweep(sweep, run_fn=lambda config, out: trained.append(out), log=lambda _: None)
    assert trained == [] and (sweep.output / "trend-depth.png").read_bytes() == b"my plot"


@pytest.mark.parametrize(
    ("trends", "message"),
    [
        ({"depth": {"m1": 1, "m9": 9}}, "trend 'depth' names ['m9'], not arms of the sweep"),
        ({"depth": {"m1": 1}}, "trend 'depth': a trend needs at least 2 levels"),
        ({"depth": {"m1": 1, "m2": 1.0}}, "trend 'depth': two arms share one x"),
        ({"depth": {"m1": 1, "m2": "deep"}}, "the level of arm 'm2' must be a finite number, got 'deep'"),
        ({"depth": {"m1": 1, "m2": True}}, "the level of arm 'm2' must be a finite number, got True"),
        ({"../up": {"m1": 1, "m2": 2}}, "trend name '../up' must be letters"),
        ({"depth": [1, 2]}, "trends must map a name to {arm: x, ...}"),
    ],
)
def test_a_sweep_files_trends_are_checked_when_it_loads(tmp_path, tiny_recipe, trends, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        load_sweep(_placement_file(tmp_path, tiny_recipe, trends=trends))


def test_a_sweep_files_report_metrics_are_tabled_with_every_table(tmp_path, tiny_recipe):
    """``report_metrics: [test_acc1_last]``: each table the sweep writes (after each run, ``--report``) also writes
    ``table-test_acc1_last.md`` and the declared trends of that metric; the sweep copy keeps the list."""
    path = _placement_file(tmp_path, tiny_recipe, trends={"ends": {"m1": 1, "m4": 4}}, report_metrics="test_acc1_last")
    sweep = load_sweep(path)
    assert sweep.report_metrics == ["test_acc1_last"]
    out = tmp_path / "out"
    counted = []  # the last-weights table's baseline n each time a run finished

    def hook(run, summary) -> None:
        row = next(
            line
            for line in (out / "table-test_acc1_last.md").read_text().splitlines()
            if line.startswith("| `base` (baseline")
        )
        counted.append(int(row.split("|")[2]))

    run_sweep(sweep, run_fn=_train, log=lambda _: None, after_run=hook)
    assert counted == [seed + 1 for seed in NOISE for _ in range(5)]
    assert read_sweep_copy(out).report_metrics == ["test_acc1_last"]
    last = {m: {s: _top1(m, s) - 0.1 * m**2 for s in NOISE} for m in (1, 4)}
    text = (out / "trend-ends-test_acc1_last.md").read_text()
    assert f"ran every level and its control: {paired_trend(last).slope:+.3f}" in text
    for name in ("table-test_acc1_last.md", "trend-ends-test_acc1_last.md", "trend-ends-test_acc1_last.png"):
        (out / name).unlink()
    assert sweep_command(report=str(out)) == 0  # the sweep's own metric and every report metric
    assert (out / "trend-ends-test_acc1_last.md").read_text() == text and (out / "table-test_acc1_last.md").is_file()


@pytest.mark.parametrize(
    "value", [["test_acc1"], ["test_acc9"], ["test_acc1_last", "test_acc1_last"], {"test_acc1_last": 1}]
)
def test_a_sweep_files_report_metrics_are_checked_when_it_loads(tmp_path, tiny_recipe, value):
    message = "report_metrics must list distinct summary keys other than the metric 'test_acc1', each one of"
    with pytest.raises(ValueError, match=re.escape(message)):
        load_sweep(_placement_file(tmp_path, tiny_recipe, report_metrics=value))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a=1,b", "expected levels as ARM=X,ARM=X (X a number), got 'b'"),
        ("a=1,b=deep", "got 'b=deep'"),
        ("a=1,a=2", "arm 'a' is given twice"),
        ("a=1", "at least 2 levels"),
        ("a=1,b=1", "two arms share one x"),
    ],
)
def test_levels_are_checked(text, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_levels(text)


def test_trend_report_tables_each_level_and_tests_the_slope(placement):
    report, path = trend_report(placement, parse_levels("m1=1,m2=2,m3=3,m4=4"), name="placement")
    assert path == placement / "trend-placement.md" and path.read_text() == report
    slopes = [stats.linregress(range(1, 5), [_top1(m, seed) for m in range(1, 5)]).slope for seed in NOISE]
    assert f"over the 5 seed(s) that ran every level and its control: {np.mean(slopes):+.3f}" in report
    assert f"t-test p = {stats.ttest_1samp(slopes, 0.0).pvalue:.3g}" in report
    assert f"sign test {stats.binomtest(sum(s > 0 for s in slopes), 5).pvalue:.3g}" in report
    delta = np.mean([_top1(4, seed) - _top1(None, seed) for seed in NOISE])
    assert f"| 4 | `m4` | 5 | {np.mean([_top1(4, s) for s in NOISE]):.2f} ± " in report
    assert f"{delta:+.2f} [" in report.splitlines()[7]  # the m4 row's paired Δ against the baseline
    assert "Interim" not in report  # every planned seed has run
    owned = (placement / ".srblock-owned.json").read_text()
    assert (
        "trend-placement.md" in owned and "trend-placement.png" in owned and is_png(placement / "trend-placement.png")
    )


def test_a_trend_read_before_its_last_seeds_says_it_is_interim(tmp_path, tiny_recipe):
    run_sweep(load_sweep(_placement_file(tmp_path, tiny_recipe)), run_fn=_train, log=lambda _: None, seeds=[0, 1, 2, 3])
    report, _ = trend_report(tmp_path / "out", {"m1": 1.0, "m2": 2.0}, name="early")
    assert "over the 4 seed(s)" in report and "t-test p = " in report  # past a screen: tested, and said to be early
    assert "Interim: 4 of the 5 seeds the sweep plans for every level and control" in report


def test_where_a_level_has_its_own_control_the_trend_tests_how_the_effect_changes(tmp_path, tiny_recipe):
    """An interaction: arm m4 is compared with its own control m1 (``baseline: m1``), m3 with the sweep's baseline;
    the two-level trend's slope is, seed by seed, (m4 - m1) - (m3 - base), and its test the paired t-test of that."""
    path = _placement_file(tmp_path, tiny_recipe)
    doc = yaml.safe_load(path.read_text())
    doc["arms"]["m4"]["baseline"] = "m1"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    run_sweep(load_sweep(path), run_fn=_train, log=lambda _: None)
    report, _ = trend_report(tmp_path / "out", {"m3": 0.0, "m4": 1.0}, name="interaction")
    effect = {m: {s: _top1(m, s) - _top1(c, s) for s in NOISE} for m, c in ((3, None), (4, 1))}
    change = [effect[4][s] - effect[3][s] for s in NOISE]
    test = stats.ttest_1samp(change, 0.0)
    assert f"ran every level and its control: {np.mean(change):+.3f}" in report
    assert f"t-test p = {test.pvalue:.3g}" in report and "Δ vs its control (paired" in report
    assert f"| 1 | `m4` | 5 | {np.mean([_top1(4, s) for s in NOISE]):.2f} ± " in report
    assert f"{np.mean(list(effect[4].values())):+.2f} [" in report and "vs `m1`" in report
    assert "vs `base`" in report  # the other level's control, named since the two differ


def test_a_trend_of_another_metric_is_written_beside_the_sweeps_own(placement):
    main_report, _ = trend_report(placement, {"m1": 1.0, "m2": 2.0}, name="ends")
    report, path = trend_report(placement, {"m1": 1.0, "m2": 2.0}, name="ends", metric="test_acc1_last")
    assert path.name == "trend-ends-test_acc1_last.md" and (placement / "trend-ends-test_acc1_last.png").is_file()
    assert (placement / "trend-ends.md").read_text() == main_report  # the sweep's own metric is left as it was
    last = {m: {s: _top1(m, s) - 0.1 * m**2 for s in NOISE} for m in (1, 2)}
    assert f"ran every level and its control: {paired_trend(last).slope:+.3f}" in report
    assert "# Trend of test_acc1_last" in report
    with pytest.raises(ValueError, match=r"metric 'test_acc1_lst' is not a number.*did you mean 'test_acc1_last'"):
        trend_report(placement, {"m1": 1.0, "m2": 2.0}, metric="test_acc1_lst")


def test_trend_refuses_unknown_arms_and_a_file_it_did_not_write(placement):
    with pytest.raises(ValueError, match="no arm 'm9' in the sweep"):
        trend_report(placement, {"m1": 1.0, "m9": 9.0})
    (placement / "trend-mine.md").write_text("my notes")
    (placement / "trend-yours.png").write_bytes(b"your figure")
    for name in ("mine", "yours"):
        with pytest.raises(FileExistsError):
            trend_report(placement, {"m1": 1.0, "m2": 2.0}, name=name)
    assert (placement / "trend-mine.md").read_text() == "my notes" and not (placement / "trend-mine.png").exists()
    assert (placement / "trend-yours.png").read_bytes() == b"your figure" and not (
        placement / "trend-yours.md"
    ).exists()
    with pytest.raises(ValueError, match="name must be letters"):
        trend_report(placement, {"m1": 1.0, "m2": 2.0}, name="../up")


def test_the_trend_verb_writes_the_report(placement, capsys):
    assert main(["trend", str(placement), "--levels", "m1=1,m4=4", "--name", "ends"]) == 0
    out = capsys.readouterr().out
    assert "# Trend of test_acc1 over ends" in out and (placement / "trend-ends.md").is_file()
    assert "a screen" not in out and "Friedman's test of any difference needs 3 levels or more" in out


def test_the_figure_draws_each_levels_paired_delta_every_seed_and_the_mean_slope():
    scores = {"base": {s: _top1(None, s) for s in NOISE}} | {f"m{m}": {s: _top1(m, s) for s in NOISE} for m in (1, 4)}
    scores["m2"] = {s: _top1(2, s) for s in (0, 1, 2)}  # a level with fewer seeds: its own pairs, no seed line
    levels = {"m4": 4.0, "m1": 1.0, "m2": 2.0}
    deltas = {arm: {s: v - scores["base"][s] for s, v in scores[arm].items()} for arm in levels}
    ax = trend_figure(levels, deltas, "base", reference=0.16).axes[0]
    seed_lines = [line for line in ax.get_lines() if line.get_color() == "0.75"]
    assert len(seed_lines) == 3  # seeds 0-2 ran the baseline and every level
    assert list(seed_lines[1].get_ydata()) == pytest.approx([_top1(m, 1) - _top1(None, 1) for m in (1, 2, 4)])
    (bars,) = ax.containers
    xs, means = bars.lines[0].get_data()
    assert list(xs) == [1.0, 2.0, 4.0]
    for m, mean, segment in zip((1, 2, 4), means, bars.lines[2][0].get_segments(), strict=True):
        diffs = [scores[f"m{m}"][s] - scores["base"][s] for s in scores[f"m{m}"]]
        assert mean == pytest.approx(np.mean(diffs))
        ci = stats.ttest_1samp(diffs, 0.0).confidence_interval()
        assert (segment[0][1], segment[1][1]) == pytest.approx((ci.low, ci.high))
    (slope,) = [line for line in ax.get_lines() if line.get_label().startswith("mean slope")]
    x, y = slope.get_data()
    expected = paired_trend({levels[a]: scores[a] for a in levels}).slope
    assert (y[-1] - y[0]) / (x[-1] - x[0]) == pytest.approx(expected)
    assert {line.get_ydata()[0] for line in ax.get_lines() if line.get_linestyle() in ("-", "--")} >= {0.0, 0.16}
    assert [t.get_text() for t in ax.get_xticklabels()] == ["m1\n(1)", "m2\n(2)", "m4\n(4)"]


@given(
    st.lists(st.lists(st.floats(-5, 5), min_size=3, max_size=3), min_size=2, max_size=8),
    st.lists(st.floats(-50, 50), min_size=8, max_size=8),
    st.floats(0.5, 4.0),
)
def test_the_trend_ignores_what_a_seed_adds_to_every_level_and_scales_with_x(values, offsets, scale):
    """Pairing removes a seed's shared offset; stretching x by c divides the slope and its interval by c."""
    xs = (1.0, 2.0, 4.0)
    base = {x: {seed: row[i] for seed, row in enumerate(values)} for i, x in enumerate(xs)}
    shifted = {x: {seed: v + offsets[seed] for seed, v in col.items()} for x, col in base.items()}
    stretched = {x * scale: col for x, col in base.items()}
    a, b, c = paired_trend(base), paired_trend(shifted), paired_trend(stretched)
    assert b.slope == pytest.approx(a.slope, abs=1e-8) and (b.sign.wins, b.sign.n) == (a.sign.wins, a.sign.n)
    assert c.slope == pytest.approx(a.slope / scale, abs=1e-8)
    assert c.ci_high - c.ci_low == pytest.approx((a.ci_high - a.ci_low) / scale, abs=1e-6, nan_ok=True)
