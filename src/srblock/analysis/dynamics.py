"""Did the routing learn? The SR learning-dynamics curves and the routing-at-init control (issue 10).

A class-dependent softmax usage is not evidence of learned selection by itself: the squeeze conv and the FCN are
a random projection at init, and a random projection of class-dependent features is class-dependent too. So the
usage of the trained model is compared with the usage of the *same* model whose routing weights (squeeze + FCN)
are put back to their seeded init — same backbone features, same memories, only the routing differs — on the same
images. Each init tensor is first rescaled to the norm of its trained value: weight decay shrinks the routing
without turning it, and a smaller scale alone flattens the softmax (found on the first CPU runs: a routing that had
not turned, 1 − cos 6e-6, still "separated" the classes better than its unshrunk init). So the control isolates
what the routing's change of direction did. The statistic is the share of the weights' variance that the class
explains (η², between-class sum of squares over total, summed over the P weights), with a paired bootstrap over
images for the difference trained − init. Only a difference whose interval excludes zero says the training made the
routing separate the classes more than its random init did; the two passes are so strongly paired that a tiny
difference can be "significant", so read its size too.

The curves are the columns the engine writes to ``metrics.csv`` on every validation pass
(:mod:`srblock.engine.sr_dynamics`), drawn per arm as the mean over seeds with the min-max band.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..layers.sr import find_sr_blocks
from .stats import summarize
from .usage import MemoryRecord, collect_memory_weights

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "DYNAMICS_COLUMNS",
    "class_separation",
    "dynamics_table",
    "initial_routing",
    "load_dynamics",
    "plot_dynamics",
    "routing_control",
    "routing_swapped",
]

DYNAMICS_COLUMNS = ("memory_ratio", "routing_change", "routing_turn", "routing_entropy", "memory_spread")


def class_separation(weights: torch.Tensor, labels: torch.Tensor) -> float:
    """η²: share of the total variance of the N x P weights explained by the class (0 = none, 1 = all).

    >>> w = torch.tensor([[0.9, 0.1], [0.8, 0.2], [0.2, 0.8], [0.1, 0.9]])
    >>> round(class_separation(w, torch.tensor([0, 0, 1, 1])), 3)
    0.98
    """
    weights = weights.double()
    centred = weights - weights.mean(0)
    total = float(centred.pow(2).sum())
    if total == 0:
        return 0.0
    classes, inverse, counts = torch.unique(labels, return_inverse=True, return_counts=True)
    means = torch.zeros(len(classes), weights.shape[1], dtype=torch.float64).index_add_(0, inverse, centred)
    means /= counts[:, None]
    between = float((counts[:, None] * means.pow(2)).sum())
    return between / total


def initial_routing(config: Mapping[str, Any]) -> dict[str, dict[str, torch.Tensor]]:
    """The routing weights (squeeze + FCN) of every SR block at init, rebuilt from the recipe's seed exactly as the
    engine builds its model (``seed_everything(seed)``, then ``build_model``)."""
    from ..engine.build import build_model
    from ..engine.trainer import seed_everything

    seed_everything(config["seed"])
    model = build_model(config)
    return {
        name: {n: p.detach().clone() for n, p in block.named_routing_parameters()}
        for name, block in find_sr_blocks(model).items()
    }


@contextmanager
def routing_swapped(model: nn.Module, routing: Mapping[str, Mapping[str, torch.Tensor]]) -> Iterator[nn.Module]:
    """Inside the context, ``model``'s SR blocks route with ``routing`` (e.g. :func:`initial_routing`).

    The trained routing weights are restored on exit.
    """
    blocks = find_sr_blocks(model)
    missing = sorted(set(routing) - set(blocks))
    if missing:
        raise ValueError(f"routing given for SR blocks {missing} that the model lacks; it has {sorted(blocks)}")
    saved = {}
    with torch.no_grad():
        for name, params in routing.items():
            block_params = dict(blocks[name].named_parameters())
            for pname, value in params.items():
                saved[(name, pname)] = block_params[pname].detach().clone()
                block_params[pname].copy_(value)
    try:
        yield model
    finally:
        with torch.no_grad():
            for (name, pname), value in saved.items():
                dict(blocks[name].named_parameters())[pname].copy_(value)


def routing_control(
    model: nn.Module,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    init_routing: Mapping[str, Mapping[str, torch.Tensor]],
    *,
    device: torch.device | str | None = None,
    max_images: int | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
    trained: MemoryRecord | None = None,
    match_norm: bool = True,
) -> dict[str, Any]:
    """Class separation (η²) of the softmax weights under the trained routing and under the same routing at init
    (each init tensor rescaled to its trained norm unless ``match_norm=False``, see the module docstring).

    Returns, per SR block: ``eta2_trained``, ``eta2_init``, ``delta`` (trained − init), its 95 % paired-bootstrap
    interval over images (``ci_low``, ``ci_high``), ``p_not_greater`` (share of bootstrap deltas ≤ 0, a one-sided
    bootstrap p) and the init weights (``weights_init``, N x P) for the usage tables. ``batches`` is iterated twice,
    or once when ``trained`` (the record of the trained model on the same batches) is given.
    """
    if trained is None:
        trained = collect_memory_weights(model, batches, device=device, max_images=max_images)
    if match_norm:
        blocks = find_sr_blocks(model)
        current = {name: dict(blocks[name].named_parameters()) for name in init_routing}
        init_routing = {
            name: {p: t0 * (current[name][p].detach().norm() / t0.norm()) for p, t0 in params.items()}
            for name, params in init_routing.items()
        }
    with routing_swapped(model, init_routing):
        at_init = collect_memory_weights(model, batches, device=device, max_images=max_images)
    if not torch.equal(trained.labels, at_init.labels):
        raise ValueError("the batches changed between the two passes; pass a re-iterable split in a fixed order")
    labels = trained.labels
    generator = torch.Generator().manual_seed(seed)
    out: dict[str, Any] = {}
    for name, weights in trained.weights.items():
        init_weights = at_init.weights[name]
        deltas = []
        for _ in range(bootstrap):
            idx = torch.randint(0, len(labels), (len(labels),), generator=generator)
            deltas.append(
                class_separation(weights[idx], labels[idx]) - class_separation(init_weights[idx], labels[idx])
            )
        deltas_t = torch.tensor(deltas)
        eta_trained, eta_init = class_separation(weights, labels), class_separation(init_weights, labels)
        out[name] = {
            "eta2_trained": eta_trained,
            "eta2_init": eta_init,
            "delta": eta_trained - eta_init,
            "ci_low": float(deltas_t.quantile(0.025)) if bootstrap else math.nan,
            "ci_high": float(deltas_t.quantile(0.975)) if bootstrap else math.nan,
            "p_not_greater": float((deltas_t <= 0).double().mean()) if bootstrap else math.nan,
            "bootstrap": bootstrap,
            "num_images": len(labels),
            "weights_init": init_weights,
        }
    return out


def load_dynamics(run_dir: str | Path) -> dict[str, dict[str, list[float]]]:
    """``{block: {"epoch": [...], column: [...]}}`` from a run folder's ``metrics.csv`` (empty without SR columns)."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.csv in {run_dir} (expected a run folder written by `srblock train`)")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    out: dict[str, dict[str, list[float]]] = {}
    for key in rows[0] if rows else ():
        block, _, column = key.rpartition(".")
        if block and column in DYNAMICS_COLUMNS:
            curves = out.setdefault(block, {"epoch": [float(r["epoch"]) for r in rows]})
            curves[column] = [float(r[key]) if r[key] not in ("", None) else math.nan for r in rows]
    return out


