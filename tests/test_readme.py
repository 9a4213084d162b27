"""The README and the documentation pages run as written and print what they show.

Every ```python block (of README.md and docs/**/*.md, each block on its own, in order) runs; every `srblock`
command in a ```bash block parses. Where a plain ``` block follows a python or bash block directly (blank lines
apart), it is the printed output (of a bash block: of its last command) and must match line by line (trailing
spaces ignored); the block marked ``<!-- output of: srblock demo ... -->`` is what `srblock demo` prints. Numbers
that depend on the machine are masked on both sides, each by a pattern in :data:`MACHINE_DEPENDENT`: test
accuracies of short trainings on a few hundred images (they move with the torch build, BLAS and thread count)
and wall times. The docs pages are not in the sdist, so an installed-package run checks the README alone.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path

import pytest

from srblock.cli import build_parser, main

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text()
PAGES = {"README.md": README} | {
    p.relative_to(REPO_ROOT).as_posix(): p.read_text() for p in sorted((REPO_ROOT / "docs").rglob("*.md"))
}

# A python (or bash) block, then (optionally, after blank lines only) a plain fence holding what it prints.
EXAMPLE = re.compile(r"```python\n(?P<code>.*?)```\n(?:[ \t]*\n)*(?:```\n(?P<output>.*?)```)?", flags=re.S)
SHELL = re.compile(r"```bash\n(?P<code>.*?)```\n(?:[ \t]*\n)*(?:```\n(?P<output>.*?)```)?", flags=re.S)
DEMO_OUTPUT = re.compile(r"<!-- output of: srblock demo[^>]*-->\n```\n(?P<output>.*?)```", flags=re.S)
MACHINE_DEPENDENT = [
    re.compile(r"(?<=test top-1 )\d+\.\d(?= %)"),
    re.compile(r"(?<=test acc )[ \d]{2}\d\.\d\d(?= %)"),
    re.compile(r"(?<=took )\d+(?= s)"),
]


def _commands(block: str) -> list[str]:
    """The shell block's commands: comments dropped, continuation lines joined, spaces collapsed."""
    commands, pending = [], ""
    for raw in block.splitlines():
        line = "" if raw.lstrip().startswith("#") else raw.split("  #")[0].split(" # ")[0].rstrip()
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = " ".join((pending + line).split()), ""
        if line:
            commands.append(line)
    return commands


EXAMPLES = [(f"{page} example {i}", m["code"], m["output"]) for page, text in PAGES.items()
            for i, m in enumerate(EXAMPLE.finditer(text))]  # fmt: skip
SRBLOCK_COMMANDS = [
    (page, c) for page, text in PAGES.items() for m in SHELL.finditer(text) for c in _commands(m["code"])
    if c.startswith("srblock ")
]  # fmt: skip
SHOWN_OUTPUTS = [
    (page, _commands(m["code"])[-1], m["output"]) for page, text in PAGES.items() for m in SHELL.finditer(text)
    if m["output"] is not None
]  # fmt: skip


def _mask(text: str) -> str:
    for pattern in MACHINE_DEPENDENT:
        text = pattern.sub("<machine-dependent>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def test_readme_has_examples_with_their_output() -> None:
    readme = [e for e in EXAMPLES if e[0].startswith("README.md ")]
    assert len(readme) == README.count("```python\n") >= 2
    assert sum(output is not None for _, _, output in readme) >= 2
    assert len(DEMO_OUTPUT.findall(README)) == 1


@pytest.mark.parametrize("name, code, expected", EXAMPLES, ids=[e[0] for e in EXAMPLES])
def test_example_prints_what_the_page_shows(name, code, expected, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, name, "exec"), {"__name__": "__readme__"})
    if expected is not None:
        assert _mask(printed.getvalue()) == _mask(expected)


def test_commands_parse() -> None:
    assert sum(page == "README.md" for page, _ in SRBLOCK_COMMANDS) >= 8
    parser = build_parser()
    for page, command in SRBLOCK_COMMANDS:
        try:
            parser.parse_args(shlex.split(command)[1:])
        except SystemExit:
            pytest.fail(f"{page}: command does not parse: {command}")


@pytest.mark.slow
@pytest.mark.parametrize("page, command, expected", SHOWN_OUTPUTS, ids=[c for _, c, _ in SHOWN_OUTPUTS])
def test_command_prints_what_the_page_shows(page, command, expected, tmp_path, monkeypatch, capsys):
    assert command.startswith("srblock "), f"{page}: only srblock commands have shown output: {command}"
    monkeypatch.chdir(tmp_path)
    assert main(shlex.split(command)[1:]) == 0
    assert _mask(capsys.readouterr().out) == _mask(expected)


@pytest.mark.slow
def test_readme_demo_output_is_what_the_demo_prints(tmp_path, monkeypatch, capsys):
    """The first-run block is the demo's own output (default folder, seed 0); a format or parameter drift fails."""
    (shown,) = DEMO_OUTPUT.findall(README)
    monkeypatch.chdir(tmp_path)
    assert main(["demo"]) == 0
    assert _mask(capsys.readouterr().out) == _mask(shown)


def test_masks_hide_only_the_machine_dependent_number() -> None:
    assert _mask("test top-1 10.0 %, SR parameters 3,280") == "test top-1 <machine-dependent> %, SR parameters 3,280"
    assert _mask("torch.Size([2, 1000])") == "torch.Size([2, 1000])"
    masked = "  baseline  test acc <machine-dependent> %   params 701,466"
    assert _mask("  baseline  test acc  98.89 %   params 701,466") == masked
    assert _mask("  took 226 s") == "  took <machine-dependent> s"
    assert _commands("srblock a \\\n    --b 1   # note\n# comment\nmake x") == ["srblock a --b 1", "make x"]
