"""The ``srblock`` command line: each verb is a thin call into the library.

Verbs register themselves in :data:`VERBS` through ``_add_<verb>`` functions below, one per verb.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from . import __version__

VerbAdder = Callable[[argparse._SubParsersAction], None]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="srblock", description="Squeeze-and-Remember block: train, evaluate, analyse."
    )
    parser.add_argument("--version", action="version", version=f"srblock {__version__}")
    sub = parser.add_subparsers(dest="verb", required=True, metavar="VERB")
    for add in VERBS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)


def _add_sweep(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a grid of recipes x seeds (resumable) and compare arms with Welch t-tests",
        description="Run sweeps/<name>.yaml one run after another, skipping runs whose summary.json exists; "
        "write results.csv and table.md (mean ± std, Δ vs the baseline arm, Welch p) into the sweep's output.",
    )
    p.add_argument("-c", "--config", help="sweep file (sweeps/<name>.yaml)")
    p.add_argument("--dry-run", action="store_true", help="list the runs and which are done; run nothing")
    p.add_argument("--report", metavar="DIR", help="only re-aggregate the finished runs under DIR")
    p.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="extra override for every run, e.g. --set data.root=/data/cifar10 (repeatable)",
    )
    p.add_argument("--baseline", help="arm to compare against (default: the sweep's baseline)")
    p.add_argument("--metric", help="summary.json key to compare (default: the sweep's metric, test_acc1)")
    p.add_argument(
        "--after-run", metavar="CMD", help="shell command after each finished run (env SRBLOCK_RUN_DIR, ...)"
    )

    def run(args: argparse.Namespace) -> int:
        from .experiments import sweep_command

        return sweep_command(
            args.config,
            report=args.report,
            dry_run=args.dry_run,
            overrides=args.overrides,
            baseline=args.baseline,
            metric=args.metric,
            after_run=args.after_run,
        )

    p.set_defaults(func=run)


def _add_overhead(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "overhead",
        help="parameters, GMACs and latency of an SR block vs the same model without it",
        description="Build a model of the zoo with and without SR and report params_base, params_sr, sr_params, "
        "overhead_pct (the paper's OH column), sr_params_formula (Eq. 1), gmacs_base, gmacs_sr and the eval/train "
        "latency ratios (SR / no SR, interleaved, median). CIFAR models at 32x32, ImageNet models at 224x224.",
    )
    p.add_argument("--model", required=True, help="registered model name, e.g. resnet50 or cifar_resnet18")
    p.add_argument("--sr-stage", type=int, required=True, metavar="M", help="stage after which SR sits (1-based)")
    p.add_argument("--num-memories", type=int, required=True, metavar="P", help="memory blocks P")
    p.add_argument("--hidden", type=int, required=True, metavar="U", help="hidden neurons U of the FCN")
    p.add_argument("--input-size", type=int, nargs="+", metavar="S", help="S or H W (default: 32 CIFAR, 224 else)")
    p.add_argument("--num-classes", type=int, metavar="K", help="classes (default: 10 CIFAR models, 1000 else)")
    p.add_argument("--attention", choices=["se", "cbam"], help="SE or CBAM in every residual block")
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
            raise SystemExit(f"--input-size takes S or H W, got {size}")
        report = overhead_report(
            args.model,
            sr_stage=args.sr_stage,
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
    p.add_argument("--split", choices=["val", "test"], default="val", help="which split to analyse (default val)")
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
        print(f"accuracy with SR: {result['accuracy']['acc1_sr']:.2f} % on {result['num_images']} images")
        if "ablation" in result:
            print(f"accuracy without SR: {result['ablation']['acc_no_sr']:.2f} %")
        print(f"wrote {out / 'report.md'}")
        return 0

    p.set_defaults(func=run)


VERBS: list[VerbAdder] = [_add_sweep, _add_overhead, _add_analyze]

if __name__ == "__main__":
    sys.exit(main())