def dynamics_table(
    finals: Mapping[str, Sequence[Mapping[str, float]]], columns: Sequence[str] = DYNAMICS_COLUMNS
) -> str:
    """Markdown table of where training ended: per arm and SR block, the mean ± std over runs of each column.

    ``finals`` maps an arm to its runs' end values (a summary's ``sr_dynamics``: ``{"layer3.sr.memory_ratio": ...}``);
    arms without SR values are left out. A cell with values from fewer runs than its row shows its own n.

    >>> print(dynamics_table({"sr": [{"b.memory_ratio": 0.01}, {"b.memory_ratio": 0.03}]}).splitlines()[2])
    | `sr` | b | 2 | 0.02 ± 0.014 | – | – | – | – |
    """
    header = ["arm", "block", "n", *columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for arm, runs in finals.items():
        blocks = sorted({key.rpartition(".")[0] for run in runs for key in run} - {""})
        for block in blocks:
            n = sum(any(key.startswith(f"{block}.") for key in run) for run in runs)
            cells = []
            for column in columns:
                # None: a value the run could not define (the entropy over P = 1 memory), stored as JSON null
                values = [float(v) for run in runs if (v := run.get(f"{block}.{column}")) is not None]
                s = summarize([v for v in values if not math.isnan(v)])
                cell = "–" if s.n == 0 else f"{s.mean:.4g}" + ("" if s.n < 2 else f" ± {s.std:.2g}")
                cells.append(cell + (f" ({s.n})" if 0 < s.n < n else ""))
            lines.append(f"| `{arm}` | {block} | {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_LINESTYLES = ("-", "--", ":", "-.")


def plot_dynamics(
    arms: Mapping[str, Sequence[str | Path]],
    path: str | Path | None = None,
    *,
    block: str | None = None,
    title: str = "",
) -> Figure:
    """One panel per dynamics column: per arm (label → run folders, e.g. one per seed) the mean over runs against
    the epoch with the min-max band. ``block`` picks the SR block when runs have several (default: the first).
    The figure is also saved as PNG to ``path`` when given."""
    from .plots import grid, save_figure

    fig, axes = grid(len(DYNAMICS_COLUMNS) + 1, max_cols=4, panel=3.0)  # the last panel holds the legend
    panels, legend_ax = axes[:-1], axes[-1]
    for index, (label, run_dirs) in enumerate(arms.items()):
        curves = [load_dynamics(d) for d in run_dirs]
        curves = [c[block] if block else next(iter(c.values())) for c in curves if c]
        if not curves:
            continue
        epochs = curves[0]["epoch"]
        for ax, column in zip(panels, DYNAMICS_COLUMNS, strict=True):
            # runs written before a column existed lack it (or its first rows: NaN after a resume)
            rows = [c[column][: len(epochs)] for c in curves if len(c.get(column, ())) >= len(epochs)]
            if not rows:
                continue
            values = torch.tensor(rows)
            # one style per arm in every panel, also where an arm lacks a column; past 10 arms the dash changes
            style = {"color": f"C{index % 10}", "linestyle": _LINESTYLES[index // 10 % len(_LINESTYLES)]}
            line = ax.plot(epochs, values.nanmean(0).tolist(), label=f"{label} ({len(values)})", **style)[0]
            finite = torch.where(values.isnan(), values.nanmean(0), values)
            low, high = finite.min(0).values.tolist(), finite.max(0).values.tolist()
            ax.fill_between(epochs, low, high, alpha=0.2, color=line.get_color())
    for ax, column in zip(panels, DYNAMICS_COLUMNS, strict=True):
        ax.set_title(column, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        positive = any((line.get_ydata() > 0).any() for line in ax.get_lines())
        if column in ("memory_ratio", "routing_change", "routing_turn") and positive:
            ax.set_yscale("log")
    legend_ax.axis("off")
    handles, labels = max(panels, key=lambda ax: len(ax.get_lines())).get_legend_handles_labels()
    if handles:
        legend_ax.legend(handles, labels, loc="upper left", fontsize=7, frameon=False)
    if title:
        fig.suptitle(title, fontsize=10)
    if path is not None:
        save_figure(fig, path)
    return fig
