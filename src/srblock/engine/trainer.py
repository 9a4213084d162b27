"""The training loop, for every task: ``train(config, output_dir)`` from a resolved recipe to ``summary.json``.

Read top to bottom: :func:`train` sets up the process (device, torchrun, seeds), the task builds model and data,
:func:`build_optimizer`/:func:`build_scheduler` follow the recipe, then the run alternates
:func:`train_steps` (one evaluation period: an epoch, or ``eval_interval`` iterations) with :func:`evaluate` and a
checkpoint. At the end the best-validation weights are evaluated once on the test split (PAPER.md §3).

Output folder: ``config.yaml`` (resolved recipe), ``metrics.csv`` (one row per period), ``checkpoint_last.pt``,
``checkpoint_best.pt`` (atomic), ``summary.json``. ``resume=True`` continues from ``checkpoint_last.pt`` exactly
(weights, optimizer, schedule, GradScaler, RNG states, data position): bit-identical on CPU for in-memory data.
File datasets with random transforms in DataLoader workers replay the same sample order after a mid-epoch resume,
but draw their augmentation anew.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as torch_dist
from torch import nn

from srblock.data.loader import seed_for
from srblock.layers.modes import eval_mode

from .checkpoint import get_rng_state, load_checkpoint, save_checkpoint, set_rng_state
from .config import dump_config, resolve_config
from .distributed import DistInfo, init_distributed, resolve_device
from .logger import ProgressLoader, RunLogger, write_metrics_csv
from .lookahead import Lookahead
from .optim import build_optimizer, build_scheduler, freeze_groups
from .sr_dynamics import SRDynamics
from .task import BatchLoader, Task, get_task

__all__ = ["build_optimizer", "build_scheduler", "evaluate", "evaluate_checkpoint", "train", "train_steps"]

_AMP_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and python's ``random``."""
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def _batches(loader: BatchLoader, start_step: int, steps_per_epoch: int) -> Iterator[Any]:
    """An endless stream of training batches starting at ``start_step`` (a new epoch each ``steps_per_epoch``)."""
    epoch, position = divmod(start_step, steps_per_epoch)
    while True:
        loader.set_epoch(epoch, position)
        yield from loader
        epoch, position = epoch + 1, 0


