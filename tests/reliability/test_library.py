"""Class 9: the SR block at the library's edges, as torch's own layers behave there: an empty batch, numpy integers,
non-integer sizes refused (never truncated), and no stale cached routing after an in-place edit in eval mode.
Property-based (hypothesis) over generated constructor values, shapes and dtypes."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from srblock.layers.sr import SRBlock1d, SRBlock2d, SRBlock3d

BLOCKS = {1: SRBlock1d, 2: SRBlock2d, 3: SRBlock3d}

# values a caller may pass as a size: ints, numpy ints, 0-d integer tensors, and what must be refused
SIZES = st.one_of(
    st.integers(-2, 5),
    st.integers(1, 5).map(np.int64),
    st.integers(1, 5).map(np.int32),
    st.integers(1, 5).map(torch.tensor),
    st.floats(allow_nan=True, allow_infinity=True),
    st.booleans(),
    st.sampled_from(["4", None]),
)


def _valid(value: object) -> bool:
    if isinstance(value, (bool, np.bool_, float, str)) or value is None:
        return False
    return int(value) > 0


@settings(max_examples=150, deadline=None)
@given(channels=SIZES, num_memories=SIZES, hidden=SIZES, size=SIZES, dims=st.sampled_from([1, 2, 3]))
def test_the_constructor_builds_exactly_what_it_was_given_or_refuses(channels, num_memories, hidden, size, dims):
    """Property: a block is built with exactly the integers given (numpy and 0-d tensors accepted, as torch's layers
    accept them), or construction raises ``ValueError`` naming the argument; never truncation, never a TypeError."""
    args = {"channels": channels, "num_memories": num_memories, "hidden": hidden, "feat_size": size}
    try:
        block = BLOCKS[dims](channels, size, num_memories=num_memories, hidden=hidden)
    except ValueError as err:
        bad = [name for name, value in args.items() if not _valid(value)]
        assert bad and any(name in str(err) for name in bad), (args, str(err))
        return
    assert all(_valid(v) for v in args.values()), args
    assert (block.channels, block.num_memories, block.hidden) == (int(channels), int(num_memories), int(hidden))
    assert block.feat_size == (int(size),) * dims and all(type(s) is int for s in block.feat_size)


@pytest.mark.parametrize("size", [(7.5, 8), (8.0, 8), 7.9, "8"])
def test_non_integer_sizes_are_refused_not_truncated(size) -> None:
    with pytest.raises(ValueError, match="feat_size"):
        SRBlock2d(4, size, num_memories=2, hidden=2)


DTYPES = [torch.float32, torch.float64, torch.bfloat16]


@settings(max_examples=60, deadline=None)
@given(
    dims=st.sampled_from([1, 2, 3]),
    batch=st.integers(0, 3),
    channels=st.integers(1, 4),
    side=st.integers(1, 4),
    dtype=st.sampled_from(DTYPES),
    train=st.booleans(),
    policy=st.sampled_from(["strict", "interpolate"]),
    channels_last=st.booleans(),
)
def test_forward_keeps_shape_and_dtype_and_is_the_identity_at_init(
    dims, batch, channels, side, dtype, train, policy, channels_last
):
    """Property: for any batch (0 included, as a convolution takes it), size, dtype, mode and layout, the output has
    the input's shape and dtype, is finite, and equals the input at the paper's zero init."""
    block = BLOCKS[dims](channels, side, num_memories=3, hidden=2, size_policy=policy, dtype=dtype).train(train)
    x = torch.randn(batch, channels, *(side,) * dims, dtype=dtype)
    if channels_last and dims == 2:
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.set_grad_enabled(train):
        y = block(x)
    assert y.shape == x.shape and y.dtype == dtype and bool(torch.isfinite(y).all())
    assert torch.equal(y, x)
    if batch:
        torch.nn.init.normal_(block.memory)
        assert not torch.equal(block(x), x)


def _edits():
    def no_grad(block):
        with torch.no_grad():
            block.fc1.weight.mul_(3)

    def inference(block):
        with torch.inference_mode():
            block.fc2.weight.mul_(3)

    def init(block):
        torch.nn.init.normal_(block.fc2.weight)

    def state_dict(block):
        block.load_state_dict({k: v * 2 for k, v in block.state_dict().items()})

    def assign(block):
        block.fc1.weight.data = block.fc1.weight.data * 3

    def logit_scale(block):
        block.logit_scale = 4.0

    return [no_grad, inference, init, state_dict, assign, logit_scale]


@pytest.mark.parametrize("edit", _edits(), ids=lambda f: f.__name__)
def test_an_edit_in_eval_mode_never_leaves_a_stale_routing(edit) -> None:
    torch.manual_seed(0)
    block = SRBlock2d(4, 4, num_memories=3, hidden=2, memory_init="normal").eval()
    x = torch.randn(2, 4, 4, 4)
    with torch.no_grad():
        before = block(x)  # the routing product is kept from here on
    edit(block)
    with torch.no_grad():
        after = block(x)
        fresh = block._forward_general(x)  # computed step by step, no kept product
    assert not torch.equal(after, before) and torch.allclose(after, fresh, atol=1e-6)
    assert math.isfinite(float(after.sum()))
