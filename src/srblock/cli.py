"""The ``srblock`` command line: each verb is a thin call into the library.

Verbs register themselves in :data:`VERBS` through ``_add_<verb>`` functions below, one per verb.

Errors reach a person as one line, ``srblock: error: <what was expected and what came>``: exit status 2 for a
usage error (bad recipe or option, missing data, damaged checkpoint, a folder that holds a run), 1 for a failed
run (divergence, a full disk, a bug), 130 on Ctrl-C and 143 on SIGTERM (with the command that continues the run).
``--traceback`` (or ``SRBLOCK_TRACEBACK=1``) shows the full Python traceback instead.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import shlex
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from . import __version__
from ._extras import MissingExtraError

VerbAdder = Callable[[argparse._SubParsersAction], None]

#: exceptions that mean "the input was wrong" (exit status 2), as argparse does for bad options
MAX_MESSAGE = 2000  # characters of an error line

USER_ERRORS: tuple[type[BaseException], ...] = (
    ValueError,
    FileNotFoundError,
    FileExistsError,
    NotADirectoryError,
    IsADirectoryError,
    MissingExtraError,  # an optional package to install: the message names the pip command
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srblock", description="Squeeze-and-Remember block: train, evaluate, analyse.", allow_abbrev=False
    )
    parser.add_argument("--version", action="version", version=f"srblock {__version__}")
    trace_help = "on an error, show the full Python traceback (also SRBLOCK_TRACEBACK=1)"
    parser.add_argument("--traceback", action="store_true", help=trace_help)
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in VERBS:
        add(sub)
    for verb in sub.choices.values():  # every verb, so the flags go where users type them: srblock train -q ...
        verb.allow_abbrev = False  # --epoch is not --epochs: a prefix is an error, never another option
        loudness = verb.add_mutually_exclusive_group()
        loudness.add_argument("-v", "--verbose", action="store_true", help="also show debug messages")
        loudness.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors; no progress bars")
        verb.add_argument("--traceback", action="store_true", default=argparse.SUPPRESS, help=trace_help)
    return parser


class _LevelFormatter(logging.Formatter):
    """Info messages as plain lines (they are the command's progress); other levels name themselves."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno == logging.INFO else f"{record.levelname.lower()}: {message}"


@contextlib.contextmanager
def cli_logging(level: int = logging.INFO) -> Iterator[None]:
    """Show the library's messages (logger ``srblock``) at ``level`` and above on stderr while the block runs.

    Log lines are printed above a progress bar instead of through it (tqdm's ``logging_redirect_tqdm``); the logger
    is left as it was afterwards, so ``main()`` can be called from Python and tests.
    """
    from tqdm.contrib.logging import logging_redirect_tqdm

    logger = logging.getLogger("srblock")
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(_LevelFormatter("%(message)s"))
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(level)
    try:
        with logging_redirect_tqdm(loggers=[logger]):
            yield
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old_level)


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's kill, ``kill PID``), raised like Ctrl-C so atomic writes clean up and we exit 143."""


