"""Runs trained elsewhere (a GPU box, a cluster) come home: merge a results archive into the sweep folders here.

The archive is a tar (any compression) of run files with paths relative to the repository root, as
``benchmarks/gpu_sweep.sh`` packs it (with a sweep's ``latency.json`` where that window timed its arms)::

    results/cifar10-gpu-fast/airbench/sweep.yaml
    results/cifar10-gpu-fast/airbench/airbench-d2d/seed7/summary.json
    results/cifar10-gpu-fast/airbench/airbench-d2d/seed7/metrics.csv
    results/cifar10-gpu-fast/airbench/airbench-d2d/seed7/config.yaml

so ``tar czf runs.tgz <those files>`` on one machine and ``srblock sweep --merge runs.tgz`` on another put the runs
where the sweep would have written them; the tables of every sweep that received runs are then rebuilt.
"""

from __future__ import annotations

import tarfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from ..io import atomic_open
from .sweep import KEPT_RUN_FILES, LATENCY_FILE, SUMMARY, SWEEP_COPY, check_sweep_outputs, report_tables

__all__ = ["merge_runs"]

SWEEP_FILES = (SWEEP_COPY, LATENCY_FILE)  # files of a sweep folder (not of a run) an archive may bring


def _members(archive: Path) -> dict[PurePosixPath, bytes]:
    """The archive's files by path, each checked to be a run file or a sweep folder's file inside the tree."""
    expected = f"<output>/<arm>/seed<N>/{{{','.join(KEPT_RUN_FILES)}}} or <output>/{{{','.join(SWEEP_FILES)}}}"
    files: dict[PurePosixPath, bytes] = {}
    with tarfile.open(archive) as tar:
        for member in tar:
            path = PurePosixPath(member.name)
            if member.isdir():
                continue
            run_file = path.name in KEPT_RUN_FILES and len(path.parts) >= 3 and path.parts[-2].startswith("seed")
            inside = not path.is_absolute() and ".." not in path.parts
            if not (member.isfile() and inside and (run_file or path.name in SWEEP_FILES)):
                raise ValueError(f"{archive}: unexpected member {member.name!r}; expected {expected}")
            files[path] = tar.extractfile(member).read()
    runs = {p.parent for p in files if p.name in KEPT_RUN_FILES}
    unfinished = sorted(str(run) for run in runs if run / SUMMARY not in files)
    if unfinished:
        raise ValueError(f"{archive}: run folder(s) without {SUMMARY} (unfinished): {', '.join(unfinished[:5])}")
    return files


def _write(path: Path, data: bytes, *, ours: bool) -> None:
    with atomic_open(path, "wb", ours=ours) as f:
        f.write(data)


def merge_runs(archive: str | Path, root: str | Path = ".", *, log: Callable[[str], None] = print) -> list[Path]:
    """Copy the runs of ``archive`` under ``root`` and re-aggregate each sweep folder that received runs (its table and
    the trends its sweep file declares).

    A file that exists here with other content (a run file, a ``sweep.yaml`` that defines the sweep otherwise, or a
    ``latency.json`` measured otherwise) stops the merge before anything is written (``FileExistsError``: a finished
    run or a sweep definition is never replaced), as does a file of the user's under a name the sweep's tables take;
    identical files are skipped, so merging an archive twice changes nothing. Returns the sweep folders, sorted.
    """
    archive, root = Path(archive), Path(root)
    files = _members(archive)
    new, clashes = [], []
    for path, data in files.items():
        target = root / path
        if not target.exists():
            new.append(path)
        elif target.read_bytes() != data:
            clashes.append(path)
    if clashes:
        shown = ", ".join(str(p) for p in sorted(clashes)[:5])
        raise FileExistsError(
            f"{archive}: {len(clashes)} file(s) differ from the ones under {root.resolve()}, nothing was merged: "
            f"{shown}. A finished run or a sweep's definition is never replaced: move the existing file or run folder "
            "away to take the archive's"
        )
    sweeps = sorted(
        {root / p.parents[2] for p in files if p.name == SUMMARY}
        | {root / p.parent for p in files if p.name in SWEEP_FILES}
    )
    for folder in sweeps:
        check_sweep_outputs(folder)  # before anything is written
    for path in sorted(new):
        _write(root / path, files[path], ours=path.name in SWEEP_FILES)
    runs = len({p.parent for p in new if p.name in KEPT_RUN_FILES})
    log(f"merged {runs} new run(s) from {archive} ({len(files) - len(new)} file(s) already here)")
    for folder in sweeps:
        report_tables(folder, log=log)  # its tables and declared trends, for each metric it reports, with the new runs
    return sweeps
