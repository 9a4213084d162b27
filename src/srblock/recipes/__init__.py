"""The built-in recipes (one YAML file per paper table row, grouped by dataset) and sweep files, as package data.

A recipe is named by its path below this package without ``.yaml``: ``cifar10/r18_d2d_sr``,
``imagenet/r50_d2d_sr_p10``; sweep files live under ``sweeps/`` (``sweeps/cifar10_cpu_3ep_d2d``). Every command
that takes a recipe (``srblock train -c``, ``srblock sweep -c``, a sweep arm's ``recipe:``) accepts either such a
name or a path to a YAML file of your own; a path that exists wins. ``srblock recipes list|show|copy`` is the
command line over :func:`list_recipes`, :func:`find_recipe_or_sweep` and :func:`copy_recipe` (a copy to edit, with
the ``_base.yaml`` it inherits, so it loads on its own).

>>> find_recipe("cifar10/r18_d2d_sr").name
'r18_d2d_sr.yaml'
>>> "cifar10/r18_d2d_sr" in list_recipes("cifar10/*")
True
>>> [p.name for p in recipe_files("cifar10/r18_d2d_sr")]  # the recipe, then what it inherits
['r18_d2d_sr.yaml', '_base.yaml']
"""

from __future__ import annotations

import difflib
import fnmatch
from importlib import resources
from pathlib import Path

import yaml

__all__ = [
    "RECIPE_ROOT",
    "copy_recipe",
    "find_recipe",
    "find_recipe_or_sweep",
    "list_recipes",
    "recipe_files",
    "recipe_summary",
]

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


def find_recipe_or_sweep(name_or_path: str | Path) -> tuple[Path, bool]:
    """``(path, is_sweep)``: a recipe by path or name, else a built-in sweep file by name.

    An unknown name raises the recipe lookup's ``FileNotFoundError`` (closest recipe names).
    """
    try:
        return find_recipe(name_or_path), False
    except FileNotFoundError as not_a_recipe:
        try:
            return find_recipe(name_or_path, sweeps=True), True
        except FileNotFoundError:
            raise not_a_recipe from None


def recipe_summary(name_or_path: str | Path, *, sweeps: bool = False) -> str:
    """The first sentence of a recipe's leading comment (every built-in recipe starts with what it is, in one line).

    The comment's lines are joined up to the first that ends a sentence (with ``.``), so a summary never stops
    mid-sentence; a comment with no such line gives its first paragraph.
    """
    words: list[str] = []
    for line in find_recipe(name_or_path, sweeps=sweeps).read_text(encoding="utf-8").splitlines():
        text = line.lstrip("#").strip()
        if not line.startswith("#") or (not text and words):
            break
        if text:
            words.append(text)
            if text.endswith("."):
                break
    return " ".join(words)


def recipe_files(name_or_path: str | Path, *, sweeps: bool = False) -> list[Path]:
    """The recipe's YAML file followed by every file it inherits through ``defaults:`` (depth first, no repeats)."""
    files: list[Path] = []

    def visit(path: Path) -> None:
        if path in files:
            return
        if not path.is_file():
            raise FileNotFoundError(f"recipe {files[-1] if files else path} inherits {path}, which does not exist")
        files.append(path)
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
        parents = (raw.get("defaults") if isinstance(raw, dict) else None) or []
        for parent in [parents] if isinstance(parents, str) else parents:
            visit((path.parent / parent).resolve())

    visit(find_recipe(name_or_path, sweeps=sweeps).resolve())
    return files


def copy_recipe(name_or_path: str | Path, dest: str | Path, *, force: bool = False) -> list[tuple[Path, str]]:
    """Copy a recipe (or sweep file) and the files it inherits into the folder ``dest``, so the copy loads on its own.

    Files keep their names and comments (``r18_d2d_sr.yaml`` next to its ``_base.yaml``), so the copy's
    ``defaults:`` still resolve. A file already in ``dest`` with other content is never overwritten unless
    ``force=True``: the whole copy is refused before anything is written. Files are written atomically.
    Returns ``(path, status)`` pairs, status ``"written"``, ``"overwritten"`` or ``"unchanged"`` (same content).
    A name is looked up among the recipes first, then among the sweep files.
    """
    from ..io import write_text

    files = recipe_files(find_recipe_or_sweep(name_or_path)[0])
    home = files[0].parent
    dest = Path(dest)
    plan: list[tuple[Path, str, str]] = []
    for source in files:
        if not source.is_relative_to(home):
            raise ValueError(f"{files[0]} inherits {source}, outside its folder {home}; copy that file by hand")
        target = dest / source.relative_to(home)
        text = source.read_text(encoding="utf-8")
        if target.is_dir():
            raise IsADirectoryError(f"cannot copy {source.name}: {target} is a folder")
        if not target.exists():
            status = "written"
        elif target.read_text(encoding="utf-8") == text:
            status = "unchanged"
        elif force:
            status = "overwritten"
        else:
            raise FileExistsError(f"{target} exists with other content; not overwriting it (pass --force to replace)")
        plan.append((target, text, status))
    for target, text, status in plan:
        if status != "unchanged":
            write_text(target, text)
    return [(target, status) for target, _, status in plan]
