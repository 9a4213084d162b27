"""SR overhead = Eq. (1) for every placement M on every registered classification network."""

from __future__ import annotations

import pytest

from srblock import sr_param_count
from srblock.models import count_sr_params, create_model, find_sr_blocks, get_model_entry, insert_sr

BASIC_CIFAR = [(64, 32), (128, 16), (256, 8), (512, 4)]
BASIC_IMAGENET = [(64, 56), (128, 28), (256, 14), (512, 7)]


def _bottleneck(stages: list[tuple[int, int]]) -> list[tuple[int, int]]:
    return [(4 * c, s) for c, s in stages]


STAGE_OUTPUTS = {  # (C, H=W) of each stage's output at the native input size, from PAPER.md §2
    "cifar_resnet18": BASIC_CIFAR,
    "cifar_resnet34": BASIC_CIFAR,
    "cifar_resnet50": _bottleneck(BASIC_CIFAR),
    "cifar_vgg16_bn": [(64, 16), (128, 8), (256, 4), (512, 2), (512, 1)],
    "cifar_vgg19_bn": [(64, 16), (128, 8), (256, 4), (512, 2), (512, 1)],
    "resnet18": BASIC_IMAGENET,
    "resnet34": BASIC_IMAGENET,
    "resnet50": _bottleneck(BASIC_IMAGENET),
    "resnet101": _bottleneck(BASIC_IMAGENET),
}


@pytest.mark.parametrize("name", sorted(STAGE_OUTPUTS))
def test_overhead_is_eq1_at_every_stage(name: str) -> None:
    entry = get_model_entry(name)
    model = create_model(name, num_classes=10)
    expected_total = 0
    for m, (channels, size) in enumerate(STAGE_OUTPUTS[name], 1):
        # the same call create_model(..., sr_stage=m) makes, for every stage of one model
        block = insert_sr(model, entry.stages[m - 1], input_size=entry.input_size, num_memories=m + 1, hidden=3)
        expected = sr_param_count(channels, size, hidden=3, num_memories=m + 1)
        assert sum(p.numel() for p in block.parameters()) == expected, f"stage {m}"
        expected_total += expected
    assert len(find_sr_blocks(model)) == len(entry.stages)
    assert count_sr_params(model) == expected_total
