"""The documentation site builds in strict mode, holds its API reference and plots, and reads docstrings right."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
pytest.importorskip("mkdocs", reason="the docs extra is not installed: pip install -e '.[docs]'")
if not (REPO_ROOT / "mkdocs.yml").is_file():
    pytest.skip("no mkdocs.yml next to the tests (an installed sdist)", allow_module_level=True)


def _docs_module(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "docs" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rst_module():
    return _docs_module("griffe_rst")


def test_a_page_includes_a_reports_first_table_or_the_one_under_a_heading(tmp_path: Path, monkeypatch) -> None:
    from mkdocs.exceptions import PluginError

    hooks = _docs_module("hooks")
    monkeypatch.setattr(hooks, "ROOT", tmp_path)
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "report.md").write_text(
        "# Report\n\n## Per dataset\n\n| a |\n|---|\n| 1 |\n\nlegend\n\n## Across datasets\n\n| b |\n|---|\n"
        "| 2 |\n\n4 finished runs under `x`, trained for 3 iterations.\n"
    )
    page = "x\n<!-- table: results/report.md -->\ny\n<!-- table: results/report.md section: Across datasets -->\n"
    runs = "4 finished runs under `x`, trained for 3 iterations."  # the report's run count, after either table
    expected = f"x\n| a |\n|---|\n| 1 |\n\n{runs}\ny\n| b |\n|---|\n| 2 |\n\n{runs}\n"
    assert hooks.on_page_markdown(page, page=None) == expected
    with pytest.raises(PluginError, match="no such heading"):
        hooks.on_page_markdown("<!-- table: results/report.md section: Cost -->", page=None)
    with pytest.raises(PluginError, match="does not exist"):
        hooks.on_page_markdown("<!-- table: results/other.md -->", page=None)


def test_site_builds_strict_with_reference_and_plots(tmp_path: Path) -> None:
    config = yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())
    assert config["strict"] is True
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    layers = (site / "reference" / "layers.html").read_text()
    assert "SRBlock" in layers and "sr_param_count" in layers  # generated from the docstrings
    assert '<span class="gp">&gt;&gt;&gt; </span>' in layers  # doctests fenced and highlighted, not read as quotes
    assert (site / "results" / "cifar10-cpu" / "w25" / "dynamics.png").read_bytes()[:4] == b"\x89PNG"
    summary = (site / "results" / "index.html").read_text()
    assert "90.72 ± 0.17 %" in summary and "(screen)" in summary  # RESULTS.md's table, the legend
    assert not (site / "hooks.py").exists() and not (site / "griffe_rst.py").exists()


def test_every_page_is_in_the_nav() -> None:
    def pages(node) -> list[str]:
        if isinstance(node, str):
            return [node]
        if isinstance(node, dict):
            return [p for v in node.values() for p in pages(v)]
        return [p for item in node for p in pages(item)]

    nav = set(pages(yaml.safe_load((REPO_ROOT / "mkdocs.yml").read_text())["nav"]))
    docs = {p.relative_to(REPO_ROOT / "docs").as_posix() for p in (REPO_ROOT / "docs").rglob("*.md")}
    assert docs == nav


def test_every_public_module_is_in_the_api_reference() -> None:
    import re

    src = REPO_ROOT / "src"
    modules = {
        ".".join(p.relative_to(src).with_suffix("").parts)
        for p in (src / "srblock").rglob("*.py")
        if not p.name.startswith("_") and not any(part.startswith("_") for part in p.relative_to(src).parts[:-1])
    }
    modules -= {"srblock.cli"}  # the command line: `srblock --help` and the guide pages
    text = "\n".join(p.read_text() for p in (REPO_ROOT / "docs" / "reference").glob("*.md"))
    documented = set(re.findall(r"^::: (\S+)$", text, re.M))
    assert sorted(modules - documented) == [], "add each to its page under docs/reference/"
    assert documented <= modules | {"srblock.recipes"}, sorted(documented - modules)  # recipes: a package's __init__


def test_rst_idioms_become_markdown() -> None:
    rst = _rst_module().rst_to_markdown
    text = 'Use :func:`train` and :class:`~srblock.SRBlock`.\n\n>>> cfg["a"][0]\n1\n\nFiles::\n\n    a/  b/\n\nEnd.'
    assert rst(text).splitlines() == [
        "Use `train` and `srblock.SRBlock`.",
        "",
        "```pycon",
        '>>> cfg["a"][0]',
        "1",
        "```",
        "",
        "Files:",
        "",
        "```text",
        "a/  b/",
        "```",
        "",
        "End.",
    ]


def test_make_docs_builds_strict_and_counts_warnings() -> None:
    """`make docs` (what CI runs) is strict, and not --quiet: quiet hides warnings from the strict count."""
    recipe = (REPO_ROOT / "Makefile").read_text().split("\ndocs:", 1)[1].split("\n\n", 1)[0]
    assert "mkdocs build --strict" in recipe
    assert "--quiet" not in recipe and " -q" not in recipe
