"""torch.fx: the SR block traces symbolically, and its input checks stay active in the traced graph."""

from __future__ import annotations

import pytest
import torch
import torch.fx
from torch import nn

from srblock.layers import SRBlock1d, SRBlock2d, SRBlock3d

RANKS = [(SRBlock1d, (10,), (13,)), (SRBlock2d, (5, 4), (7, 9)), (SRBlock3d, (3, 4, 2), (5, 3, 4))]
RANK_IDS = ["1d", "2d", "3d"]


def make(cls, feat_size, **kwargs) -> nn.Module:
    return cls(6, feat_size, num_memories=3, hidden=4, memory_init="normal", memory_std=1.0, **kwargs)


@pytest.mark.parametrize("act_layer", [None, nn.ReLU], ids=["paper", "relu"])
@pytest.mark.parametrize("size_policy", ["strict", "interpolate"])
@pytest.mark.parametrize(("cls", "feat_size", "other"), RANKS, ids=RANK_IDS)
def test_symbolic_trace_equals_eager(cls, feat_size, other, size_policy, act_layer):
    block = make(cls, feat_size, size_policy=size_policy, act_layer=act_layer)
    traced = torch.fx.symbolic_trace(block)
    assert isinstance(traced, torch.fx.GraphModule)
    sizes = [feat_size, other] if size_policy == "interpolate" else [feat_size]
    for training in (True, False):
        block.train(training)
        traced.train(training)
        for size in sizes:
            x = torch.randn(3, 6, *size)
            out = traced(x)
            torch.testing.assert_close(out, block(x), rtol=1e-5, atol=1e-5)
            assert not torch.allclose(out, x, atol=1e-3)


def test_traced_graph_keeps_the_softmax_module_and_the_fused_ops():
    traced = torch.fx.symbolic_trace(make(SRBlock2d, (5, 4)))
    calls = {str(n.target) for n in traced.graph.nodes if n.op in ("call_module", "call_function")}
    assert "softmax" in calls  # forward hooks on block.softmax (capture_memory_weights) still apply
    assert any("bmm" in c for c in calls) and any("_add_recalled" in c for c in calls), calls


@pytest.mark.parametrize("dead_code_eliminated", [False, True])
def test_traced_graph_still_checks_its_input(dead_code_eliminated):
    block = make(SRBlock2d, (5, 4))
    traced = torch.fx.symbolic_trace(block)
    if dead_code_eliminated:  # what torchvision's feature extractor does to the graph
        traced.graph.eliminate_dead_code()
        traced.recompile()
    with pytest.raises(ValueError, match="built for 6 channels, got 5"):
        traced(torch.randn(2, 5, 5, 4))
    with pytest.raises(ValueError, match=r"built for spatial size \(5, 4\), got \(6, 4\)"):
        traced(torch.randn(2, 6, 6, 4))
    with pytest.raises(ValueError, match="built for 6 channels, got 5"):  # and eager mode still checks
        block(torch.randn(2, 5, 5, 4))


def test_trace_in_eval_under_no_grad_reads_the_live_parameters():
    block = make(SRBlock2d, (5, 4)).eval()
    x = torch.randn(2, 6, 5, 4)
    with torch.no_grad():
        block(x)  # eager eval keeps W2 W1; the traced graph must not bake it in
        traced = torch.fx.symbolic_trace(block)
        nn.init.normal_(block.fc1.weight, std=3.0)
        torch.testing.assert_close(traced(x), block(x), rtol=1e-5, atol=1e-5)
