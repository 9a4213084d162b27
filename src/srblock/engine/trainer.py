"""The training loop, for every task: ``train(config, output_dir)`` from a resolved recipe to ``summary.json``.

Read top to bottom: :func:`train` sets up the process (device, torchrun, seeds), the task builds model and data,
:func:`build_optimizer`/:func:`build_scheduler` follow the recipe, then the run alternates
:func:`train_steps` (one evaluation period: an epoch, or ``eval_interval`` iterations) with :func:`evaluate` and a
checkpoint. At the end the best-validation weights are evaluated once on the test split (PAPER.md §3).

Output folder: ``config.yaml`` (resolved recipe), ``metrics.csv`` (one row per period), ``checkpoint_last.pt``,
``checkpoint_best.pt``, ``summary.json``; every file is written atomically (:mod:`srblock.io`). A folder
that holds any of them is never trained into again, except to resume. ``resume=True`` continues from
``checkpoint_last.pt`` exactly (weights, optimizer, schedule, GradScaler, RNG states, data position): bit-identical
on CPU for in-memory data. File datasets with random transforms in DataLoader workers replay the same sample order
after a mid-epoch resume, but draw their augmentation anew. A resume may change only the keys of
:data:`srblock.engine.config.RESUME_APPLIED_KEYS` (applied from then on and recorded in ``config_changes``) and the
result-neutral ones; any other change is refused before anything is written.

A non-finite training loss or evaluation metric is divergence: the run stops with :class:`DivergenceError` before
writing another checkpoint.
"""

from __future__ import annotations

import contextlib
import math
import os
import random
import secrets
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from srblock.data.loader import seed_for
from srblock.layers import count_sr_params
from srblock.layers.modes import eval_mode

from .._modules import import_every_module
from ..io import FolderBusyError, json_safe, lock_folder, remove_stale_temps, write_json
from .checkpoint import CheckpointError, get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from .config import RESUME_APPLIED_KEYS, config_diff, config_hash, dump_config, key_matches, load_config, resolve_config
from .distributed import DistInfo, init_distributed, resolve_device
from .logger import ProgressLoader, RunLogger, write_metrics_csv
from .lookahead import Lookahead
from .optim import build_optimizer, build_scheduler, freeze_groups, observe_train_loss
from .sr_balance import RoutingBalance
from .sr_dynamics import SRDynamics
from .task import BatchLoader, Task, get_task

__all__ = [
    "RUN_FILES",
    "DivergenceError",
    "NonFiniteLossError",
    "build_optimizer",
    "build_scheduler",
    "compile_model",
    "evaluate",
    "evaluate_checkpoint",
    "tf32_mode",
    "train",
    "train_steps",
]

#: The files of a run folder: a folder holding any of them is a run, never trained into except to resume.
RUN_FILES = ("config.yaml", "summary.json", "metrics.csv", "checkpoint_last.pt", "checkpoint_best.pt")

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


@contextlib.contextmanager
def tf32_mode(tf32: bool | None) -> Iterator[None]:
    """``train.tf32`` while the block runs: ``True`` lets fp32 convolutions and matmuls use TF32 on GPUs that have it,
    ``False`` keeps both in full fp32 (TF32 keeps 10 mantissa bits, which rounds a small SR memory's contribution:
    docs/results/cost.md), ``None`` leaves torch's own choice (TF32 convolutions, fp32 matmuls); torch's switches are
    put back afterwards. Without such a GPU nothing changes."""
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = cudnn.allow_tf32, matmul.allow_tf32
    if tf32 is not None:
        cudnn.allow_tf32 = matmul.allow_tf32 = tf32
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def compile_model(model: nn.Module, setting: bool | str) -> nn.Module:
    """``train.compile``: ``false`` keeps ``model``; ``true`` or a ``torch.compile`` mode compiles it.

    The compiled forward and backward replace the eager ones from the first step on (its time, counted in the run's
    wall time, includes the compilation); ``"reduce-overhead"`` also replays them as CUDA graphs.
    """
    if not setting:
        return model
    return torch.compile(model, mode=None if setting in (True, "default") else setting)


def _batches(loader: BatchLoader, start_step: int, steps_per_epoch: int) -> Iterator[Any]:
    """An endless stream of training batches starting at ``start_step`` (a new epoch each ``steps_per_epoch``)."""
    epoch, position = divmod(start_step, steps_per_epoch)
    while True:
        loader.set_epoch(epoch, position)
        yield from loader
        epoch, position = epoch + 1, 0


