"""Distributed set-up from torchrun's environment (RANK, WORLD_SIZE, LOCAL_RANK) and nothing else.

``torchrun --nproc_per_node=N -m srblock.cli train -c recipe.yaml`` runs one process per rank: NCCL on CUDA,
gloo on CPU. As in torchvision's references, a process started by torchrun (RANK and WORLD_SIZE set) joins a
process group even when N = 1, so a one-GPU torchrun exercises the DDP path; a plain ``python``/``srblock`` call is
a world of one and never touches ``torch.distributed``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

__all__ = ["DistInfo", "init_distributed", "resolve_device"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` of ``world_size`` processes, ``local_rank`` on its node."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    group: bool = False  # a process group exists (torchrun), even for a world of one

    @property
    def is_main(self) -> bool:
        """Rank 0 logs and writes files."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        """Collectives and DDP are in use (the process runs under torchrun or in a group its caller made)."""
        return self.group

    def all_reduce(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over ranks in place (a no-op for a world of one) and return it."""
        if self.distributed:
            torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def barrier(self) -> None:
        if self.distributed:
            torch_dist.barrier()


def resolve_device(name: str | None, local_rank: int = 0) -> torch.device:
    """``"auto"`` → this rank's CUDA device when there is one, else CPU; anything else is taken as given."""
    if name in (None, "auto"):
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    return device


def init_distributed(device: torch.device) -> tuple[DistInfo, bool]:
    """Join the process group torchrun describes; returns ``(info, created)``.

    ``created`` says whether this call initialised the group (then the caller destroys it when done). An
    already-initialised group (e.g. a caller that set it up itself) is used as it is.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        rank, world_size = torch_dist.get_rank(), torch_dist.get_world_size()
        return DistInfo(rank, world_size, int(os.environ.get("LOCAL_RANK", rank)), group=True), False
    if "RANK" not in os.environ or "WORLD_SIZE" not in os.environ:
        return DistInfo(), False
    rank, world_size = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(device)
    torch_dist.init_process_group(backend=backend, init_method="env://", rank=rank, world_size=world_size)
    return DistInfo(rank, world_size, local_rank, group=True), True