def _raise_terminated(signum: int, frame: Any) -> None:
    raise Terminated


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    traceback = args.traceback or os.environ.get("SRBLOCK_TRACEBACK", "").strip() not in ("", "0")
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _raise_terminated) if on_main_thread else None
    try:
        with cli_logging(logging.DEBUG if args.verbose else logging.WARNING if args.quiet else logging.INFO):
            return int(args.func(args) or 0)
    except KeyboardInterrupt as err:
        if traceback:
            raise
        code, what = (143, "terminated (SIGTERM)") if isinstance(err, Terminated) else (130, "interrupted")
        hint = getattr(args, "resume_hint", None)
        needs = getattr(args, "resume_needs", None)
        tail = f"; continue with: {hint}" if hint else ""
        if hint and needs is not None and not needs.is_file():
            tail = "; nothing was saved yet: run the same command again to start over"
        print(f"srblock: {what}; every file written so far is complete{tail}", file=sys.stderr)
        return code
    except Exception as err:
        if traceback:
            raise
        message = " ".join(str(err).split()) or type(err).__name__
        if len(message) > MAX_MESSAGE:  # a huge value in a recipe must not flood the terminal: one line stays short
            half, cut = MAX_MESSAGE // 2, len(message) - MAX_MESSAGE
            message = f"{message[:half]} ... ({cut:,} characters left out) ... {message[-half:]}"
        if isinstance(getattr(err, "exit_code", None), int):  # our errors that know their class (a sweep's run)
            code = err.exit_code
        elif isinstance(err, USER_ERRORS):
            code = 2
        elif isinstance(err, (OSError, FloatingPointError)):  # a full disk, a diverged run: not a usage error
            code = 1
        else:
            code, message = 1, f"{type(err).__name__}: {message} (unexpected: rerun with --traceback and report it)"
        print(f"srblock: error: {message}", file=sys.stderr)
        return code
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def _seed_list(text: str) -> list[int]:
    from .experiments import parse_seeds

    try:
        return parse_seeds(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of recipes x seeds (resumable) and compare arms with paired and Welch t-tests",
        description="Run sweeps/<name>.yaml one run after another (or several at once with --launcher), skipping "
        "runs whose summary.json exists; write results.csv and table.md (mean ± std, Δ vs each arm's control with "
        "its paired and Welch intervals, paired, Holm and sign-test p) into the sweep's output.",
    )
    p.add_argument("-c", "--config", help="sweep file: a built-in name (cifar10_cpu_3ep_d2d) or a YAML path")
    p.add_argument("--dry-run", action="store_true", help="list the runs and which are done; run nothing")
    p.add_argument("--report", metavar="DIR", help="only re-aggregate the finished runs under DIR")
    p.add_argument(
        "--analyze",
        action="store_true",
        help="with --report: first, for every run that kept a checkpoint, save its test predictions "
        "(<run>/predictions_test.npz; noise.md then splits each arm's seed spread) and `srblock analyze` (test split) "
        "each SR run into <run>/analysis_test (dynamics.md then adds the routing control and the ablation); each once",
    )
    p.add_argument(
        "--set",
        dest="overrides",
        action=_KeyValue,
        default=[],
        metavar="KEY=VALUE",
        help="extra override for every run, e.g. --set data.root=/data/cifar10 (repeatable)",
    )
    p.add_argument("--baseline", help="arm to compare against (default: the sweep's baseline)")
    p.add_argument(
        "--metric",
        help="summary.json key to compare (default: the sweep's metric, test_acc1); another key, e.g. test_acc1_last, "
        "is tabled in table-<metric>.md",
    )
    p.add_argument(
        "--after-run", metavar="CMD", help="shell command after each finished run (env SRBLOCK_RUN_DIR, ...)"
    )
    p.add_argument(
        "--keep-going",
        action="store_true",
        help="a failing run is recorded (its failed.json) and the sweep goes on; exit status 1 at the end",
    )
    p.add_argument(
        "--rerun-stale",
        action="store_true",
        help="run again the finished runs whose config no longer matches the sweep (their folders move to "
        "<output>/.stale/); without it the sweep refuses to start while there are any",
    )
    p.add_argument(
        "--launcher",
        metavar="NAME",
        help="where runs execute: sequential (default), local:N (N worker processes, one GPU each when there are "
        "GPUs), slurm (submitit; pip install 'srblock[slurm]'); overrides the sweep file's launcher:",
    )
    p.add_argument(
        "--launcher-opt",
        dest="launcher_options",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="launcher option, e.g. partition=gpu, time=240 (minutes), gpus=1 for slurm; threads=4 for local "
        "(repeatable)",
    )

    p.add_argument("--merge", metavar="ARCHIVE", help="add the runs of a results archive made elsewhere, then report")
    p.add_argument("--arms", type=lambda text: text.split(","), metavar="A,B", help="run only these arms")
    p.add_argument(
        "--seeds",
        type=_seed_list,
        metavar="N-M",
        help="run only these seeds (3-9, 0,2,5); with --report, table only their runs in table-seeds<N-M>.md (e.g. "
        "fresh seeds that played no part in choosing the arms)",
    )
    p.add_argument("--time-budget", type=float, metavar="S", help="start no run that is not expected to end within S s")
    p.add_argument(
        "--run-seconds", type=float, metavar="S", help="expected run length while an arm has no finished run"
    )
    p.add_argument(
        "--time-arms",
        action="store_true",
        help="time one training step and one inference forward of every arm's network, interleaved, as a ratio to "
        "its control's; write <output>/latency.json, which the table then shows (train step ×, inference ×)",
    )

    def run(args: argparse.Namespace) -> int:
        from .experiments import sweep_command

        if args.config and not (args.report or args.dry_run or args.time_arms):
            args.resume_hint = (
                f"srblock sweep -c {shlex.quote(args.config)} (finished runs are skipped, the interrupted resumes)"
            )
        return sweep_command(
            args.config,
            report=args.report,
            analyze=args.analyze,
            merge=args.merge,
            dry_run=args.dry_run,
            overrides=args.overrides,
            baseline=args.baseline,
            metric=args.metric,
            after_run=args.after_run,
            keep_going=args.keep_going,
            rerun_stale=args.rerun_stale,
            launcher=args.launcher,
            launcher_options=args.launcher_options,
            arms=args.arms,
            seeds=args.seeds,
            time_budget=args.time_budget,
            run_seconds=args.run_seconds,
            time_arms=args.time_arms,
        )

    p.set_defaults(func=run)


