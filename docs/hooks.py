"""MkDocs hooks: the result pages show the tables and plots committed under ``results/``, never a copy of them.

``<!-- table: results/<sweep>/table.md -->`` on a page becomes that file's table (its rows and the line that counts
the runs; the column legend is said once, on the summary page), read at build time, so a page always shows the
table the last ``srblock sweep --report`` wrote; a marker naming a missing file fails the build. Each sweep's
summary plot (``results/<testbed>/<sweep>/*.png``) and the one-model analysis figures
(``results/**/analysis-*/*.png``) join the site at their own path, so ``docs/results/<page>.md`` links them as
``cifar10-cpu/w25/dynamics.png`` and a plot that a sweep report rewrites is the one the site shows. Per-run figures
(``seed<N>/``) stay out: they are hundreds of files no page links.
"""

from __future__ import annotations

import re
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "results"
TABLE = re.compile(r"^<!-- table: (?P<path>results/\S+\.md) -->$", flags=re.M)


def committed_table(path: str) -> str:
    """The table at the top of a committed report (up to its first blank line) and the run count after it."""
    file = ROOT / path
    if not file.is_file():
        raise PluginError(f"a page includes {path}, which does not exist")
    lines = file.read_text(encoding="utf-8").splitlines()
    end = lines.index("") if "" in lines else len(lines)
    runs = [line for line in lines[end:] if re.match(r"\d+ finished runs under", line)]
    return "\n".join([*lines[:end], "", *runs[:1]])


def on_page_markdown(markdown: str, page: Page, **kwargs) -> str:
    return TABLE.sub(lambda m: committed_table(m["path"]), markdown)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in sorted(RESULTS.rglob("*.png")):
        rel = path.relative_to(RESULTS)
        if any(part.startswith("seed") for part in rel.parts):
            continue
        files.append(File.generated(config, f"results/{rel.as_posix()}", abs_src_path=str(path)))
    return files
