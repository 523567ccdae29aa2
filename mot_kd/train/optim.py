"""Optimizer parameter groups and the learning-rate schedule (YOLOv5/ultralytics recipe).

Three groups as in YOLOv5: conv/linear weights with weight decay, normalisation weights without, biases
without (biases get a warm-up from ``warmup_bias_lr``). The schedule is a linear warm-up over
``warmup_epochs`` then a cosine decay from lr0 to lr0*lrf, evaluated per optimizer step so that resuming
mid-run reproduces the exact learning rate.
"""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import torch
from torch import nn

from mot_kd.errors import InputError


def param_groups(modules: Iterable[nn.Module], weight_decay: float) -> list[dict]:
    """Split trainable parameters of ``modules`` into decayed weights, norm weights and biases."""
    decay, no_decay, biases, seen = [], [], [], set()
    for module in modules:
        for sub in module.modules():
            for name, param in sub.named_parameters(recurse=False):
                if not param.requires_grad or id(param) in seen:
                    continue
                seen.add(id(param))
                if name == "bias":
                    biases.append(param)
                elif isinstance(sub, (nn.modules.batchnorm._NormBase, nn.GroupNorm, nn.LayerNorm)) or param.ndim <= 1:
                    no_decay.append(param)
                else:
                    decay.append(param)
    return [
        {"params": decay, "weight_decay": weight_decay, "group": "weight"},
        {"params": no_decay, "weight_decay": 0.0, "group": "norm"},
        {"params": biases, "weight_decay": 0.0, "group": "bias"},
    ]


def build_optimizer(modules: Iterable[nn.Module], name: str, lr0: float, momentum: float,
                    weight_decay: float) -> torch.optim.Optimizer:
    groups = [g for g in param_groups(modules, weight_decay) if g["params"]]
    if name == "SGD":
        return torch.optim.SGD(groups, lr=lr0, momentum=momentum, nesterov=True)
    if name == "AdamW":
        return torch.optim.AdamW(groups, lr=lr0, betas=(momentum, 0.999))
    raise InputError(f"optimizer: unknown optimizer {name!r}; choose SGD or AdamW")


class WarmupCosine:
    """lr/momentum for optimizer step ``step`` of ``total_steps`` (``warmup_steps`` of linear warm-up)."""

    def __init__(self, lr0: float, lrf: float, momentum: float, total_steps: int, warmup_steps: int,
                 warmup_bias_lr: float, warmup_momentum: float):
        self.lr0, self.lrf, self.momentum = lr0, lrf, momentum
        self.total_steps, self.warmup_steps = max(total_steps, 1), warmup_steps
        self.warmup_bias_lr, self.warmup_momentum = warmup_bias_lr, warmup_momentum

    def lr_factor(self, step: int) -> float:
        progress = min(step / self.total_steps, 1.0)
        return ((1 - math.cos(progress * math.pi)) / 2) * (self.lrf - 1) + 1

    def apply(self, optimizer: torch.optim.Optimizer, step: int) -> float:
        """Set every group's lr (and momentum during warm-up) for this step; returns the base lr."""
        base = self.lr0 * self.lr_factor(step)
        for group in optimizer.param_groups:
            lr = base
            if step < self.warmup_steps:
                start = self.warmup_bias_lr if group.get("group") == "bias" else 0.0
                lr = float(np.interp(step, [0, self.warmup_steps], [start, base]))
                if "momentum" in group:
                    group["momentum"] = float(np.interp(step, [0, self.warmup_steps],
                                                        [self.warmup_momentum, self.momentum]))
                elif "betas" in group:
                    beta1 = float(np.interp(step, [0, self.warmup_steps], [self.warmup_momentum, self.momentum]))
                    group["betas"] = (beta1, group["betas"][1])
            group["lr"] = lr
        return base