def _add_overhead(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "overhead",
        help="parameters, GMACs and latency of an SR block vs the same model without it",
        description="Build a model with and without SR and report params_base, params_sr, sr_params, "
        "overhead_pct (the paper's OH column), sr_params_formula (Eq. 1), gmacs_base, gmacs_sr and the eval/train "
        "latency ratios (SR / no SR, interleaved, median). The model is one of the zoo (SR at --sr-stage M, "
        "CIFAR models at 32x32, ImageNet models at 224x224) or timm:NAME / torchvision:NAME (no pretrained "
        "weights; SR after the module --after, e.g. --model timm:convnext_tiny --after stages.2).",
    )
    p.add_argument("--model", required=True, help="zoo name (resnet50, cifar_resnet18), timm:NAME or torchvision:NAME")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument(
        "--sr-stage", type=int, nargs="+", metavar="M", help="zoo models: stage(s) after which SR sits (1-based)"
    )
    where.add_argument("--after", metavar="MODULE", help="any model: the module SR follows, e.g. layer3 or stages.2")
    p.add_argument("--num-memories", type=int, required=True, metavar="P", help="memory blocks P")
    p.add_argument("--hidden", type=int, required=True, metavar="U", help="hidden neurons U of the FCN")
    p.add_argument("--input-size", type=int, nargs="+", metavar="S", help="S or H W (default: the model's native)")
    p.add_argument("--num-classes", type=int, metavar="K", help="classes (default: 10 CIFAR models, 1000 else)")
    p.add_argument("--attention", choices=["se", "cbam", "eca"], help="SE, CBAM or ECA in every residual block")
    p.add_argument("--regularizer", choices=["dropout", "dropout2d", "dropblock"], help="the paper's regularizers")
    p.add_argument("--width", type=float, default=1.0, help="channel width multiplier (CIFAR nets)")
    p.add_argument("--batch-size", type=int, default=1, help="eval batch for timing (train uses at least 2)")
    p.add_argument("--repeats", type=int, default=10, help="timed interleaved repeats (median)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-timing", action="store_true", help="skip the latency ratios (they are null in --json)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of the table")

    def run(args: argparse.Namespace) -> int:
        import json

        import torch

        from .analysis.overhead import format_overhead, overhead_report

        size = args.input_size
        if size is not None and len(size) not in (1, 2):
            raise ValueError(f"--input-size takes S or H W, got {size}")
        report = overhead_report(
            args.model,
            sr_stage=args.sr_stage[0] if args.sr_stage and len(args.sr_stage) == 1 else args.sr_stage,
            after=args.after,
            num_memories=args.num_memories,
            hidden=args.hidden,
            input_size=None if size is None else (size[0] if len(size) == 1 else tuple(size)),
            num_classes=args.num_classes,
            attention=args.attention,
            regularizer=args.regularizer,
            width=args.width,
            timing=not args.no_timing,
            batch_size=args.batch_size,
            repeats=args.repeats,
            device=args.device or ("cuda" if torch.cuda.is_available() else "cpu"),
        )
        print(json.dumps(report, indent=2) if args.json else format_overhead(report))
        return 0

    p.set_defaults(func=run)


