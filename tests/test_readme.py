"""Every ```python block of the README runs as written (each on its own, in order) and prints what the README shows.

Where a plain ``` block follows a python block directly (blank lines apart), it is the block's printed output and
must match line by line (trailing spaces ignored). Numbers that depend on the machine are masked on both sides,
each by a pattern in :data:`MACHINE_DEPENDENT`: only the test accuracy of the 1-epoch training example (a few
hundred images on whatever BLAS and thread count the machine has).
"""

from __future__ import annotations

import contextlib
import io
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
README = (REPO_ROOT / "README.md").read_text()

# A python block, then (optionally, after blank lines only) a plain fence holding what it prints.
EXAMPLE = re.compile(r"```python\n(?P<code>.*?)```\n(?:[ \t]*\n)*(?:```\n(?P<output>.*?)```)?", flags=re.S)
EXAMPLES = [(m["code"], m["output"]) for m in EXAMPLE.finditer(README)]
MACHINE_DEPENDENT = [re.compile(r"(?<=test top-1 )\d+\.\d(?= %)")]


def _mask(text: str) -> str:
    for pattern in MACHINE_DEPENDENT:
        text = pattern.sub("<machine-dependent>", text)
    return "\n".join(line.rstrip() for line in text.strip("\n").splitlines())


def test_readme_has_examples_with_their_output() -> None:
    assert len(EXAMPLES) == README.count("```python\n") >= 6
    assert sum(output is not None for _, output in EXAMPLES) >= 5


@pytest.mark.parametrize("index", range(len(EXAMPLES)))
def test_readme_example_prints_what_the_readme_shows(index, tmp_path, monkeypatch):
    code, expected = EXAMPLES[index]
    monkeypatch.chdir(tmp_path)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(compile(code, f"README.md example {index}", "exec"), {"__name__": "__readme__"})
    if expected is not None:
        assert _mask(printed.getvalue()) == _mask(expected)


def test_masks_hide_only_the_machine_dependent_number() -> None:
    assert _mask("test top-1 10.0 %, SR parameters 3,280") == "test top-1 <machine-dependent> %, SR parameters 3,280"
    assert _mask("torch.Size([2, 1000])") == "torch.Size([2, 1000])"
