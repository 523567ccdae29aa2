"""Anchor-free detection head: ultralytics' ``Detect`` convolutions with named per-level taps.

Why wrap instead of calling ``Detect.forward``: distillation needs the raw box-distribution and class logits
per level under stable names (``head.box.p3`` ...), and the JDE loss needs them as maps. The convolution
stacks (``cv2`` box, ``cv3`` class), the DFL projection and the bias initialisation are ultralytics' own.
"""
from __future__ import annotations

import torch
from torch import nn
from ultralytics.nn.modules import Conv, Detect
from ultralytics.utils.tal import dist2bbox, make_anchors

from mot_kd.models.yolo_backbone import LEVELS, Tap


class _Detect(Detect):
    """Pins the (non-legacy, YOLO11-style) class branch: ultralytics' parse_model flips ``Detect.legacy``
    process-wide when it builds v5/v8 models, which would otherwise change our architecture at random."""

    legacy = False


class LevelTaps(nn.Module):
    """One :class:`Tap` per pyramid level, named ``p3``, ``p4``, ``p5``."""

    def __init__(self):
        super().__init__()
        for level in LEVELS:
            setattr(self, level, Tap())

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [getattr(self, level)(x) for level, x in zip(LEVELS, feats)]


class DetectionHead(nn.Module):
    """``forward(feats) -> (box_logits, cls_logits)``: per level (B, 4*reg_max, H, W) and (B, nc, H, W)."""

    def __init__(self, nc: int, in_channels: list[int], strides: tuple[int, ...], reg_max: int = 16,
                 legacy_cls_width: int | None = None):
        super().__init__()
        self.detect = _Detect(nc=nc, reg_max=reg_max, ch=tuple(in_channels))
        if legacy_cls_width:  # ultralytics' v5u/v8 class branch, whose width follows their nc (80 for COCO), so
            c3 = legacy_cls_width  # their checkpoints' class convolutions load (mot_kd.models.pretrained)
            self.detect.cv3 = nn.ModuleList(nn.Sequential(Conv(c, c3, 3), Conv(c3, c3, 3), nn.Conv2d(c3, nc, 1))
                                            for c in in_channels)
        self.detect.stride = torch.tensor(strides, dtype=torch.float32)
        self.detect.bias_init()
        self.box = LevelTaps()
        self.cls = LevelTaps()

    def forward(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        box = self.box([cv(x) for cv, x in zip(self.detect.cv2, feats)])
        cls = self.cls([cv(x) for cv, x in zip(self.detect.cv3, feats)])
        return box, cls

    def decode(self, box: list[torch.Tensor], cls: list[torch.Tensor]) -> torch.Tensor:
        """(B, 4 + nc, A): xywh boxes in input pixels and class probabilities, ultralytics' inference layout."""
        b = box[0].shape[0]
        anchors, strides = (t.transpose(0, 1) for t in make_anchors(box, self.detect.stride.tolist(), 0.5))
        dist = self.detect.dfl(torch.cat([x.view(b, x.shape[1], -1) for x in box], 2))
        xywh = dist2bbox(dist, anchors.unsqueeze(0), xywh=True, dim=1) * strides
        scores = torch.cat([x.view(b, x.shape[1], -1) for x in cls], 2).sigmoid()
        return torch.cat((xywh, scores), 1)