def _add_analyze(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="memory usage, memory maps, feature effect and SR ablation of a trained checkpoint",
        description="Run the paper's analyses (softmax usage per class, channel-mean memory maps, features before/"
        "after SR, accuracy without SR) on a checkpoint and a split of its recipe's dataset; writes report.md, "
        "analysis.json and PNGs to the output folder.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint_best.pt / checkpoint_last.pt of a run")
    p.add_argument("--data-dir", help="dataset root (overrides the recipe's data.root)")
    p.add_argument(
        "--split",
        choices=["val", "test"],
        default="test",
        help="which split to analyse (default test: the held-out one)",
    )
    p.add_argument("--classes", nargs="+", help="chosen classes, names or indices (default: all if <= 10, else 5)")
    p.add_argument("--per-class", type=int, default=50, metavar="N", help="images per chosen class (default 50)")
    p.add_argument("--max-images", type=int, help="use only the first N images of the split (a quick look)")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--output", help="output folder (default: <checkpoint folder>/analysis_<split>)")

    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from .analysis.report import analyze_checkpoint

        result = analyze_checkpoint(
            args.checkpoint,
            data_dir=args.data_dir,
            split=args.split,
            output_dir=args.output,
            classes=args.classes,
            per_class=args.per_class,
            max_images=args.max_images,
            device=args.device,
        )
        out = Path(result["output_dir"])
        print(f"accuracy with SR: {result['accuracy']['acc1_sr']:.2f} % on {result['num_images']} {result['inputs']}")
        if "ablation" in result:
            print(f"accuracy without SR: {result['ablation']['acc_no_sr']:.2f} %")
        print(f"wrote {out / 'report.md'}")
        return 0

    p.set_defaults(func=run)


class _KeyValue(argparse._AppendAction):
    """``--set KEY=VALUE`` (repeatable); ``--set KEY VALUE`` is an error that shows the form to type."""

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        if "=" not in values:
            parser.error(
                f"{option_string} takes one KEY=VALUE argument, got {values!r}: write {option_string} {values}=VALUE"
            )
        super().__call__(parser, namespace, values, option_string)


