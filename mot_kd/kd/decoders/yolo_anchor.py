"""Anchor-based YOLO heads (YOLOv3/v5, CSTrack, JDE): per level na anchors x (4 box + conf + classes).

Box parameterisations, per anchor of pixel size (a_w, a_h) at grid cell (x, y) of stride s:
``yolov5`` (YOLOv5, CSTrack): centre ((2 sigma(t) - 0.5) + cell) * s, size (2 sigma(t))^2 * a;
``yolov3`` (darknet YOLOv3): centre (sigma(t) + cell) * s, size exp(t) * a;
``delta`` (JDE's Faster R-CNN deltas): centre cell * s + t * a, size exp(t) * a.
Confidence: ``sigmoid`` = objectness logit then nc class logits (with one class the class channel is never
trained by YOLOv5/CSTrack, so only objectness is distilled); ``softmax2`` = JDE's 2 logits (background,
foreground), whose softmax is one Bernoulli with logit fg - bg.
"""
from __future__ import annotations

import torch
from ultralytics.utils.ops import xywh2xyxy

from mot_kd.errors import InputError
from mot_kd.kd.decoders.base import Decoded, check_levels, level_stride

MAX_EXP = 10.0  # exp(t) clamped at e^10 anchors so a diverging student still gives a finite loss


class YoloAnchorDecoder:
    family = "yolo_anchor"
    groups = ("pred",)

    def __init__(self, head: dict):
        self.nc, self.box, self.conf = head["nc"], head["box"], head["conf"]
        self.anchors = [torch.tensor(level, dtype=torch.float32).view(-1, 2) for level in head["anchors"]]
        self.conf_channels = 1 + self.nc if self.conf == "sigmoid" else 2
        self.outputs = 4 + self.conf_channels  # per anchor

    def _per_anchor(self, x: torch.Tensor, tap: str, na: int) -> torch.Tensor:
        """(B, na*no, H, W) conv output or (B, na, H, W, no) YOLO view -> (B, na, H, W, no)."""
        no = self.outputs
        expected = (f"na * (4 + {self.conf_channels}) = {na} * {no} = {na * no} "
                    f"(head.anchors: {na} per level, nc {self.nc}, conf {self.conf})")
        if x.dim() == 4:
            if x.shape[1] != na * no:
                raise InputError(f"tap '{tap}': {x.shape[1]} channels, expected {expected}")
            b, _, h, w = x.shape
            return x.view(b, na, no, h, w).permute(0, 1, 3, 4, 2)
        if x.dim() == 5:
            if x.shape[1] != na or x.shape[4] != no:
                raise InputError(f"tap '{tap}': shape {tuple(x.shape)}, expected (B, {na}, H, W, {no}): {expected}")
            return x
        raise InputError(f"tap '{tap}': expected (B, na*(5+nc), H, W) or (B, na, H, W, 5+nc), got {tuple(x.shape)}")

    def _boxes(self, t: torch.Tensor, stride: float, anchors: torch.Tensor) -> torch.Tensor:
        """Raw box channels (B, na, H, W, 4) -> xywh in input pixels."""
        h, w = t.shape[2:4]
        ys, xs = torch.meshgrid(torch.arange(h, dtype=t.dtype, device=t.device),
                                torch.arange(w, dtype=t.dtype, device=t.device), indexing="ij")
        cell = torch.stack((xs, ys), -1)  # (H, W, 2)
        anchor = anchors.to(t).view(1, -1, 1, 1, 2)
        if self.box == "yolov5":
            xy = (t[..., :2].sigmoid() * 2 - 0.5 + cell) * stride
            wh = (t[..., 2:4].sigmoid() * 2) ** 2 * anchor
        elif self.box == "yolov3":
            xy = (t[..., :2].sigmoid() + cell) * stride
            wh = t[..., 2:4].clamp(max=MAX_EXP).exp() * anchor
        else:  # delta
            xy = cell * stride + t[..., :2] * anchor
            wh = t[..., 2:4].clamp(max=MAX_EXP).exp() * anchor
        return torch.cat((xy, wh), -1)

    def decode(self, taps: dict[str, list[torch.Tensor]], names: dict[str, list[str]],
               image_size: tuple[int, int]) -> Decoded:
        check_levels(taps, names, self.groups, self.family)
        levels = taps["pred"]
        if len(levels) != len(self.anchors):
            raise InputError(f"taps.pred lists {len(levels)} levels but head.anchors {len(self.anchors)}")
        logits, scores, boxes = [], [], []
        for x, tap, anchors in zip(levels, names["pred"], self.anchors):
            p = self._per_anchor(x, tap, len(anchors))
            stride = level_stride(image_size, p.shape[2:4], tap)
            b = p.shape[0]
            boxes.append(xywh2xyxy(self._boxes(p[..., :4], stride, anchors)).reshape(b, -1, 4))
            if self.conf == "softmax2":
                logit = p[..., 5:6] - p[..., 4:5]
                score = logit.sigmoid()
            elif self.nc == 1:
                logit = p[..., 4:5]
                score = logit.sigmoid()
            else:
                logit = p[..., 4:]
                score = p[..., 4:5].sigmoid() * p[..., 5:].sigmoid()
            logits.append(logit.reshape(b, -1, logit.shape[-1]))
            scores.append(score.reshape(b, -1, score.shape[-1]))
        return Decoded(logits=torch.cat(logits, 1), scores=torch.cat(scores, 1), boxes=torch.cat(boxes, 1))
