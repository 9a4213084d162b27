"""The built-in recipes (one YAML file per paper table row, grouped by dataset) and sweep files, as package data.

A recipe is named by its path below this package without ``.yaml``: ``cifar10/r18_d2d_sr``,
``imagenet/r50_d2d_sr_p10``; sweep files live under ``sweeps/`` (``sweeps/cifar10_cpu_3ep_d2d``). Every command
that takes a recipe (``srblock train -c``, ``srblock sweep -c``, a sweep arm's ``recipe:``) accepts either such a
name or a path to a YAML file of your own; a path that exists wins.

>>> find_recipe("cifar10/r18_d2d_sr").name
'r18_d2d_sr.yaml'
>>> "cifar10/r18_d2d_sr" in list_recipes("cifar10/*")
True
"""

from __future__ import annotations

import difflib
import fnmatch
from importlib import resources
from pathlib import Path

__all__ = ["RECIPE_ROOT", "find_recipe", "list_recipes"]

#: The folder of the built-in recipes (a plain directory in every non-zipped install).
RECIPE_ROOT = Path(str(resources.files(__name__)))


def list_recipes(pattern: str = "*", *, sweeps: bool = False) -> list[str]:
    """Names of the built-in recipes (or, with ``sweeps=True``, sweep files) matching a shell-style ``pattern``.

    The ``_base`` files that recipes inherit from are not listed.
    """
    root = RECIPE_ROOT / "sweeps" if sweeps else RECIPE_ROOT
    names = []
    for path in root.rglob("*.yaml"):
        rel = path.relative_to(RECIPE_ROOT).with_suffix("").as_posix()
        if path.name.startswith("_") or (not sweeps and rel.startswith("sweeps/")):
            continue
        names.append(rel)
    return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern) or fnmatch.fnmatchcase(n, f"sweeps/{pattern}"))


def find_recipe(name_or_path: str | Path, *, sweeps: bool = False) -> Path:
    """The YAML file of a recipe given as a path (used when it exists) or a built-in name.

    ``sweeps=True`` looks for sweep files (``"cifar10_cpu_3ep_d2d"`` finds ``sweeps/cifar10_cpu_3ep_d2d.yaml``).
    An unknown name is a ``FileNotFoundError`` with the closest built-in names.
    """
    path = Path(name_or_path)
    if path.is_file():
        return path
    stem = str(name_or_path).removesuffix(".yaml").removesuffix(".yml")
    candidates = [stem, f"sweeps/{stem}"] if sweeps else [stem]
    for candidate in candidates:
        builtin = RECIPE_ROOT / f"{candidate}.yaml"
        if builtin.is_file():
            return builtin
    known = list_recipes(sweeps=sweeps)
    close = difflib.get_close_matches(stem, known, n=3) or difflib.get_close_matches(f"sweeps/{stem}", known, n=3)
    kind = "sweep file" if sweeps else "recipe"
    hint = f"; did you mean {' or '.join(map(repr, close))}?" if close else "; see `srblock recipes list`"
    raise FileNotFoundError(f"{kind} {str(name_or_path)!r} is neither a file nor a built-in {kind} name{hint}")