def _add_robustness(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "robustness",
        help="corruption benchmark (CIFAR-10-C's 15 corruptions x 5 severities) of a trained run or a sweep",
        description="Score a run folder's kept checkpoint on its test split, clean and under the 15 corruptions x 5 "
        "severities of CIFAR-10-C (Hendrycks & Dietterich 2019, their CIFAR parameters), generated from the test "
        "set (seeded, cached); write robustness.json (robustness-seed1.json, robustness-n500.json, ... for another "
        "--seed or --max-images) and print the table. On a sweep folder, score every run that "
        "needs it (runs trained with --train.robustness true already carry the numbers) and write robustness.md: "
        "clean top-1, mean corruption accuracy (mCA) and the drop of each arm against the baseline, paired by seed.",
    )
    p.add_argument("path", metavar="RUN|SWEEP_DIR", help="a run folder or a sweep's output folder")
    p.add_argument("--data-dir", help="data root, if it moved since training")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--seed", type=int, default=0, help="seed of the corruptions' random draws (default 0)")
    p.add_argument("--max-images", type=int, metavar="N", help="run: score a seeded subset of N test images (a look)")
    p.add_argument("--baseline", help="sweep: the arm the others are compared to (default: the sweep's)")
    p.add_argument("--redo", action="store_true", help="recompute the result file where a checkpoint is kept")
    p.add_argument("--cache-dir", help="cache of corrupted sets (default: $SRBLOCK_CACHE/corruptions)")

    def run(args: argparse.Namespace) -> int:
        from .analysis.robustness import robustness
        from .experiments.sweep import find_sweep_copy

        sweep = find_sweep_copy(args.path)  # a sweep's folder: its baseline and the seeds it plans for each arm
        robustness(
            args.path,
            data_dir=args.data_dir,
            device=args.device,
            seed=args.seed,
            max_images=args.max_images,
            redo=args.redo,
            baseline=args.baseline or (sweep.baseline if sweep is not None else None),
            planned=sweep.planned_seeds() if sweep is not None else None,
            cache_dir=args.cache_dir,
            log=print,
        )
        return 0

    p.set_defaults(func=run)


class _DottedOverrideParser(argparse.ArgumentParser):
    """A verb parser that also takes ``--section.key value`` / ``--section.key=value`` recipe overrides.

    Option names with a dot are collected (in order) into ``args.dotted_overrides`` as ``"section.key=value"``.
    """

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        tokens = list(sys.argv[1:] if args is None else args)
        rest, dotted, i = [], [], 0
        while i < len(tokens):
            token = tokens[i]
            name = token.split("=", 1)[0]
            if token.startswith("--") and "." in name and not name[2:3].isdigit():
                if "=" in token:
                    dotted.append(token[2:])
                elif i + 1 < len(tokens):
                    dotted.append(f"{token[2:]}={tokens[i + 1]}")
                    i += 1
                else:
                    self.error(f"{token} needs a value")
            else:
                rest.append(token)
            i += 1
        parsed, extra = super().parse_known_args(rest, namespace)
        parsed.dotted_overrides = [*getattr(parsed, "dotted_overrides", []), *dotted]
        return parsed, extra


