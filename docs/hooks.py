"""MkDocs hooks: the result pages show the tables and plots committed under ``results/``, never a copy of them.

``<!-- table: results/<sweep>/table.md -->`` on a page becomes that file's table (its rows and the line that counts
the runs; the column legend is said once, on the summary page), read at build time, so a page always shows the
table the last ``srblock sweep --report`` wrote; a marker naming a missing file fails the build.
``<!-- table: results/timeseries/crossdataset.md section: Across datasets -->`` takes the first table under that
heading instead (a report of several tables). Each sweep's summary plot (``results/<testbed>/<sweep>/*.png``), the
cross-dataset diagram and the one-model analysis figures (``results/**/analysis-*/*.png``) join the site at their
own path, so ``docs/results/<page>.md`` links them as ``cifar10-cpu/w25/dynamics.png`` and a plot that a report
rewrites is the one the site shows. Per-run figures (``seed<N>/``) stay out: they are hundreds of files no page
links.
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
TABLE = re.compile(r"^<!-- table: (?P<path>results/\S+\.md)(?: section: (?P<section>.+?))? -->$", flags=re.M)


def committed_table(path: str, section: str | None = None) -> str:
    """The first table of a committed report (its rows up to the next blank line) and the run count after it; with
    ``section``, the first table under the heading of that name (a report of several, e.g. ``crossdataset.md``)."""
    file = ROOT / path
    if not file.is_file():
        raise PluginError(f"a page includes {path}, which does not exist")
    lines = file.read_text(encoding="utf-8").splitlines()
    if section is not None:
        headings = [i for i, line in enumerate(lines) if line.lstrip("#").strip() == section and line.startswith("#")]
        if not headings:
            raise PluginError(f"a page includes the section {section!r} of {path}, which has no such heading")
        lines = lines[headings[0] + 1 :]
    start = next((i for i, line in enumerate(lines) if line.startswith("|")), None)
    if start is None:
        raise PluginError(f"a page includes a table of {path}{f' ({section})' if section else ''}, which has none")
    lines = lines[start:]
    end = lines.index("") if "" in lines else len(lines)
    runs = [line for line in lines[end:] if re.match(r"\d+ finished runs under", line)]
    return "\n".join([*lines[:end], "", *runs[:1]])


def on_page_markdown(markdown: str, page: Page, **kwargs) -> str:
    return TABLE.sub(lambda m: committed_table(m["path"], m["section"]), markdown)


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in sorted(RESULTS.rglob("*.png")):
        rel = path.relative_to(RESULTS)
        if any(part.startswith("seed") for part in rel.parts):
            continue
        files.append(File.generated(config, f"results/{rel.as_posix()}", abs_src_path=str(path)))
    return files
