"""Blocks the architecture search adds to the YOLOv5 rows, registered so ultralytics' ``parse_model`` finds them.

Why register here (the models layer) and not in ``mot_kd.nas``: a searched model's checkpoint stores its YAML
rows in ``arch``, and every CLI rebuilds it through ``parse_model``, which resolves row module names in
``ultralytics.nn.tasks``' namespace; registering on import of ``mot_kd.models`` makes any checkpoint load
without importing the search code. ``C3k`` (ultralytics' C3 with a kernel argument) is not imported there.
"""
from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn import tasks
from ultralytics.nn.modules import Conv, DWConv
from ultralytics.nn.modules.block import C3k


class SqueezeExcite(nn.Module):
    """Squeeze-and-excitation (Hu et al. 2018): pooled channels -> bottleneck MLP -> sigmoid gate on x."""

    def __init__(self, channels: int, reduction: int = 4):
        super().__init__()
        hidden = max(channels // reduction, 8)
        self.reduce = nn.Conv2d(channels, hidden, 1)
        self.act = nn.SiLU()
        self.expand = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.expand(self.act(self.reduce(x.mean((2, 3), keepdim=True)))).sigmoid()


class InvertedResidualSE(nn.Module):
    """MobileNetV3/LightTrack block, channel-preserving: 1x1 expand -> k x k depthwise -> SE -> 1x1 project + x."""

    def __init__(self, c: int, k: int = 3, expand: int = 4):
        super().__init__()
        hidden = c * expand
        self.pw = Conv(c, hidden, 1)
        self.dw = DWConv(hidden, hidden, k)
        self.se = SqueezeExcite(hidden)
        self.project = Conv(hidden, c, 1, act=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.project(self.se(self.dw(self.pw(x))))


class InvertedResidualStage(nn.Module):
    """``n`` :class:`InvertedResidualSE` blocks in ``self.m``, so their names are ``m.0 ...`` at any depth.

    Row form ``[-1, 1, InvertedResidualStage, [c, n, k, expand]]``: ultralytics passes the args as given (no width
    scaling), so ``c`` must equal the input channels.
    """

    def __init__(self, c: int, n: int = 1, k: int = 3, expand: int = 4):
        super().__init__()
        self.m = nn.Sequential(*(InvertedResidualSE(c, k, expand) for _ in range(n)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.m(x)


for _block in (C3k, InvertedResidualStage):
    setattr(tasks, _block.__name__, _block)
