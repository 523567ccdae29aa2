"""CCN-style decoupling (CSTrack, Liang et al. 2022): one shared feature -> detection and identity branches.

Why: detection wants features shared across all pedestrians, re-identification wants features that tell
them apart; feeding both heads the same map makes the two objectives compete. CSTrack's cross-correlation
network learns, per image, channel relations of each task with itself (self-relation) and with the other
task (cross-relation), mixes them with a learned weight, and re-weights the shared channels with the result,
keeping a residual path. Relations are computed on an adaptively pooled map, so any input size works.
"""
from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv


class CrossCorrelationDecouple(nn.Module):
    """``forward(x) -> (det, ident)``, both shaped like ``x`` (B, C, H, W)."""

    def __init__(self, channels: int, pool: int = 8):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(pool)
        self.query_det = Conv(channels, channels, 1)
        self.query_id = Conv(channels, channels, 1)
        self.mix = nn.Parameter(torch.zeros(2))  # sigmoid -> self/cross mixing weight per branch, starts at 0.5

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = self.pool(x)
        t_det = self.query_det(pooled).flatten(2)  # (B, C, M)
        t_id = self.query_id(pooled).flatten(2)
        scale = t_det.shape[-1] ** -0.5
        cross = t_det @ t_id.transpose(1, 2) * scale  # (B, C, C): detection channel i vs identity channel j
        lam = self.mix.sigmoid()
        w_det = lam[0] * (t_det @ t_det.transpose(1, 2) * scale).softmax(-1) + (1 - lam[0]) * cross.softmax(-1)
        w_id = lam[1] * (t_id @ t_id.transpose(1, 2) * scale).softmax(-1) + (1 - lam[1]) * cross.transpose(1, 2).softmax(-1)
        flat = x.flatten(2)  # (B, C, H*W)
        det = x + (w_det.to(flat.dtype) @ flat).view_as(x)
        ident = x + (w_id.to(flat.dtype) @ flat).view_as(x)
        return det, ident
