"""Every docstring example in the package runs as written (one test per module, in a scratch folder)."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import srblock

# __main__ runs the command line when imported; it holds no examples.
MODULES = sorted(
    m.name for m in pkgutil.walk_packages(srblock.__path__, prefix="srblock.") if m.name != "srblock.__main__"
)


@pytest.mark.parametrize("name", ["srblock", *MODULES])
def test_docstring_examples(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} of {result.attempted} examples failed in {name}"
