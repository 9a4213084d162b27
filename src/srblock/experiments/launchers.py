"""Where a sweep's runs execute: one after another here, N worker processes on this machine, or Slurm jobs.

::

    srblock sweep -c SWEEP                                   # sequential (default): one run after another, here
    srblock sweep -c SWEEP --launcher local:4                # 4 runs at a time on this machine
    srblock sweep -c SWEEP --launcher slurm --launcher-opt partition=gpu --launcher-opt gpus=1 --launcher-opt time=240

or in the sweep file (``--launcher``/``--launcher-opt`` override it)::

    launcher:
      name: slurm          # sequential | local (options: workers, threads) | slurm (options below)
      partition: gpu
      gpus: 1
      time: 240            # minutes
      array_parallelism: 8 # at most 8 runs at once

``local[:N]`` runs N worker processes (``concurrent.futures.ProcessPoolExecutor``, spawned); with GPUs each worker
sees one of them through ``CUDA_VISIBLE_DEVICES`` (N defaults to the number of GPUs), without GPUs each worker gets
an equal share of the CPU cores as its ``OMP_NUM_THREADS`` (``threads`` overrides it). ``slurm`` submits one job per
run as a job array through submitit's ``AutoExecutor`` (``pip install 'srblock[slurm]'``); its options are
submitit's parameters (``timeout_min``, ``gpus_per_node``, ``slurm_partition``, ``slurm_account``, ...) or the short
names ``partition``, ``time``, ``gpus``, ``cpus``, ``mem_gb``, ``account``, ``qos``, ``constraint``,
``array_parallelism``; ``folder`` (submitit's logs, default ``<output>/.submitit``), ``cluster`` (``local`` runs the
jobs as local processes, ``debug`` in this process: submitit's own test executors) and ``poll_s`` (how often job
states are polled) are ours. The jobs run in the current directory with the current Python, as submitit's do.

A worker, like the sequential launcher's one process, trains one run after another for the whole sweep: it reads
the dataset once (:mod:`srblock.data.shared`) and puts torch's global switches back after each run
(:func:`torch_settings_restored`), so each run trains as it would alone in its own process, without paying the
start-up (imports, CUDA, data) again.

Every run writes only its own folder, so the workers share no files: the calling process collects each summary as
its run finishes, refreshes ``results.csv``/``table.md`` and runs the after-run hook, exactly as a sequential sweep
does. A worker's log (the run's progress lines, warnings, a traceback if it fails) is ``<run folder>/train.log``.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import traceback
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Protocol

import yaml

from .._extras import requires_extra
from ..data.shared import sharing_datasets

__all__ = [
    "LAUNCHERS",
    "Launcher",
    "LocalLauncher",
    "SequentialLauncher",
    "SlurmLauncher",
    "make_launcher",
    "parse_launcher_options",
    "torch_settings_restored",
]

_log = logging.getLogger(__name__)

LAUNCHERS = ("sequential", "local", "slurm")
WORKER_LOG = "train.log"

#: short option names of the slurm launcher -> submitit AutoExecutor parameters
SLURM_ALIASES = {
    "partition": "slurm_partition",
    "time": "timeout_min",
    "gpus": "gpus_per_node",
    "cpus": "cpus_per_task",
    "mem": "mem_gb",
    "account": "slurm_account",
    "qos": "slurm_qos",
    "constraint": "slurm_constraint",
    "array_parallelism": "slurm_array_parallelism",
}


class _HasFolder(Protocol):
    output_dir: Path


class Result(Protocol):
    """A finished (or failed) run as a launcher yields it: ``result()`` returns the job's value or raises its error."""

    def result(self) -> Any: ...


class Launcher(Protocol):
    """Runs ``job(item)`` for every item and yields ``(item, result)`` pairs as the jobs finish."""

    name: str
    #: how many jobs may run at the same time (for the log line)
    workers: int

    def launch(self, job: Callable[[Any], Any], items: Sequence[_HasFolder]) -> Iterator[tuple[Any, Result]]: ...


class _Done:
    """An already-finished job (the sequential launcher runs each one when it is asked for the next)."""

    def __init__(self, value: Any = None, error: BaseException | None = None) -> None:
        self.value, self.error = value, error

    def result(self) -> Any:
        if self.error is not None:
            raise self.error
        return self.value


class SequentialLauncher:
    """One job after another in this process (today's sweep; also what every ``torchrun`` rank does)."""

    name = "sequential"
    workers = 1

    def launch(self, job: Callable[[Any], Any], items: Sequence[_HasFolder]) -> Iterator[tuple[Any, Result]]:
        for item in items:
            try:
                done = _Done(job(item))
            except Exception as err:  # handed to the caller, who decides whether the sweep goes on
                done = _Done(error=err)
            yield item, done


# ---------------------------------------------------------------------------------------------------- workers


