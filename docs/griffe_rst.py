"""Griffe extension: the docstrings' reST idioms, read as Markdown by mkdocstrings.

srblock's docstrings are written for ``help()`` and doctest: ``>>>`` examples, ``:func:`name``` roles and
literal blocks after ``::``. Markdown reads a ``>>>`` line as a nested quote and ``x["a"]["b"]`` as a link, so this
extension fences each doctest run as ``pycon``, turns a role into inline code and fences each ``::`` literal block;
the docstrings themselves stay as they are.
"""

from __future__ import annotations

import re
import textwrap
from typing import Any

import griffe

ROLE = re.compile(r":(?:func|class|meth|mod|attr|data|exc|obj):`~?([^`]+)`")


def _fence(lines: list[str], lang: str) -> list[str]:
    body = textwrap.dedent("\n".join(lines)).splitlines()
    return [f"```{lang}", *body, "```"]


def rst_to_markdown(text: str) -> str:
    """The docstring with doctest runs and ``::`` literal blocks fenced and reST roles as inline code."""
    lines = text.splitlines()
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.lstrip().startswith(">>>"):
            run = []
            while i < len(lines) and lines[i].strip():  # a doctest runs until the first blank line
                run.append(lines[i])
                i += 1
            out += _fence(run, "pycon")
            continue
        if line.rstrip().endswith("::") and not line.lstrip().startswith(".."):
            out.append(ROLE.sub(r"`\1`", line.rstrip()[:-1]))  # "folder::" -> "folder:"
            i += 1
            while i < len(lines) and not lines[i].strip():
                i += 1
            block = []
            while i < len(lines) and (not lines[i].strip() or lines[i].startswith((" ", "\t"))):
                block.append(lines[i])
                i += 1
            while block and not block[-1].strip():
                block.pop()
            out += ["", *_fence(block, "text"), ""]
            continue
        out.append(ROLE.sub(r"`\1`", line))
        i += 1
    return "\n".join(out)


class RstDocstrings(griffe.Extension):
    """Rewrite every docstring once it is loaded (see :func:`rst_to_markdown`)."""

    def on_object(self, *, obj: griffe.Object, **kwargs: Any) -> None:
        if obj.docstring is not None:
            obj.docstring.value = rst_to_markdown(obj.docstring.value)