class DivergenceError(FloatingPointError):
    """The run diverged (a NaN or infinite loss or evaluation metric); it stopped before writing another checkpoint."""


class NonFiniteLossError(DivergenceError):
    """The training loss became NaN or infinite; the run stopped before writing another checkpoint."""


def train_steps(
    task: Task,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    scaler: torch.amp.GradScaler,
    batches: Iterator[Any],
    *,
    start: int,
    end: int,
    total_steps: int,
    autocast: Any,
    logger: RunLogger,
    log_interval: int,
    grad_clip: float | None = None,
    check_every_step: bool = True,
    bare_model: nn.Module | None = None,
    lookahead: Lookahead | None = None,
    balance: RoutingBalance | None = None,
) -> dict[str, float]:
    """Train from iteration ``start`` to ``end``; returns the period's mean of each of the task's loss logs.

    The running sums stay on the device; the only syncs are the finiteness check (every step on CPU, where it is
    free, every ``log_interval`` steps on GPUs) and the progress line. ``balance`` adds its weighted SR routing
    balance term to the task's loss (logged unweighted as ``sr_balance``).
    """
    model.train()
    bare = bare_model if bare_model is not None else model
    sums: dict[str, torch.Tensor] = {}
    count = logged = 0
    logger.restart_clock(start)
    for step in range(start, end):
        batch = task.to_device(next(batches))
        task.on_train_step(bare, step / total_steps)
        with autocast:
            loss, logs = task.loss(model, batch)
        if balance is not None:
            term = balance.loss()
            loss = loss + balance.weight * term
            logs = {**logs, "sr_balance": term.detach()}
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        if grad_clip:
            scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
        scaler.step(optimizer)
        scaler.update()
        lr = optimizer.param_groups[0]["lr"]  # the rate this step used, for the progress line
        scheduler.step()
        if lookahead is not None:
            lookahead.step(step + 1)

        n = task.batch_size(batch)
        count += n
        for key, value in logs.items():  # one in-place add per log and step; the sums stay on the device
            if key not in sums:
                sums[key] = torch.zeros((), device=value.device)
            sums[key].add_(value.detach(), alpha=n)
        done = step + 1
        at_log = done % log_interval == 0 or done == end
        if (check_every_step or at_log) and not math.isfinite(float(sums.get("loss", loss))):
            raise NonFiniteLossError(f"non-finite training loss at iteration {done}")
        if at_log:
            means = {k: float(v) / count for k, v in sums.items()}
            logger.step(done, {**means, "lr": lr}, samples=count - logged)
            logged = count
    return {k: float(v) / max(count, 1) for k, v in sums.items()}


def evaluate(
    task: Task, model: nn.Module, loader: BatchLoader, autocast: Any, *, desc: str = "eval", show_progress: bool = True
) -> dict[str, Any]:
    """The task's metrics on ``loader`` with the bare model in eval mode, no gradients, under the run's autocast.

    The model's train/eval modes are restored afterwards. Rank 0 shows a progress bar (``desc``) on a terminal.
    """
    loader = ProgressLoader(loader, desc, enabled=show_progress and task.dist.is_main)
    with eval_mode(model), torch.no_grad(), autocast:
        return task.evaluate(model, loader)


def _sync_buffers(model: nn.Module, dist: DistInfo) -> None:
    # DDP keeps buffers (BatchNorm running stats) close but not identical across ranks; evaluate and save rank 0's.
    if dist.distributed:
        for buffer in model.buffers():
            torch_dist.broadcast(buffer, src=0)


def _is_better(value: float, best: float | None, higher: bool) -> bool:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return False
    return best is None or (value > best if higher else value < best)


