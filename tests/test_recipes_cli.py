"""``srblock recipes list|show|copy`` and the functions behind them; a built-in recipe trains from its name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from srblock.cli import main
from srblock.engine import load_config
from srblock.experiments.sweep import load_sweep
from srblock.recipes import copy_recipe, find_recipe, list_recipes, recipe_files


def _sections(printed: str) -> dict[str, list[str]]:
    """``{"recipes": [names], "sweep files": [names]}`` from ``srblock recipes list`` output."""
    out: dict[str, list[str]] = {}
    for line in printed.splitlines():
        if not line.startswith(" "):
            title = line.split(" (")[0]
            out[title] = []
        else:
            out[title].append(line.split()[0])
    return out


def test_list_shows_recipes_and_sweeps_apart(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recipes", "list"]) == 0
    printed = capsys.readouterr().out
    listed = _sections(printed)
    assert listed["recipes"] == list_recipes() and len(listed["recipes"]) >= 88  # every paper row
    assert listed["sweep files"] == [n.removeprefix("sweeps/") for n in list_recipes(sweeps=True)]
    assert "cifar10/r18_d2d_sr" in listed["recipes"] and "cifar10_cpu_3ep_d2d" in listed["sweep files"]
    assert not any("_base" in n for n in listed["recipes"])
    assert f"recipes (srblock train -c NAME): {len(listed['recipes'])}" in printed
    assert "  cifar10/r18_d2d_sr           CIFAR-10, PAPER.md §4 row R18+D2D+SR: SR block after stage M=3" in printed


def test_list_pattern_is_a_glob_or_a_substring(capsys: pytest.CaptureFixture[str]) -> None:
    main(["recipes", "list", "digits"])
    assert _sections(capsys.readouterr().out) == {
        "recipes": ["digits/r18_d2d", "digits/r18_d2d_sr"],
        "sweep files": [],
    }
    main(["recipes", "list", "*3ep*"])
    assert _sections(capsys.readouterr().out)["sweep files"] == ["cifar10_cpu_3ep_d2d", "cifar10_cpu_3ep_plain"]
    main(["recipes", "list", "imagenet/r50_d2d_sr_p?"])
    assert _sections(capsys.readouterr().out)["recipes"] == ["imagenet/r50_d2d_sr_p2"]


def test_show_prints_the_file_or_the_resolved_recipe(capsys: pytest.CaptureFixture[str]) -> None:
    main(["recipes", "show", "cifar10/r18_d2d_sr"])
    assert capsys.readouterr().out == find_recipe("cifar10/r18_d2d_sr").read_text()
    main(["recipes", "show", "cifar10_cpu_3ep_d2d"])
    assert "arms:" in capsys.readouterr().out
    main(["recipes", "show", "cifar10/r18_d2d_sr", "--resolved"])
    assert yaml.safe_load(capsys.readouterr().out) == load_config("cifar10/r18_d2d_sr")
    assert main(["recipes", "show", "cifar10/r18_d2d_srr"]) == 2
    assert "did you mean 'cifar10/r18_d2d_sr'" in capsys.readouterr().err
    assert main(["recipes", "show", "cifar10_cpu_3ep_d2d", "--resolved"]) == 2
    assert "'cifar10_cpu_3ep_d2d' is a sweep file" in capsys.readouterr().err


def test_copy_loads_on_its_own_and_keeps_comments(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    dest = tmp_path / "mine"
    assert main(["recipes", "copy", "cifar10/r18_d2d_sr", str(dest)]) == 0
    printed = capsys.readouterr().out
    assert f"written     {dest / 'r18_d2d_sr.yaml'}" in printed and f"written     {dest / '_base.yaml'}" in printed
    assert f"srblock train -c {dest / 'r18_d2d_sr.yaml'}" in printed
    assert sorted(p.name for p in dest.iterdir()) == ["_base.yaml", "r18_d2d_sr.yaml"]
    for source in recipe_files("cifar10/r18_d2d_sr"):
        assert (dest / source.name).read_text() == source.read_text()  # comments and defaults: kept as shipped
    assert load_config(dest / "r18_d2d_sr.yaml") == load_config("cifar10/r18_d2d_sr")


def test_copy_never_overwrites_without_force(tmp_path: Path) -> None:
    copy_recipe("cifar10/r18_d2d", tmp_path)
    base = tmp_path / "_base.yaml"
    stamp = base.stat().st_mtime_ns
    # a second recipe of the same dataset shares the base file: same content, left as it is
    assert copy_recipe("cifar10/r18_d2d_sr", tmp_path)[1] == (base, "unchanged")
    assert base.stat().st_mtime_ns == stamp
    # CIFAR-100's r18_d2d and _base differ from CIFAR-10's: refused before anything is written
    mine = (tmp_path / "r18_d2d.yaml").read_text() + "# my edit\n"
    (tmp_path / "r18_d2d.yaml").write_text(mine)
    with pytest.raises(FileExistsError, match=r"r18_d2d.yaml exists with other content; .*--force"):
        copy_recipe("cifar100/r18_d2d", tmp_path)
    assert main(["recipes", "copy", "cifar100/r18_d2d", str(tmp_path)]) == 2  # the CLI: one line, exit 2
    assert (tmp_path / "r18_d2d.yaml").read_text() == mine and base.stat().st_mtime_ns == stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["_base.yaml", "r18_d2d.yaml", "r18_d2d_sr.yaml"]
    written = copy_recipe("cifar100/r18_d2d", tmp_path, force=True)
    assert [status for _, status in written] == ["overwritten", "overwritten"]
    assert load_config(tmp_path / "r18_d2d.yaml") == load_config("cifar100/r18_d2d")


def test_copy_a_sweep_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    main(["recipes", "copy", "cifar10_cpu_3ep_d2d", str(tmp_path)])
    assert f"srblock sweep -c {tmp_path / 'cifar10_cpu_3ep_d2d.yaml'}" in capsys.readouterr().out
    copied, shipped = load_sweep(tmp_path / "cifar10_cpu_3ep_d2d.yaml"), load_sweep("cifar10_cpu_3ep_d2d")
    assert copied.arms == shipped.arms and copied.seeds == shipped.seeds


def test_builtin_recipe_trains_by_name(
    shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``srblock train -c cifar10/r18_d2d_sr`` on real CIFAR-10 (a tiny slice), from a folder without recipes."""
    monkeypatch.chdir(tmp_path)
    args = ["train", "-c", "cifar10/r18_d2d_sr", "--data-dir", str(shared_data / "cifar10"), "--epochs", "1"]
    args += ["--width", "0.0625", "--train-subset", "256", "--data.val_subset", "64", "--data.test_subset", "64"]
    assert main(args) == 0
    assert "run folder: runs/cifar10/r18_d2d_sr-seed0" in capsys.readouterr().out
    summary = json.loads((tmp_path / "runs/cifar10/r18_d2d_sr-seed0/summary.json").read_text())
    assert summary["config"]["model"]["num_memories"] == 10 and summary["config"]["schedule"]["milestones"] == [
        0.4945,
        0.7473,
    ]


def test_every_summary_is_whole_sentences_about_the_recipe() -> None:
    """`recipes list` shows each file's first comment sentence: ended, short, and free of project bookkeeping."""
    from srblock.recipes import recipe_summary

    for sweeps in (False, True):
        for name in list_recipes(sweeps=sweeps):
            summary = recipe_summary(name, sweeps=sweeps)
            assert summary.endswith("."), f"{name}: {summary!r} stops mid-sentence"
            assert len(summary) <= 130, f"{name}: the first sentence is {len(summary)} characters"
            assert "issue" not in summary.lower(), f"{name}: {summary!r}"


def test_summary_joins_lines_up_to_the_first_sentence_end(tmp_path: Path) -> None:
    from srblock.recipes import recipe_summary

    recipe = tmp_path / "r.yaml"
    recipe.write_text("# A recipe whose first sentence\n#   spans two lines. More text.\n# Next line.\nseed: 0\n")
    assert recipe_summary(recipe) == "A recipe whose first sentence spans two lines. More text."
    recipe.write_text("# no full stop\n#\n# second paragraph.\nseed: 0\n")
    assert recipe_summary(recipe) == "no full stop"