def _add_train(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train and evaluate one recipe (torchrun-aware)",
        description="Train a recipe (a built-in name such as cifar10/r18_d2d_sr, or a YAML path): 90/10 train/val "
        "split from the seed, best-val "
        "checkpoint tested once. Override any recipe key with --section.key value (or --set section.key=value); "
        "values are YAML (4, 0.1, [30, 60], null, true). Multi-GPU/CPU: torchrun --nproc_per_node=N -m srblock.cli "
        "train ...",
        epilog="example: srblock train -c cifar10/r18_d2d_sr --data-dir ../shared/data/cifar10 "
        "--epochs 4 --width 0.25 --train-subset 5000 --model.num_memories 4",
    )
    p.__class__ = _DottedOverrideParser  # accept --section.key value overrides
    p.add_argument(
        "-c", "--config", help="recipe: a built-in name (cifar10/r18_d2d_sr) or a YAML path (not needed to --resume)"
    )
    p.add_argument("--output", help="run folder (default runs/<dataset>/<recipe>-seed<N>); never overwritten")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output from checkpoint_last.pt, with the run's own config.yaml as the recipe "
        "(options given now change it: LR, weight decay, epochs, ... are applied; seed, data, model are refused)",
    )
    p.add_argument("--seed", type=int, help="seed of init, split, order and augmentation")
    p.add_argument("--data-dir", help="data root (data.root)")
    p.add_argument("--epochs", type=int, help="train.epochs; the LR milestones scale proportionally")
    p.add_argument("--iterations", type=int, help="train.iterations (iteration-counted recipes)")
    p.add_argument("--train-subset", type=int, help="train on N samples of the training split (quick runs)")
    p.add_argument("--width", type=float, help="model.width: channel-width multiplier of the CIFAR nets")
    p.add_argument("--batch-size", type=int, help="train.batch_size (total over all ranks)")
    p.add_argument("--device", help="train.device: auto, cpu, cuda, cuda:N")
    p.add_argument("--amp", choices=["bf16", "fp16"], help="train.amp: mixed precision")
    p.add_argument("--set", dest="overrides", action=_KeyValue, default=[], metavar="KEY=VALUE", help="recipe override")

    def run(args: argparse.Namespace) -> int:
        import json
        import os
        from pathlib import Path

        from .engine import load_config, train

        named = {
            "seed": args.seed,
            "data.root": args.data_dir,
            "train.epochs": args.epochs,
            "train.iterations": args.iterations,
            "data.train_subset": args.train_subset,
            "model.width": args.width,
            "train.batch_size": args.batch_size,
            "train.device": args.device,
            "train.amp": args.amp,
        }
        overrides = [*(f"{k}={v}" for k, v in named.items() if v is not None), *args.overrides, *args.dotted_overrides]
        config = None
        output = Path(args.output) if args.output else None
        if output is None:
            if not args.config:
                raise ValueError("srblock train needs -c RECIPE, or --output RUN_FOLDER --resume to continue a run")
            config = load_config(args.config, overrides)
            recipe = Path(args.config)
            output = Path("runs") / recipe.parent.name / f"{recipe.stem}-seed{config['seed']}"
        if args.resume and (output / "config.yaml").is_file():  # the run's own recipe, plus what is given now
            if args.config:
                print(f"resuming {output} from its config.yaml; -c {args.config} is not used", file=sys.stderr)
            config = load_config(output / "config.yaml", overrides)
        elif config is None:
            if not args.config:
                raise FileNotFoundError(f"nothing to resume: {output} holds no config.yaml; pass -c RECIPE to start")
            config = load_config(args.config, overrides)
        args.resume_hint = f"srblock train --output {shlex.quote(str(output))} --resume"
        args.resume_needs = output / "checkpoint_last.pt"  # before the first checkpoint there is nothing to resume
        summary = train(config, output, resume=args.resume)
        if summary.get("config") is not None and os.environ.get("RANK", "0") == "0":  # torchrun: rank 0 prints
            shown = {k: v for k, v in summary.items() if k not in ("config", "val", "test")}
            print(json.dumps(shown, indent=2))
            print(f"run folder: {output}")
        return 0

    p.set_defaults(func=run)