def train(
    config: Mapping[str, Any] | None,
    output_dir: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one recipe; returns the summary (also written to ``output_dir/summary.json``).

    Args:
        config: a recipe (from :func:`srblock.engine.load_config`, or a dict; defaults are filled in). ``None`` with
            ``resume=True``: the run folder's own ``config.yaml``.
        output_dir: the run folder (created). A folder holding any of :data:`RUN_FILES` is refused
            (``FileExistsError``) unless ``resume=True``.
        resume: continue from ``output_dir/checkpoint_last.pt`` (a folder without any run file starts fresh). Keys
            changed against the run's config must be in :data:`~srblock.engine.config.RESUME_APPLIED_KEYS` (they
            are applied and recorded) or result-neutral; any other change is a ``ValueError`` naming every key.
        stop_after: stop after this many evaluation periods of this call, without the final test (for time-limited
            jobs and tests; ``resume=True`` continues). The returned dict is then the last metrics row.
        quiet: print nothing (the files are written as usual).

    Under ``torchrun`` every rank calls this; rank 0 writes the files; all ranks return the same summary.
    A run folder has one writer: rank 0 holds ``output_dir/.srblock.lock`` (:func:`srblock.io.lock_folder`) from
    the check of the folder to the end, so a second ``train`` into the same folder, fresh or resumed, is refused
    (:class:`srblock.io.FolderBusyError`) before it reads or writes anything. The run uses the srblock code it
    started with (``srblock._modules``), whatever happens to the source meanwhile.
    """
    import_every_module()
    output_dir = Path(output_dir)
    if config is None:
        if not (resume and (output_dir / "config.yaml").is_file()):
            raise ValueError(f"train needs a config, or resume=True on a run folder with config.yaml ({output_dir})")
        config = load_config(output_dir / "config.yaml")
    config = resolve_config(config)
    check_output_dir(output_dir, config, resume=resume)  # on every rank, before anything is built or written
    train_cfg = config["train"]
    device = resolve_device(train_cfg["device"], int(os.environ.get("LOCAL_RANK", "0")))
    dist, created = init_distributed(device)
    try:
        with _hold_run_folder(output_dir, dist, device):
            # again under the lock: another writer may have finished a run here since the check above
            check_output_dir(output_dir, config, resume=resume)
            with tf32_mode(train_cfg["tf32"]):
                return _Run(config, output_dir, dist, device, quiet=quiet).fit(resume=resume, stop_after=stop_after)
    finally:
        if created:
            torch_dist.destroy_process_group()


@contextlib.contextmanager
def _hold_run_folder(output_dir: Path, dist: DistInfo, device: torch.device) -> Iterator[None]:
    """Rank 0 holds the run folder's lock (:func:`srblock.io.lock_folder`) while the block runs; every rank raises
    together when it cannot, so no rank waits for a rank 0 that has stopped."""
    with contextlib.ExitStack() as held:
        refused: FolderBusyError | None = None
        if dist.is_main:
            try:
                held.enter_context(lock_folder(output_dir, what="run folder"))
            except FolderBusyError as err:
                refused = err
        if dist.distributed:
            taken = dist.all_reduce(torch.tensor([0.0 if refused else 1.0], device=device))
            if float(taken[0]) < dist.world_size and refused is None:  # rank 0 could not take the lock
                refused = FolderBusyError(f"run folder {output_dir} is being written by another srblock process")
        if refused is not None:
            raise refused
        yield


def _present(output_dir: Path) -> list[str]:
    return [name for name in RUN_FILES if (output_dir / name).is_file()]


def check_output_dir(output_dir: str | Path, config: Mapping[str, Any], *, resume: bool) -> None:
    """Refuse what would overwrite or misdescribe a run in ``output_dir``, before anything is built or written.

    Without ``resume``: a folder holding any of :data:`RUN_FILES` is a ``FileExistsError``. With ``resume``: a
    folder whose run finished without ``checkpoint_last.pt`` cannot continue (``FileExistsError``), and a recipe
    that changes keys a resume may not change (against the folder's ``config.yaml``) is a ``ValueError``.
    """
    output_dir = Path(output_dir)
    present = _present(output_dir)
    if not present:
        return
    if not resume:
        raise FileExistsError(
            f"{output_dir} already holds a run ({', '.join(present)}); continue it with --resume (resume=True) "
            "or choose another output folder: srblock never trains into a run folder"
        )
    if "checkpoint_last.pt" not in present:
        if present != ["config.yaml"]:  # only config.yaml: killed before the first checkpoint, nothing to lose
            raise FileExistsError(
                f"{output_dir} holds {', '.join(present)} but no checkpoint_last.pt to resume from (a finished run "
                "whose checkpoints were removed?); choose another output folder"
            )
        return
    stored = output_dir / "config.yaml"
    if stored.is_file():
        _refuse_changes(load_config(stored), config, output_dir)


def _refuse_changes(old: Mapping[str, Any], new: Mapping[str, Any], output_dir: Path) -> dict[str, tuple[Any, Any]]:
    """The changed keys between ``old`` and ``new``; ``ValueError`` naming all of them if any may not change."""
    changes = config_diff(old, new)
    refused = [f"{k} ({a!r} -> {b!r})" for k, (a, b) in changes.items() if not key_matches(k, RESUME_APPLIED_KEYS)]
    if refused:
        raise ValueError(
            f"cannot resume {output_dir} with a changed {', '.join(refused)}: the checkpoint belongs to another "
            "run; resume without these changes (the run's config.yaml is its recipe) or train into a new folder"
        )
    return changes


class _Run:
    """State of one run; :meth:`fit` is the loop. Split out of :func:`train` only to keep each piece short."""

    def __init__(
        self, config: dict[str, Any], output_dir: Path, dist: DistInfo, device: torch.device, *, quiet: bool = False
    ) -> None:
        self.config, self.output_dir, self.dist, self.device = config, output_dir, dist, device
        train_cfg = config["train"]
        if train_cfg["batch_size"] % dist.world_size:
            raise ValueError(
                f"train.batch_size ({train_cfg['batch_size']}) is the total over all ranks and must be divisible "
                f"by the world size ({dist.world_size})"
            )
        if train_cfg["deterministic"]:
            torch.use_deterministic_algorithms(True, warn_only=True)
            torch.backends.cudnn.benchmark = False
        elif device.type == "cuda":
            torch.backends.cudnn.benchmark = True

        seed_everything(config["seed"])  # the same initial weights on every rank
        self.task = get_task(config["task"])(config, dist, device)
        model = self.task.build_model()
        freeze_groups(model, config["optim"]["groups"])  # before DDP/compile see which parameters train
        self.dynamics = SRDynamics(model, dist)  # reads the routing weights at init (θ₀), before any restore
        self.balance = (
            RoutingBalance(
                model, train_cfg["sr_balance"], train_cfg["sr_balance_loss"], detach=train_cfg["sr_balance_detach"]
            )
            if train_cfg["sr_balance"]
            else None
        )
        self.params = sum(p.numel() for p in model.parameters())
        self.sr_params = count_sr_params(model)
        self.loaders = self.task.build_loaders()
        if dist.rank:
            seed_everything(seed_for(config["seed"], dist.rank))  # distinct dropout masks per rank

        if dist.distributed and device.type == "cuda" and train_cfg["sync_bn"]:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model.to(device)
        if train_cfg["channels_last"]:
            model.to(memory_format=torch.channels_last)
        self.model = model
        self.train_model: nn.Module = model
        if dist.distributed:
            self.train_model = nn.parallel.DistributedDataParallel(
                model,
                device_ids=[device.index] if device.type == "cuda" else None,
                find_unused_parameters=train_cfg["find_unused_parameters"],
            )
        self.train_model = compile_model(self.train_model, train_cfg["compile"])

        self.steps_per_epoch = len(self.loaders.train)
        if self.steps_per_epoch == 0:
            raise ValueError("the training split yields no batch on this rank: fewer samples than the batch size?")
        if train_cfg["epochs"] is not None:
            self.total_steps = train_cfg["epochs"] * self.steps_per_epoch
            self.interval = train_cfg["eval_every"] * self.steps_per_epoch
            steps_per_unit = self.steps_per_epoch
        else:
            self.total_steps = train_cfg["iterations"]
            self.interval = train_cfg["eval_interval"] or self.total_steps
            steps_per_unit = 1
        self.optimizer = build_optimizer(model, config["optim"])
        lookahead = config["optim"]["lookahead"]
        self.lookahead = (
            Lookahead(model, total_steps=self.total_steps, steps_per_epoch=self.steps_per_epoch, **lookahead)
            if lookahead
            else None
        )
        self.scheduler = build_scheduler(
            self.optimizer, config["schedule"], steps_per_unit=steps_per_unit, total_steps=self.total_steps
        )
        amp = train_cfg["amp"]
        self.scaler = torch.amp.GradScaler(device.type, enabled=amp == "fp16")
        self.autocast = (
            torch.autocast(device.type, dtype=_AMP_DTYPES[amp]) if amp is not None else contextlib.nullcontext()
        )
        self.logger = RunLogger(
            dist.is_main and not quiet, output_dir, tensorboard=train_cfg["tensorboard"], total_steps=self.total_steps
        )
        self.step = 0
        self.best_metric: float | None = None
        self.best_step: int | None = None
        self.best_state: dict[str, torch.Tensor] | None = None
        self.history: list[dict[str, Any]] = []
        self.config_changes: list[dict[str, Any]] = []  # keys changed on resume: [{"step", "changes"}]
        self.saved_step: int | None = None  # iteration of checkpoint_last.pt
        # train.select: train_loss keeps the weights of the epoch with the lowest mean training loss (the time-series
        # review's Keras ModelCheckpoint(monitor="loss")); it and the plateau schedule look at every epoch
        self.select_on_train_loss = train_cfg["select"] == "train_loss"
        self.per_epoch = self.select_on_train_loss or config["schedule"]["name"] == "plateau"
        self.period_improved = False
        # config.yaml is written with the first checkpoint of a call (never before: a start that fails leaves no
        # run file behind, and config.yaml always describes a checkpoint)
        self.config_written = False
        self.wall_time_s = 0.0
        # which run a checkpoint belongs to: drawn at the start, kept by every checkpoint and summary.json, and
        # compared when a checkpoint is restored (a file copied in from another run is refused)
        self.run_id = secrets.token_hex(8)

    # -- checkpoints --------------------------------------------------------------------------------------------
    def _state(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "lookahead": None if self.lookahead is None else self.lookahead.state_dict(),
            "step": self.step,
            "epoch": self.step / self.steps_per_epoch,
            "config": self.config,
            "best_metric": self.best_metric,
            "best_step": self.best_step,
            "history": self.history,
            "config_changes": self.config_changes,
            "wall_time_s": self.wall_time_s,
            "rng": get_rng_state(),
            "run_id": self.run_id,
        }

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        # Resolved like the new recipe, so that keys added to the engine since the checkpoint was written (with
        # their defaults) do not count as changes.
        changes = _refuse_changes(resolve_config(state["config"]), self.config, self.output_dir)
        # the optimizer as the (possibly changed) recipe builds it: applied over the restored state below
        fresh = [{k: v for k, v in g.items() if k != "params"} for g in self.optimizer.param_groups]
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.lookahead is not None and state.get("lookahead") is not None:
            self.lookahead.load_state_dict(state["lookahead"])
        self.step, self.history = state["step"], list(state["history"])
        self.saved_step = self.step
        self.best_metric, self.best_step = state["best_metric"], state["best_step"]
        self.config_changes = list(state.get("config_changes", []))
        self.wall_time_s = state["wall_time_s"]
        self.run_id = state.get("run_id") or self.run_id  # a checkpoint of an older srblock has none
        set_rng_state(state["rng"])
        if self.dist.rank:
            seed_everything(seed_for(self.config["seed"], self.dist.rank, self.step))
        if changes:
            self._apply_changes(changes, fresh)
        best_path = self.output_dir / "checkpoint_best.pt"
        if best_path.is_file():
            self.best_state = self._restore_best(best_path, state)
        self.logger.info(f"resumed from {path} at iteration {self.step}/{self.total_steps}")

    def _restore_best(self, path: Path, last: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        """The weights of ``checkpoint_best.pt``, once it is shown to belong to the run of ``last``: the same run id
        (when both have one), its own config (result keys) and the iteration ``last`` recorded as the best."""
        best = load_checkpoint(path)
        why = []
        if best.get("run_id") and last.get("run_id") and best["run_id"] != last["run_id"]:
            why.append(f"run id {best['run_id']} is not this run's {last['run_id']}")
        changed = [
            k
            for k in config_diff(resolve_config(best["config"]), self.config)
            if not key_matches(k, RESUME_APPLIED_KEYS)
        ]
        if changed:
            why.append(f"its config differs in {', '.join(changed)}")
        # a best saved after 'last' is the crash between the two saves (see _save): the run redoes that period
        step = best.get("step")
        if last.get("best_step") is not None and step != last["best_step"] and not (step or 0) > last["step"]:
            why.append(f"it was saved at iteration {step}, the run's best is at {last['best_step']}")
        if why:
            raise CheckpointError(
                f"{path} does not belong to the run in {self.output_dir} ({'; '.join(why)}): it would be tested and "
                "reported as this run's result. Move it away (the run then tests its last weights) or restore the "
                "run's own checkpoint_best.pt"
            )
        return best["model"]

    def _apply_changes(self, changes: Mapping[str, tuple[Any, Any]], fresh: list[dict[str, Any]]) -> None:
        """Make the keys changed on resume real: optimizer hyperparameters, the LR schedule at this iteration."""
        if self.total_steps < self.step:
            raise ValueError(
                f"cannot resume {self.output_dir} with {self.total_steps} iterations: it has trained {self.step} "
                f"already ({self.step / self.steps_per_epoch:g} epochs)"
            )
        for group, new in zip(self.optimizer.param_groups, fresh, strict=True):
            group.update(new)
        self.scheduler.base_lrs = [g["initial_lr"] for g in fresh]
        for group, base, factor in zip(
            self.optimizer.param_groups, self.scheduler.base_lrs, self.scheduler.lr_lambdas, strict=True
        ):
            group["lr"] = base * factor(self.scheduler.last_epoch)
        self.scheduler._last_lr = [g["lr"] for g in self.optimizer.param_groups]
        self.config_changes.append({"step": self.step, "changes": {k: [a, b] for k, (a, b) in changes.items()}})
        shown = ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changes.items())
        self.logger.info(f"resuming with changed settings (applied from iteration {self.step} on): {shown}")

    def _save(self, improved: bool) -> None:
        if self.dist.is_main:
            state = self._state()
            if improved:  # best first: a crash in between leaves a stale 'last', which resumes into the same result
                best = state
                if self.select_on_train_loss:  # an earlier epoch's weights: the checkpoint names their iteration
                    best = {**state, "model": self.best_state, "step": self.best_step}
                save_checkpoint(best, self.output_dir / "checkpoint_best.pt")
            save_checkpoint(state, self.output_dir / "checkpoint_last.pt")
            if not self.config_written:  # with the first checkpoint of this call: config.yaml describes it
                dump_config(self.config, self.output_dir / "config.yaml")
            write_metrics_csv(self.history, self.output_dir / "metrics.csv")
        self.saved_step, self.config_written = self.step, True

    def _mean_over_ranks(self, value: float) -> float:
        if not self.dist.distributed:
            return value
        total = self.dist.all_reduce(torch.tensor(value, dtype=torch.float64, device=self.device))
        return float(total) / self.dist.world_size

    def _state_copy(self) -> dict[str, torch.Tensor]:
        return {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}

    def _train_period(self, batches: Iterator[Any], end: int) -> dict[str, float]:
        """Train up to iteration ``end``; returns the period's mean training logs.

        With ``train.select: train_loss`` or the ``plateau`` schedule the period is trained epoch by epoch: each
        epoch's mean training loss feeds the schedule and, when it is the lowest so far, selects that epoch's
        weights (``self.period_improved``).
        """
        train_cfg = self.config["train"]
        common = {
            "total_steps": self.total_steps,
            "autocast": self.autocast,
            "logger": self.logger,
            "log_interval": train_cfg["log_interval"],
            "grad_clip": train_cfg["grad_clip"],
            "check_every_step": self.device.type == "cpu",
            "bare_model": self.model,
            "lookahead": self.lookahead,
            "balance": self.balance,
        }
        args = (self.task, self.train_model, self.optimizer, self.scheduler, self.scaler, batches)
        if not self.per_epoch:
            logs = train_steps(*args, start=self.step, end=end, **common)
            self.step = end
            return logs
        self.period_improved = False
        sums: dict[str, float] = {}
        start = self.step
        while self.step < end:
            epoch_end = min(end, (self.step // self.steps_per_epoch + 1) * self.steps_per_epoch)
            logs = train_steps(*args, start=self.step, end=epoch_end, **common)
            for key, value in logs.items():
                sums[key] = sums.get(key, 0.0) + value * (epoch_end - self.step)
            self.step = epoch_end
            loss = self._mean_over_ranks(logs["loss"])  # every rank takes the same decisions
            observe_train_loss(self.scheduler, loss)
            if self.select_on_train_loss and _is_better(loss, self.best_metric, higher=False):
                self.best_metric, self.best_step, self.best_state = loss, self.step, self._state_copy()
                self.period_improved = True
        return {k: v / max(self.step - start, 1) for k, v in sums.items()}

    # -- the loop -----------------------------------------------------------------------------------------------
    def fit(self, *, resume: bool, stop_after: int | None) -> dict[str, Any]:
        last = self.output_dir / "checkpoint_last.pt"
        resuming = resume and last.is_file()
        self.dist.barrier()  # every rank has checked the folder (train) before rank 0 writes into it
        if self.dist.is_main:
            self.output_dir.mkdir(parents=True, exist_ok=True)
            for tmp in remove_stale_temps(self.output_dir):
                self.logger.info(f"removed {tmp.name}, left by an interrupted write")
        if resuming:
            self._restore(last)
        self.dist.barrier()
        self.logger.info(
            f"{self.config['task']}: {self.config['model'].get('name')} with {self.params:,} parameters "
            f"({self.sr_params:,} in SR blocks), {self.total_steps} iterations "
            f"({self.steps_per_epoch} per epoch), world size {self.dist.world_size}, device {self.device}"
        )

        started = time.perf_counter()
        wall_before = self.wall_time_s
        batches = _batches(self.loaders.train, self.step, self.steps_per_epoch)
        eval_loader = self.loaders.val if self.loaders.val is not None else self.loaders.test
        eval_name = "val" if self.loaders.val is not None else "test"
        primary = self.task.primary_metric
        periods = 0
        self.logger.start(self.step)
        try:
            while self.step < self.total_steps and (stop_after is None or periods < stop_after):
                end = min(self.total_steps, (self.step // self.interval + 1) * self.interval)
                lr = self.optimizer.param_groups[0]["lr"]
                try:
                    train_logs = self._train_period(batches, end)
                except NonFiniteLossError as err:
                    raise NonFiniteLossError(
                        f"{err} (epoch {self.step // self.steps_per_epoch}); {self._stopped(last)}"
                    ) from None
                _sync_buffers(self.model, self.dist)
                with self.dynamics.track():
                    metrics = self._evaluate(eval_loader, eval_name)
                bad = {k: v for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)}
                if bad:
                    shown = ", ".join(f"{k}={v}" for k, v in bad.items())
                    raise DivergenceError(
                        f"non-finite {eval_name} metric(s) {shown} at iteration {self.step} (epoch "
                        f"{self.step / self.steps_per_epoch:g}): the model diverged (or the {eval_name} split is "
                        f"empty); {self._stopped(last)}"
                    )
                if self.select_on_train_loss:  # chosen epoch by epoch in _train_period
                    improved = self.period_improved
                else:
                    improved = _is_better(metrics.get(primary), self.best_metric, self.task.higher_is_better)
                    if improved or eval_name == "test":  # without a validation split the last weights are kept
                        self.best_metric, self.best_step = metrics.get(primary), self.step
                        self.best_state = self._state_copy()
                self.wall_time_s = wall_before + time.perf_counter() - started
                row = {
                    "epoch": round(self.step / self.steps_per_epoch, 4),
                    "step": self.step,
                    "lr": lr,
                    **{f"train_{k}": v for k, v in train_logs.items()},
                    **{f"{eval_name}_{k}": v for k, v in metrics.items()},
                    **self.dynamics.columns(),
                    "time_s": round(self.wall_time_s, 2),
                }
                self.history.append(_plain(row))
                self._save(improved or (eval_name == "test" and not self.select_on_train_loss))
                self.logger.scalars(eval_name, self.step, metrics)
                shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
                self.logger.info(f"epoch {row['epoch']:g} (iteration {self.step}): {eval_name} {shown}")
                periods += 1
        finally:
            self.logger.close()
        if self.step < self.total_steps:
            return self.history[-1] if self.history else {}
        return self._finish(eval_name)

    def _stopped(self, last: Path) -> str:
        kept = (
            f"{last} (iteration {self.saved_step}) is unchanged"
            if self.saved_step is not None
            else f"no checkpoint had been written to {self.output_dir} yet"
        )
        return f"the run stopped and {kept}. Lower optim.lr, set train.grad_clip, or use train.amp=bf16, not fp16."

    def _evaluate(self, loader: BatchLoader, name: str) -> dict[str, Any]:
        return evaluate(self.task, self.model, loader, self.autocast, desc=name, show_progress=self.logger.enabled)

    def _finish(self, eval_name: str) -> dict[str, Any]:
        """Evaluate the best-validation weights once on the test split and write ``summary.json``.

        The last weights are tested too (``test_<metric>_last``), so arms can also be compared at matched epochs.
        """
        last_test = None
        if self.loaders.test is not None and eval_name != "test":
            same = self.best_step == self.step  # the best checkpoint is the last one: one test pass serves both
            last_test = None if same else self._evaluate(self.loaders.test, "test (last)")
        elif self.loaders.test is not None and self.history:  # the last row tested the last weights
            last_test = {k[len("test_") :]: v for k, v in self.history[-1].items() if k.startswith("test_")}
        dynamics = self.history[-1] if self.history else {}
        dynamics = {k: v for k, v in dynamics.items() if k.rpartition(".")[0] in self.dynamics.blocks}
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        best_row = next((r for r in self.history if r["step"] == self.best_step), {})
        prefix = f"{eval_name}_"
        best_val = {k[len(prefix) :]: v for k, v in best_row.items() if k.startswith(prefix)} or None
        test = None
        if self.loaders.test is not None:
            # without a validation split the row of the selected step holds its test metrics, if it has a row
            test = best_val if eval_name == "test" and best_val else self._evaluate(self.loaders.test, "test")
        if eval_name == "test":
            best_val = None
        last = self.task.summarize(None, test if last_test is None else last_test)
        extra = self.task.after_test(self.model, self.loaders.test, self._evaluate) if test is not None else {}
        summary = {
            **self.task.summarize(best_val, test),
            **extra,
            **{f"{k}_last": v for k, v in last.items() if k.startswith("test_") and test is not None},
            "best_epoch": None if self.best_step is None else round(self.best_step / self.steps_per_epoch, 4),
            "best_step": self.best_step,
            "epochs": round(self.total_steps / self.steps_per_epoch, 4),
            "steps": self.total_steps,
            "params": self.params,
            "sr_params": self.sr_params,
            "wall_time_s": round(self.wall_time_s, 2),
            "torch_version": torch.__version__,
            "gpu": torch.cuda.get_device_name(self.device) if self.device.type == "cuda" else None,
            "seed": self.config["seed"],
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "cpu_threads": torch.get_num_threads(),  # with the device, what wall_time_s was measured on
            "val": best_val,
            "test": test,
            "sr_dynamics": dynamics or None,  # the SR columns of the last evaluation (see engine/sr_dynamics.py)
            "config_hash": config_hash(self.config),
            "run_id": self.run_id,
            "config_changes": self.config_changes,
            "config": self.config,
        }
        summary = json_safe(_plain(summary))  # what summary.json holds: strict JSON, NaN -> null
        if self.dist.is_main:
            write_json(self.output_dir / "summary.json", summary)
            self.logger.info(
                "done: " + ", ".join(f"{k} {v:.4g}" for k, v in summary.items() if isinstance(v, float) and k != "seed")
            )
        return summary


def _plain(value: Any) -> Any:
    """Python scalars/lists/dicts only (what ``weights_only`` checkpoints and JSON hold), from tensors or numpy."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, (torch.Tensor, np.ndarray, np.generic)):
        return _plain(value.tolist())
    return value


def evaluate_checkpoint(
    checkpoint: str | Path,
    *,
    data_dir: str | Path | None = None,
    no_sr: bool = False,
    split: str = "test",
    device: str = "auto",
) -> dict[str, Any]:
    """Metrics of a trained checkpoint on one split (``"test"`` or ``"val"``), optionally with SR removed.

    ``no_sr=True`` is the paper's ablation (PAPER.md §5): the same weights with every SR block replaced by identity.
    """
    from .build import load_trained_model

    if split not in ("test", "val"):
        raise ValueError(f"split must be 'test' or 'val', got {split!r}")
    torch_device = resolve_device(device)
    model, config = load_trained_model(checkpoint, no_sr=no_sr, map_location=torch_device)
    if data_dir is not None:
        config = {**config, "data": {**config["data"], "root": str(data_dir)}}
    config = resolve_config(config)
    seed_everything(config["seed"])
    task = get_task(config["task"])(config, DistInfo(), torch_device)
    loaders = task.build_loaders()
    loader = loaders.test if split == "test" else loaders.val
    if loader is None:
        raise ValueError(f"the recipe of {checkpoint} has no {split} split")
    amp = config["train"]["amp"]
    autocast = torch.autocast(torch_device.type, dtype=_AMP_DTYPES[amp]) if amp else contextlib.nullcontext()
    with tf32_mode(config["train"]["tf32"]):
        metrics = evaluate(task, model, loader, autocast, desc=split)
    return {"checkpoint": str(checkpoint), "split": split, "no_sr": no_sr, **metrics}
