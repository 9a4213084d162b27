"""The routing-at-init control and the class-separation statistic (issue 10)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srblock.analysis.dynamics import class_separation, routing_control, routing_swapped
from srblock.layers import SRBlock


def test_class_separation_is_the_between_class_share_of_variance():
    torch.manual_seed(0)
    labels = torch.randint(0, 4, (200,))
    weights = torch.softmax(torch.randn(200, 5, dtype=torch.float64) + 3 * nn.functional.one_hot(labels, 5), dim=1)
    total = ((weights - weights.mean(0)) ** 2).sum()
    within = sum(((weights[labels == c] - weights[labels == c].mean(0)) ** 2).sum() for c in range(4))
    assert class_separation(weights, labels) == pytest.approx(float(1 - within / total), rel=1e-9)
    assert class_separation(weights, torch.zeros(200, dtype=torch.long)) == pytest.approx(0.0, abs=1e-12)
    assert class_separation(torch.full((5, 3), 1 / 3), torch.arange(5)) == 0.0  # no variance at all


def _class_model() -> tuple[nn.Module, list[tuple[torch.Tensor, torch.Tensor]]]:
    """An SR block on 2-channel 'images' whose first channel is +1 for class 0 and -1 for class 1, plus noise."""
    torch.manual_seed(0)
    labels = torch.arange(64) % 2
    images = torch.randn(64, 2, 2, 2) * 0.1
    images[:, 0] += (1 - 2 * labels.float()).view(-1, 1, 1)
    model = nn.Sequential(SRBlock(2, 2, num_memories=2, hidden=2), nn.Flatten(), nn.Linear(8, 2))
    return model, [(images[:32], labels[:32]), (images[32:], labels[32:])]


def test_routing_control_tells_learned_selection_from_the_init():
    model, batches = _class_model()
    block = model[0]
    with torch.no_grad():  # the init squeeze reads only the noise channel: no class information at any scale
        block.squeeze.weight.copy_(torch.tensor([[[[0.0]], [[1.0]]]]))
    init = {"0": {n: p.detach().clone() for n, p in block.named_parameters() if n != "memory"}}
    same = routing_control(model, batches, init, bootstrap=200)["0"]
    assert same["delta"] == 0.0 and same["ci_low"] == same["ci_high"] == 0.0  # routing untouched: no difference
    with torch.no_grad():  # "train" the routing: memory 1 for a positive first channel, memory 2 otherwise
        block.squeeze.weight.copy_(torch.tensor([[[[1.0]], [[0.0]]]]))
        block.fc1.weight.copy_(torch.full((2, 4), 1.0))
        block.fc2.weight.copy_(torch.tensor([[5.0, 0.0], [-5.0, 0.0]]))
    learned = routing_control(model, batches, init, bootstrap=200)["0"]
    assert learned["eta2_trained"] > 0.9 and learned["delta"] > 0 and learned["ci_low"] > 0
    assert learned["p_not_greater"] == 0.0 and learned["weights_init"].shape == (64, 2)
    assert torch.equal(block.fc2.weight, torch.tensor([[5.0, 0.0], [-5.0, 0.0]]))  # trained weights restored


def test_routing_swapped_restores_even_on_error_and_names_unknown_blocks():
    model, _ = _class_model()
    before = model[0].fc1.weight.clone()
    zeros = {"0": {"fc1.weight": torch.zeros(2, 4)}}
    with pytest.raises(RuntimeError), routing_swapped(model, zeros):
        assert torch.count_nonzero(model[0].fc1.weight) == 0
        raise RuntimeError("boom")
    assert torch.equal(model[0].fc1.weight, before)
    with pytest.raises(ValueError, match="lacks"), routing_swapped(model, {"layer9.sr": {}}):
        pass


def test_plot_dynamics_takes_runs_written_before_a_column_existed(tmp_path):
    """A run without routing_turn (older code) and one whose first row lacks it (resumed across the change)."""
    from srblock.analysis.dynamics import plot_dynamics

    old, resumed = tmp_path / "old", tmp_path / "resumed"
    for run in (old, resumed):
        run.mkdir()
    cols = "layer3.sr.memory_ratio,layer3.sr.routing_change,layer3.sr.routing_entropy,layer3.sr.memory_spread"
    (old / "metrics.csv").write_text(f"epoch,{cols}\n1.0,0.001,0.1,0.99,0.2\n2.0,0.002,0.2,0.99,0.2\n")
    (resumed / "metrics.csv").write_text(
        f"epoch,{cols},layer3.sr.routing_turn\n1.0,0.001,0.1,0.99,0.2,\n2.0,0.002,0.2,0.99,0.2,0.0001\n"
    )
    fig = plot_dynamics({"arm": [old, resumed]}, tmp_path / "d.png")
    turn = next(ax for ax in fig.axes if ax.get_title() == "routing_turn")
    (line,) = turn.get_lines()
    assert line.get_ydata()[-1] == pytest.approx(1e-4) and (tmp_path / "d.png").stat().st_size > 0


def test_plot_dynamics_keeps_a_dozen_arms_apart_and_their_legend_off_the_data(tmp_path):
    """Past ten arms the colour cycle repeats: each arm still gets its own line style, and the legend sits in its own
    panel, not over a curve."""
    from srblock.analysis.dynamics import plot_dynamics

    cols = "layer3.sr.memory_ratio,layer3.sr.routing_change,layer3.sr.routing_entropy,layer3.sr.memory_spread"
    arms = {}
    for k in range(12):
        run = tmp_path / f"arm{k}"
        run.mkdir()
        (run / "metrics.csv").write_text(f"epoch,{cols}\n1.0,0.001,0.1,0.99,0.2\n2.0,0.00{k + 1},0.2,0.9,0.2\n")
        arms[f"arm{k}"] = [run]
    fig = plot_dynamics(arms)
    ratio = next(ax for ax in fig.axes if ax.get_title() == "memory_ratio")
    styles = {(line.get_color(), line.get_linestyle()) for line in ratio.get_lines()}
    assert len(ratio.get_lines()) == 12 and len(styles) == 12
    (legend_ax,) = [ax for ax in fig.axes if ax.get_legend() is not None]
    assert not legend_ax.get_lines() and not legend_ax.axison
    assert [t.get_text() for t in legend_ax.get_legend().get_texts()] == [f"arm{k} (1)" for k in range(12)]


def test_a_routing_only_shrunk_by_weight_decay_is_not_learned_selection():
    """Scaling the routing down (what weight decay does) flattens the softmax and changes η² without any learning;
    the control rescales the init to the trained norm, so a pure shrink gives exactly no difference."""
    model, batches = _class_model()
    block = model[0]
    with torch.no_grad():  # a routing that separates the classes already at "init"
        block.squeeze.weight.copy_(torch.tensor([[[[1.0]], [[0.0]]]]))
        block.fc1.weight.copy_(torch.full((2, 4), 1.0))
        block.fc2.weight.copy_(torch.tensor([[1.0, 0.0], [-1.0, 0.0]]))
    init = {"0": {n: p.detach().clone() for n, p in block.named_parameters() if n != "memory"}}
    with torch.no_grad():
        for name, param in block.named_parameters():
            if name != "memory":
                param.mul_(0.5)  # weight decay's shrink: same direction, smaller norm
    raw = routing_control(model, batches, init, bootstrap=50, match_norm=False)["0"]
    control = routing_control(model, batches, init, bootstrap=50)["0"]
    assert abs(raw["delta"]) > 1e-3  # the shrink alone moves η²
    assert control["delta"] == pytest.approx(0.0, abs=1e-6)


def test_dynamics_table_leaves_out_a_value_a_run_could_not_define() -> None:
    from srblock.analysis.dynamics import dynamics_table

    runs = [  # P = 1: the routing entropy has no meaning and is stored as null; the other columns stand
        {"block3.sr.memory_ratio": 0.01, "block3.sr.routing_entropy": None},
        {"block3.sr.memory_ratio": 0.03, "block3.sr.routing_entropy": None},
    ]
    row = dynamics_table({"p1": runs}, columns=["memory_ratio", "routing_entropy"]).splitlines()[2]
    assert row == "| `p1` | block3.sr | 2 | 0.02 ± 0.014 | – |"