@contextlib.contextmanager
def _output_to(path: Path) -> Iterator[None]:
    """Send this process's stdout, stderr and the ``srblock`` logger (INFO and above) to ``path`` (appended)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    logger = logging.getLogger("srblock")
    old_level = logger.level
    with open(path, "a", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            with contextlib.redirect_stdout(stream), contextlib.redirect_stderr(stream):
                yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(old_level)


@contextlib.contextmanager
def torch_settings_restored() -> Iterator[None]:
    """Put torch's process-wide switches back as they were after a run, so that the next run of the same process
    (a sweep trains many) starts as it would alone: a run with ``train.deterministic`` turns on deterministic
    algorithms and cuDNN autotuning is set per run; nothing of one run may carry into another."""
    import torch

    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (
        torch.are_deterministic_algorithms_enabled(),
        torch.is_deterministic_algorithms_warn_only_enabled(),
        cudnn.benchmark,
        cudnn.deterministic,
        cudnn.allow_tf32,
        matmul.allow_tf32,
        torch.get_float32_matmul_precision(),
        torch.is_grad_enabled(),
    )
    try:
        yield
    finally:
        deterministic, warn_only, *rest = saved
        torch.use_deterministic_algorithms(deterministic, warn_only=warn_only)
        cudnn.benchmark, cudnn.deterministic, cudnn.allow_tf32, matmul.allow_tf32, precision, grad = rest
        torch.set_float32_matmul_precision(precision)
        torch.set_grad_enabled(grad)


def run_in_worker(job: Callable[[Any], Any], item: _HasFolder) -> Any:
    """``job(item)`` with its output in ``<item.output_dir>/train.log``; a failure's traceback is logged there too."""
    with _output_to(Path(item.output_dir) / WORKER_LOG):
        try:
            return job(item)
        except BaseException:
            logging.getLogger("srblock").error("the run failed:\n%s", traceback.format_exc())
            raise


_worker_scope = contextlib.ExitStack()  # what a worker process holds for its whole life


def _init_local_worker(slots: Any, threads: int) -> None:
    """Initializer of a local worker process: take a device slot (a GPU id, or None for CPU) and set thread counts."""
    import torch

    gpu = slots.get()
    if gpu is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = str(gpu)  # read when CUDA initialises, i.e. after this
    os.environ["OMP_NUM_THREADS"] = str(threads)  # for processes this worker starts (data-loading workers)
    torch.set_num_threads(threads)  # this process's OpenMP pool exists already (torch is imported)
    _worker_scope.enter_context(sharing_datasets())  # the worker's runs read the dataset once, until it exits