def _add_eval(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate a trained checkpoint (optionally with its SR blocks removed)",
        description="Top-1/top-5 (or the task's metrics) of a checkpoint on its recipe's test (or val) split. "
        "--no-sr replaces every SR block by identity: the paper's ablation.",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint_best.pt / checkpoint_last.pt of a run")
    p.add_argument("--data-dir", help="data root, if it moved since training")
    p.add_argument("--no-sr", action="store_true", help="remove the SR blocks before evaluating")
    p.add_argument("--split", choices=["test", "val"], default="test")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N")

    def run(args: argparse.Namespace) -> int:
        import json

        from .engine import evaluate_checkpoint

        result = evaluate_checkpoint(
            args.checkpoint, data_dir=args.data_dir, no_sr=args.no_sr, split=args.split, device=args.device
        )
        print(json.dumps(result, indent=2))
        return 0

    p.set_defaults(func=run)


def _add_demo(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train a baseline and its SR twin on scikit-learn's digits (about a minute on a laptop CPU)",
        description="Trains the built-in recipes digits/r18_d2d and digits/r18_d2d_sr, prints both test accuracies, "
        "the SR parameter overhead and the ablation (SR removed), analyses the SR model (report.md) and plots the "
        "per-class memory weights. Never overwrites: without --output it writes runs/demo, or the next free "
        "runs/demo-N. Needs the demo extra: pip install 'srblock[demo]'.",
    )
    p.add_argument("--output", help="a new or empty output folder (default: runs/demo, else the next runs/demo-N)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--fast", action="store_true", help="a few seconds' smoke version (numbers meaningless)")

    def run(args: argparse.Namespace) -> int:
        from .demo import run_demo

        run_demo(args.output, fast=args.fast, seed=args.seed)
        return 0

    p.set_defaults(func=run)


def _add_recipes(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "recipes",
        help="list, show or copy the built-in recipes and sweep files",
        description="The built-in recipes (one per paper table row; `srblock train -c NAME`) and sweep files "
        "(`srblock sweep -c NAME`), shipped inside the package.",
        epilog="examples: srblock recipes list cifar10 | srblock recipes show cifar10/r18_d2d_sr --resolved | "
        "srblock recipes copy cifar10/r18_d2d_sr my_recipes",
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION")
    p_list = actions.add_parser("list", help="names and first comment sentence of the recipes and sweep files")
    p_list.add_argument("pattern", nargs="?", default="*", help="shell pattern (cifar10/r18*) or a substring")
    p_show = actions.add_parser("show", help="print a recipe (or sweep file) as shipped")
    p_show.add_argument("name", help="built-in name (cifar10/r18_d2d_sr, cifar10_cpu_3ep_d2d) or a YAML path")
    p_show.add_argument(
        "--resolved",
        action="store_true",
        help="print the recipe as the engine runs it (defaults:, engine defaults and data defaults filled in)",
    )
    p_copy = actions.add_parser("copy", help="copy a recipe and the files it inherits into a folder, to edit")
    p_copy.add_argument("name", help="built-in name or a YAML path")
    p_copy.add_argument("dest", metavar="DIR", help="folder to copy into (created)")
    p_copy.add_argument("--force", action="store_true", help="replace files in DIR that differ from the recipe's")

    def run(args: argparse.Namespace) -> int:
        from . import recipes

        if args.action in (None, "list"):
            pattern = getattr(args, "pattern", "*")
            if not any(c in pattern for c in "*?["):
                pattern = f"*{pattern}*"
            for title, sweeps, command in (("recipes", False, "train"), ("sweep files", True, "sweep")):
                names = recipes.list_recipes(pattern, sweeps=sweeps)
                print(f"{title} (srblock {command} -c NAME): {len(names)}")
                for name in names:
                    shown = name.removeprefix("sweeps/")
                    print(f"  {shown:<28} {recipes.recipe_summary(name, sweeps=sweeps)}".rstrip())
            return 0
        path, is_sweep = recipes.find_recipe_or_sweep(args.name)
        if args.action == "show" and args.resolved:
            if is_sweep:
                raise ValueError(f"--resolved shows a recipe as the engine runs it; {args.name!r} is a sweep file")
            import yaml

            from .engine import load_config

            print(yaml.safe_dump(load_config(path), sort_keys=False), end="")
        elif args.action == "show":
            print(path.read_text(encoding="utf-8"), end="")
        else:
            written = recipes.copy_recipe(path, args.dest, force=args.force)
            for target, status in written:
                print(f"{status:<11} {target}")
            print(f"run the copy with: srblock {'sweep' if is_sweep else 'train'} -c {written[0][0]}")
        return 0

    p.set_defaults(func=run)


def _add_export(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="write a trained checkpoint as weights to share (model.safetensors + config.json)",
        description="Write the network of a checkpoint as model.safetensors (weights only: no optimizer, no RNG "
        "state) and config.json (the recipe's model section), plus a model card, into a new folder. Load it with "
        "srblock.models.hub.from_pretrained(DIR); upload it with huggingface_hub. Needs srblock[hub].",
    )
    p.add_argument("--checkpoint", required=True, help="checkpoint_best.pt / checkpoint_last.pt of a run")
    p.add_argument("--output", required=True, metavar="DIR", help="folder to create (must not exist or be empty)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing non-empty folder")

    def run(args: argparse.Namespace) -> int:
        from .engine import export_pretrained

        out = export_pretrained(args.checkpoint, args.output, overwrite=args.overwrite)
        print(f"wrote {out}: {', '.join(sorted(p.name for p in out.iterdir()))}")
        return 0

    p.set_defaults(func=run)


# In the order a newcomer meets them: data -> models -> engine -> analysis.
def _add_compare(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare",
        help="one report across datasets from several baseline-vs-SR sweeps (Wilcoxon, critical difference diagram)",
        description="Pair each sweep folder's baseline with each of its SR arms (<baseline>-sr[-variant]) by seed "
        "(e.g. results/timeseries/<dataset>-<model>) "
        "and write crossdataset.md (per dataset: paired Δ and its 95 % CI, sign test, the published accuracy, the SR "
        "dynamics and cost; across datasets: the Wilcoxon signed-rank test) and cd.png (aeon's critical difference "
        "diagram) into --output. Never replaces a file srblock did not write.",
    )
    p.add_argument("folders", nargs="+", metavar="FOLDER", help="sweep output folders, or folders of them")
    p.add_argument(
        "--output",
        help="folder for crossdataset.md and cd.png (default: a folder of sweeps given, or the sweeps' common parent)",
    )

    def run(args: argparse.Namespace) -> int:
        from pathlib import Path

        from .experiments.crossdataset import compare_sweeps

        folders = [Path(f) for f in args.folders]
        output = args.output
        if output is None:  # a folder of sweeps itself, a sweep folder's parent; one folder named twice is one
            homes = [f.resolve().parent if (f / "sweep.yaml").is_file() else f for f in folders]
            same = len({h.resolve() for h in homes}) == 1
            output = homes[0] if same else Path(os.path.commonpath([h.resolve() for h in homes]))
        report, written = compare_sweeps(folders, output)
        print(report)
        print("wrote " + ", ".join(map(str, written)))
        return 0

    p.set_defaults(func=run)


def _add_trend(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "trend",
        help="test whether a sweep's metric moves along ordered arms (SR placement depth, log2 of the memories)",
        description="Treat the named arms of one sweep folder as ordered levels (ARM=X), take each seed's "
        "least-squares slope on X of each level's paired Δ to its control (the arm's own 'baseline:' in the sweep "
        "file, else the sweep's; with one control for every level, the slope of the metric itself), and test the "
        "slopes across seeds (mean with 95 % CI, t-test, sign test), with Friedman's test of any difference between "
        "the levels. Two levels with different controls test an interaction (does SR's effect change with label "
        "smoothing?). Writes trend-<name>.md and its figure trend-<name>.png into the folder; never replaces a "
        "file srblock did not write.",
    )
    p.add_argument("folder", metavar="FOLDER", help="a sweep output folder (with the sweep.yaml srblock sweep writes)")
    p.add_argument(
        "--levels",
        required=True,
        metavar="ARM=X,...",
        help="the arms and their values, e.g. r18-d2d-sr-m1=1,r18-d2d-sr-m2=2,r18-d2d-sr=3,r18-d2d-sr-m4=4",
    )
    p.add_argument("--name", default="trend", help="names the report trend-<name>.md (default: trend)")
    p.add_argument(
        "--metric",
        help="a number in the runs' summary.json (default: the sweep's metric), e.g. test_acc1_last; another metric "
        "than the sweep's writes trend-<name>-<metric>.md",
    )

    def run(args: argparse.Namespace) -> int:
        from .experiments.trend import parse_levels, trend_report

        report, path = trend_report(args.folder, parse_levels(args.levels), name=args.name, metric=args.metric)
        print(report)
        print(f"wrote {path} and {path.with_suffix('.png')}")
        return 0

    p.set_defaults(func=run)


VERBS: list[VerbAdder] = [
    _add_demo,
    _add_recipes,
    _add_train,
    _add_eval,
    _add_overhead,
    _add_analyze,
    _add_robustness,
    _add_sweep,
    _add_compare,
    _add_trend,
    _add_export,
]

if __name__ == "__main__":
    sys.exit(main())
