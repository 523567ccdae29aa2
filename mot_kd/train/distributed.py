"""torchrun / DistributedDataParallel context: rank, world size, wrapping, barriers.

Only the main process logs, validates and writes files; every process trains on its shard of each
epoch's (seeded) permutation.
"""
from __future__ import annotations

import os
from datetime import timedelta
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist
from torch import nn

from mot_kd.utils.device import parse_device


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

    def all_true(self, flag: bool, device: torch.device) -> bool:
        """True only if ``flag`` holds on every rank (e.g. 'this batch's loss is finite')."""
        if not self.enabled:
            return flag
        value = torch.tensor(float(flag), device=device)
        torch_dist.all_reduce(value, op=torch_dist.ReduceOp.MIN)
        return bool(value.item())

    def sum_over_ranks(self, sums: dict[str, float], count: int, device: torch.device) -> tuple[dict[str, float], int]:
        """Epoch loss sums and batch counts added over ranks, so logged means cover the whole epoch."""
        if not self.enabled:
            return sums, count
        keys = sorted(sums)
        values = torch.tensor([sums[k] for k in keys] + [float(count)], dtype=torch.float64, device=device)
        torch_dist.all_reduce(values)
        return dict(zip(keys, values[:-1].tolist())), int(values[-1].item())


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
        # rank 0 validates (tracks whole sequences) while the others wait at a barrier: allow it time
        torch_dist.init_process_group(backend="nccl" if use_cuda else "gloo", timeout=timedelta(hours=2))
    return DistContext(rank, world_size, local_rank)


def select_device(device_arg: str, dist: DistContext) -> torch.device:
    """``cpu``, ``0``/``cuda:0``, or ``auto``; under torchrun each process takes its LOCAL_RANK GPU."""
    return parse_device(device_arg, dist.local_rank if dist.enabled else None)
