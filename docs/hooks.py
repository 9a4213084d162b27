"""MkDocs hook: the result pages show the plots committed under ``results/`` without copying them into ``docs/``.

Each sweep's summary plot (``results/<testbed>/<sweep>/*.png``) and the one-model analysis figures
(``results/**/analysis-*/*.png``) join the site at their own path, so ``docs/results/<page>.md`` links them as
``cifar10-cpu/w25/dynamics.png`` and a plot that a sweep report rewrites is the one the site shows. Per-run figures
(``seed<N>/``) stay out: they are hundreds of files no page links.
"""

from __future__ import annotations

from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.structure.files import File, Files

RESULTS = Path(__file__).resolve().parents[1] / "results"


def on_files(files: Files, config: MkDocsConfig) -> Files:
    for path in sorted(RESULTS.rglob("*.png")):
        rel = path.relative_to(RESULTS)
        if any(part.startswith("seed") for part in rel.parts):
            continue
        files.append(File.generated(config, f"results/{rel.as_posix()}", abs_src_path=str(path)))
    return files
