"""torchrun / DistributedDataParallel context: rank, world size, wrapping, barriers.

Only the main process logs, validates and writes files; every process trains on its shard of each
epoch's (seeded) permutation.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn

from mot_kd.errors import InputError


@dataclass(frozen=True)
class DistContext:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    def wrap(self, module: nn.Module) -> nn.Module:
        if not self.enabled:
            return module
        device_ids = [module_device(module).index] if module_device(module).type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=True)

    def barrier(self) -> None:
        if self.enabled:
            torch_dist.barrier()


def module_device(module: nn.Module) -> torch.device:
    return next(module.parameters()).device


def init_distributed(device_arg: str) -> DistContext:
    """Read torchrun's environment; start the process group (nccl on CUDA, gloo on CPU)."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return DistContext()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    use_cuda = device_arg != "cpu" and torch.cuda.is_available()
    if use_cuda:
        torch.cuda.set_device(local_rank)
    if not torch_dist.is_initialized():
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistContext(rank, world_size, local_rank)


def select_device(device_arg: str, dist: DistContext) -> torch.device:
    """``cpu``, ``0``/``cuda:0``, or ``auto`` (CUDA when present)."""
    if device_arg == "auto":
        device_arg = "0" if torch.cuda.is_available() else "cpu"
    if device_arg == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise InputError(f"--device {device_arg}: CUDA is not available on this machine (use --device cpu)")
    index = dist.local_rank if dist.enabled else int(device_arg.split(":")[-1].split(",")[0])
    return torch.device("cuda", index)
