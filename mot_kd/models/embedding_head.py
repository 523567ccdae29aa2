"""SAAN-style embedding head (CSTrack's scale-aware attention network) and embedding sampling.

Why fuse scales: pedestrians span P3 to P5 sizes, so an identity feature read from one level alone is weak
for the others. Each level's identity branch is projected, resized to stride 8, weighted by a spatial
attention map (where the person is), then the concatenation is re-weighted by channel attention (which
scale's channels matter) and projected to ``id_dim``. The output is the raw embedding map (no L2 norm):
the loss and ``predict`` normalise the vectors they read from it.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.nn.modules import Conv


class SpatialAttention(nn.Module):
    """CBAM spatial attention: a sigmoid map from channel-mean and channel-max, multiplied onto x."""

    def __init__(self, kernel: int = 7):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat((x.mean(1, keepdim=True), x.amax(1, keepdim=True)), 1)
        return x * self.conv(stats).sigmoid()


class ChannelAttention(nn.Module):
    """CBAM channel attention: a shared MLP over average- and max-pooled channels, sigmoid, multiplied onto x."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.SiLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * weight.sigmoid()


class ScaleAwareEmbedding(nn.Module):
    """``forward([id_p3, id_p4, id_p5]) -> (B, id_dim, H/8, W/8)`` raw embedding map."""

    def __init__(self, in_channels: list[int], id_dim: int):
        super().__init__()
        mid = max(in_channels[0], 64)
        self.reduce = nn.ModuleList(Conv(c, mid, 1) for c in in_channels)
        self.spatial = nn.ModuleList(SpatialAttention() for _ in in_channels)
        self.channel = ChannelAttention(mid * len(in_channels))
        self.fuse = nn.Sequential(Conv(mid * len(in_channels), mid, 1), Conv(mid, mid, 3), nn.Conv2d(mid, id_dim, 1))

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        size = feats[0].shape[-2:]
        levels = []
        for x, reduce, spatial in zip(feats, self.reduce, self.spatial):
            y = spatial(reduce(x))
            if y.shape[-2:] != size:
                y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
            levels.append(y)
        return self.fuse(self.channel(torch.cat(levels, 1)))


def sample_embeddings(emb_map: torch.Tensor, batch_idx: torch.Tensor, xy: torch.Tensor, stride: int) -> torch.Tensor:
    """Embedding vectors (N, D) at input-pixel points ``xy`` (N, 2) of images ``batch_idx`` (N,).

    Nearest cell: the stride-``stride`` cell that contains the point (clamped to the map), the same cell an
    anchor point ``(i + 0.5) * stride`` belongs to.
    """
    h, w = emb_map.shape[-2:]
    gx = torch.div(xy[:, 0], stride, rounding_mode="floor").long().clamp_(0, w - 1)
    gy = torch.div(xy[:, 1], stride, rounding_mode="floor").long().clamp_(0, h - 1)
    return emb_map[batch_idx.long(), :, gy, gx]