class NonFiniteLossError(FloatingPointError):
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
) -> dict[str, float]:
    """Train from iteration ``start`` to ``end``; returns the period's mean of each of the task's loss logs.

    The running sums stay on the device; the only syncs are the finiteness check (every step on CPU, where it is
    free, every ``log_interval`` steps on GPUs) and the progress line.
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
        for key, value in logs.items():
            weighted = value.detach().float() * n
            sums[key] = sums[key] + weighted if key in sums else weighted
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
    config: Mapping[str, Any],
    output_dir: str | Path,
    *,
    resume: bool = False,
    stop_after: int | None = None,
    quiet: bool = False,
) -> dict[str, Any]:
    """Train and evaluate one recipe; returns the summary (also written to ``output_dir/summary.json``).

    Args:
        config: a recipe (from :func:`srblock.engine.load_config`, or a dict; defaults are filled in).
        output_dir: the run folder (created). A folder holding a run needs ``resume=True``.
        resume: continue from ``output_dir/checkpoint_last.pt`` when it exists (start fresh when it does not).
        stop_after: stop after this many evaluation periods of this call, without the final test (for time-limited
            jobs and tests; ``resume=True`` continues). The returned dict is then the last metrics row.
        quiet: print nothing (the files are written as usual).

    Under ``torchrun`` every rank calls this; rank 0 writes the files; all ranks return the same summary.
    """
    config = resolve_config(config)
    output_dir = Path(output_dir)
    train_cfg = config["train"]
    device = resolve_device(train_cfg["device"], int(os.environ.get("LOCAL_RANK", "0")))
    dist, created = init_distributed(device)
    try:
        return _Run(config, output_dir, dist, device, quiet=quiet).fit(resume=resume, stop_after=stop_after)
    finally:
        if created:
            torch_dist.destroy_process_group()


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
        self.params = sum(p.numel() for p in model.parameters())
        self.sr_params = _sr_params(model)
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
        if train_cfg["compile"]:
            self.train_model = torch.compile(self.train_model)

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
        self.wall_time_s = 0.0

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
            "wall_time_s": self.wall_time_s,
            "rng": get_rng_state(),
        }

    def _restore(self, path: Path) -> None:
        state = load_checkpoint(path, map_location=self.device)
        if state["config"] != self.config:
            changed = sorted(
                f"{section}.{key}"
                for section in self.config
                if isinstance(self.config[section], dict)
                for key in set(self.config[section]) | set(state["config"].get(section, {}))
                if self.config[section].get(key) != state["config"].get(section, {}).get(key)
            )
            self.logger.info(f"resuming with a changed recipe ({', '.join(changed) or 'top-level keys'})")
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.lookahead is not None and state.get("lookahead") is not None:
            self.lookahead.load_state_dict(state["lookahead"])
        self.step, self.history = state["step"], list(state["history"])
        self.best_metric, self.best_step = state["best_metric"], state["best_step"]
        self.wall_time_s = state["wall_time_s"]
        set_rng_state(state["rng"])
        if self.dist.rank:
            seed_everything(seed_for(self.config["seed"], self.dist.rank, self.step))
        best_path = self.output_dir / "checkpoint_best.pt"
        if best_path.is_file():
            self.best_state = load_checkpoint(best_path)["model"]
        self.logger.info(f"resumed from {path} at iteration {self.step}/{self.total_steps}")

    def _save(self, improved: bool) -> None:
        if not self.dist.is_main:
            return
        state = self._state()
        if improved:  # best first: a crash in between leaves a stale 'last', which resumes into the same result
            save_checkpoint(state, self.output_dir / "checkpoint_best.pt")
        save_checkpoint(state, self.output_dir / "checkpoint_last.pt")
        write_metrics_csv(self.history, self.output_dir / "metrics.csv")

    # -- the loop -----------------------------------------------------------------------------------------------
    def fit(self, *, resume: bool, stop_after: int | None) -> dict[str, Any]:
        last = self.output_dir / "checkpoint_last.pt"
        if self.dist.is_main:
            if last.exists() and not resume:
                raise FileExistsError(
                    f"{self.output_dir} already holds a run (checkpoint_last.pt); pass resume=True (--resume) to "
                    f"continue it, or choose another output folder"
                )
            self.output_dir.mkdir(parents=True, exist_ok=True)
            dump_config(self.config, self.output_dir / "config.yaml")
        self.dist.barrier()
        if resume and last.exists():
            self._restore(last)
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
        train_cfg = self.config["train"]
        periods = 0
        self.logger.start(self.step)
        try:
            while self.step < self.total_steps and (stop_after is None or periods < stop_after):
                end = min(self.total_steps, (self.step // self.interval + 1) * self.interval)
                lr = self.optimizer.param_groups[0]["lr"]
                try:
                    train_logs = train_steps(
                        self.task,
                        self.train_model,
                        self.optimizer,
                        self.scheduler,
                        self.scaler,
                        batches,
                        start=self.step,
                        end=end,
                        total_steps=self.total_steps,
                        autocast=self.autocast,
                        logger=self.logger,
                        log_interval=train_cfg["log_interval"],
                        grad_clip=train_cfg["grad_clip"],
                        check_every_step=self.device.type == "cpu",
                        bare_model=self.model,
                        lookahead=self.lookahead,
                    )
                except NonFiniteLossError as err:
                    kept = (
                        f"{self.output_dir / 'checkpoint_last.pt'} (iteration {self.step}) is unchanged"
                        if last.exists()
                        else f"no checkpoint had been written to {self.output_dir} yet"
                    )
                    raise NonFiniteLossError(
                        f"{err} (epoch {self.step // self.steps_per_epoch}); the run stopped and {kept}. Lower "
                        f"optim.lr, set train.grad_clip, or use train.amp=bf16 instead of fp16."
                    ) from None
                self.step = end
                _sync_buffers(self.model, self.dist)
                with self.dynamics.track():
                    metrics = self._evaluate(eval_loader, eval_name)
                improved = _is_better(metrics.get(primary), self.best_metric, self.task.higher_is_better)
                if improved or eval_name == "test":  # without a validation split the last weights are kept
                    self.best_metric, self.best_step = metrics.get(primary), self.step
                    self.best_state = {k: v.detach().to("cpu", copy=True) for k, v in self.model.state_dict().items()}
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
                self._save(improved or eval_name == "test")
                self.logger.scalars(eval_name, self.step, metrics)
                shown = ", ".join(f"{k} {v:.4g}" for k, v in metrics.items() if isinstance(v, (int, float)))
                self.logger.info(f"epoch {row['epoch']:g} (iteration {self.step}): {eval_name} {shown}")
                periods += 1
        finally:
            self.logger.close()
        if self.step < self.total_steps:
            return self.history[-1] if self.history else {}
        return self._finish(eval_name)

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
        dynamics = self.history[-1] if self.history else {}
        dynamics = {k: v for k, v in dynamics.items() if k.rpartition(".")[0] in self.dynamics.blocks}
        if self.best_state is not None:
            self.model.load_state_dict(self.best_state)
        best_row = next((r for r in self.history if r["step"] == self.best_step), {})
        prefix = f"{eval_name}_"
        best_val = {k[len(prefix) :]: v for k, v in best_row.items() if k.startswith(prefix)} or None
        test = None
        if self.loaders.test is not None:
            test = best_val if eval_name == "test" else self._evaluate(self.loaders.test, "test")
        if eval_name == "test":
            best_val = None
        last = self.task.summarize(None, test if last_test is None else last_test)
        summary = {
            **self.task.summarize(best_val, test),
            **{f"{k}_last": v for k, v in last.items() if k.startswith("test_") and test is not None},
            "best_epoch": None if self.best_step is None else round(self.best_step / self.steps_per_epoch, 4),
            "best_step": self.best_step,
            "epochs": round(self.total_steps / self.steps_per_epoch, 4),
            "steps": self.total_steps,
            "params": self.params,
            "sr_params": self.sr_params,
            "wall_time_s": round(self.wall_time_s, 2),
            "torch_version": torch.__version__,
            "seed": self.config["seed"],
            "world_size": self.dist.world_size,
            "device": str(self.device),
            "val": best_val,
            "test": test,
            "sr_dynamics": dynamics or None,  # the SR columns of the last evaluation (see engine/sr_dynamics.py)
            "config": self.config,
        }
        summary = _plain(summary)
        if self.dist.is_main:
            with (self.output_dir / "summary.json").open("w") as f:
                json.dump(summary, f, indent=2)
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


def _sr_params(model: nn.Module) -> int:
    from srblock.layers import SRBlockNd

    return sum(p.numel() for m in model.modules() if isinstance(m, SRBlockNd) for p in m.parameters())


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
    metrics = evaluate(task, model, loader, autocast, desc=split)
    return {"checkpoint": str(checkpoint), "split": split, "no_sr": no_sr, **metrics}