def visible_gpus() -> list[str]:
    """The GPU ids this process may hand out: ``CUDA_VISIBLE_DEVICES`` when set, else every device CUDA counts."""
    listed = os.environ.get("CUDA_VISIBLE_DEVICES")
    if listed is not None:
        return [g.strip() for g in listed.split(",") if g.strip() and not g.strip().startswith("-")]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _cpu_count() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class LocalLauncher:
    """``workers`` processes on this machine, each pinned to one GPU when there are GPUs.

    Workers are spawned (never forked: CUDA and OpenMP do not survive a fork) and live for the whole sweep; each
    takes the next device slot when it starts. More workers than GPUs share GPUs round-robin (with a warning).
    Jobs and their arguments must be picklable (module-level functions), as for any process pool.
    """

    name = "local"

    def __init__(self, workers: int | None = None, *, threads: int | None = None, gpus: Sequence[str] | None = None):
        self.gpus = list(visible_gpus() if gpus is None else gpus)
        if workers is None:
            if not self.gpus:
                raise ValueError(
                    "--launcher local needs a worker count on a machine without GPUs, e.g. local:2 (got plain 'local')"
                )
            workers = len(self.gpus)
        if not isinstance(workers, int) or workers < 1:
            raise ValueError(f"local launcher: workers must be a positive int, got {workers!r}")
        if self.gpus and workers > len(self.gpus):
            _log.warning("%d local workers share %d GPU(s) %s round-robin", workers, len(self.gpus), self.gpus)
        self.workers = workers
        self.threads = threads if threads is not None else max(1, _cpu_count() // workers)
        if not isinstance(self.threads, int) or self.threads < 1:
            raise ValueError(f"local launcher: threads must be a positive int, got {threads!r}")

    def slots(self, count: int | None = None) -> list[str | None]:
        """The device of each worker (of ``count``, default all): a GPU id, or ``None`` (CPU) when there are no GPUs."""
        return [
            self.gpus[i % len(self.gpus)] if self.gpus else None
            for i in range(self.workers if count is None else count)
        ]

    def launch(self, job: Callable[[Any], Any], items: Sequence[_HasFolder]) -> Iterator[tuple[Any, Result]]:
        items = list(items)
        workers = max(1, min(self.workers, len(items)))  # local:N with N above the runs: one worker per run
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for slot in self.slots(workers):
            slots.put(slot)
        pool = ProcessPoolExecutor(
            workers, mp_context=context, initializer=_init_local_worker, initargs=(slots, self.threads)
        )
        try:
            futures: dict[Future, Any] = {pool.submit(run_in_worker, job, item): item for item in items}
            for future in as_completed(futures):
                yield futures[future], future
        finally:  # the caller stopped (a failed run, Ctrl-C): start nothing new, let running runs finish
            pool.shutdown(wait=True, cancel_futures=True)


class SlurmLauncher:
    """One Slurm job per run, submitted as one job array through submitit's ``AutoExecutor``.

    ``cluster="local"``/``"debug"`` use submitit's local-process/in-process executors (how it is tested without
    Slurm); ``None`` lets submitit pick (Slurm when ``sbatch`` is available). ``parameters`` go to
    ``AutoExecutor.update_parameters`` after the short names of :data:`SLURM_ALIASES` are expanded.
    """

    name = "slurm"

    def __init__(
        self, folder: str | Path, *, cluster: str | None = None, poll_s: float | None = None, **parameters: Any
    ) -> None:
        with requires_extra("slurm", "--launcher slurm (submitit)"):
            import submitit

        params = {SLURM_ALIASES.get(k, k): v for k, v in parameters.items()}
        self.executor = submitit.AutoExecutor(folder=Path(folder), cluster=cluster)
        try:
            self.executor.update_parameters(**params)
        except (NameError, AssertionError) as err:  # submitit's ways of rejecting a parameter
            raise ValueError(f"slurm launcher: submitit rejected the options {params}: {err}") from None
        self.poll_s = poll_s if poll_s is not None else (10.0 if self.executor.cluster == "slurm" else 0.5)
        self.workers = int(params.get("slurm_array_parallelism", 0)) or 0  # 0: as many as Slurm grants

    def launch(self, job: Callable[[Any], Any], items: Sequence[_HasFolder]) -> Iterator[tuple[Any, Result]]:
        from submitit.helpers import as_completed as jobs_completed

        items = list(items)
        jobs = self.executor.map_array(run_in_worker, [job] * len(items), items)
        _log.info("submitted %d job(s) to %s: %s", len(jobs), self.executor.cluster, jobs[0].job_id if jobs else "-")
        by_id = {j.job_id: item for j, item in zip(jobs, items, strict=True)}
        finished: set[str] = set()
        try:
            for done in jobs_completed(jobs, poll_frequency=self.poll_s):
                finished.add(done.job_id)
                yield by_id[done.job_id], done
        finally:  # the caller stopped: cancel what has not finished (a resumed sweep continues from checkpoints)
            for j in jobs:
                if j.job_id not in finished and not j.done():
                    j.cancel(check=False)


# ---------------------------------------------------------------------------------------------------- choosing


def parse_launcher_options(pairs: Sequence[str]) -> dict[str, Any]:
    """``["key=value", ...]`` -> ``{key: value}`` with YAML-typed values (``4`` an int, ``true`` a bool)."""
    options = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--launcher-opt takes key=value (e.g. partition=gpu), got {pair!r}")
        options[key.strip()] = yaml.safe_load(value)
    return options


def _split_spec(spec: str) -> tuple[str, int | None]:
    name, _, count = str(spec).partition(":")
    if name not in LAUNCHERS:
        raise ValueError(f"unknown launcher {spec!r}; expected one of sequential, local, local:N, slurm")
    if count and (name != "local" or not count.isdigit() or int(count) < 1):
        raise ValueError(f"launcher {spec!r}: only local takes a worker count, as local:N with N >= 1")
    return name, int(count) if count else None


def make_launcher(
    spec: str | Mapping[str, Any] | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    output: str | Path = ".",
    job_name: str = "srblock",
) -> Launcher:
    """The launcher named by ``spec`` (``sequential``, ``local``, ``local:N``, ``slurm``) with ``options``.

    ``spec`` may also be a sweep file's ``launcher:`` mapping (``name`` plus options); ``options`` override its
    options. ``output`` is the sweep's output folder (submitit's log folder goes under it), ``job_name`` the Slurm
    job name.
    """
    merged: dict[str, Any] = {}
    if isinstance(spec, Mapping):
        merged.update({k: v for k, v in spec.items() if k != "name"})
        spec = spec.get("name", "sequential")
    merged.update(options or {})
    name, count = _split_spec(spec or "sequential")
    if name == "sequential":
        if merged:
            raise ValueError(f"the sequential launcher takes no options, got {sorted(merged)}")
        return SequentialLauncher()
    if name == "local":
        unknown = sorted(set(merged) - {"workers", "threads"})
        if unknown:
            raise ValueError(f"local launcher: unknown option(s) {unknown}; it takes workers and threads")
        workers = count if count is not None else merged.get("workers")
        return LocalLauncher(workers, threads=merged.get("threads"))
    folder = merged.pop("folder", Path(output) / ".submitit")
    merged.setdefault("name", job_name)
    return SlurmLauncher(folder, cluster=merged.pop("cluster", None), poll_s=merged.pop("poll_s", None), **merged)
