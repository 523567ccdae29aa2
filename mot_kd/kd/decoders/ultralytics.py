"""Anchor-free DFL head (ultralytics YOLOv8/11, mot_kd's own models): box bins + class logits per level."""
from __future__ import annotations

import torch
from ultralytics.utils.tal import dist2bbox, make_anchors

from mot_kd.errors import InputError
from mot_kd.kd.decoders.base import Decoded, check_levels, expect_4d, flatten_levels, level_stride


def _box_channel_error(tap: str, channels: int, reg_max: int) -> InputError:
    """Name the families a non-DFL channel count points to, instead of advising a reg_max that cannot fit."""
    hints = []
    for nc in (1, 2, 80):
        for na in (3, 4):
            if channels == na * (5 + nc):
                hints.append(f"{channels} = {na} anchors * (5 + {nc}) is a YOLO anchor head (head.family yolo_anchor)")
    if channels == 24:
        hints.append("24 = 4 anchors * (4 box + 2 conf) is JDE's head (yolo_anchor, box delta, conf softmax2)")
    if channels in (2, 4):
        hints.append(f"{channels} channels is a CenterNet/FairMOT wh head (head.family centernet)")
    hint = "; ".join(dict.fromkeys(hints)) or "check the tap and head.reg_max"
    return InputError(f"tap '{tap}': {channels} box channels, expected 4 * reg_max = {4 * reg_max} for the ultralytics "
                      f"DFL head; {hint}")


class UltralyticsDecoder:
    """Boxes are the expected value of the softmax over ``reg_max`` bins per side (ultralytics' DFL decode)."""

    family = "ultralytics"
    groups = ("box", "cls")

    def __init__(self, head: dict):
        self.reg_max, self.nc = head["reg_max"], head["nc"]

    def decode(self, taps: dict[str, list[torch.Tensor]], names: dict[str, list[str]],
               image_size: tuple[int, int]) -> Decoded:
        check_levels(taps, names, self.groups, self.family)
        box, cls = taps["box"], taps["cls"]
        if len(box) != len(cls):
            raise InputError(f"taps.box ({len(box)} levels) and taps.cls ({len(cls)}) must list the same levels")
        strides = []
        for b, c, b_name, c_name in zip(box, cls, names["box"], names["cls"]):
            expect_4d(b, b_name, "DFL box logits")
            expect_4d(c, c_name, "class logits")
            if b.shape[1] != 4 * self.reg_max:
                raise _box_channel_error(b_name, b.shape[1], self.reg_max)
            if c.shape[1] != self.nc:
                raise InputError(f"tap '{c_name}': {c.shape[1]} class channels, expected head.nc = {self.nc}")
            if b.shape[2:] != c.shape[2:]:
                raise InputError(f"taps '{b_name}' {tuple(b.shape[2:])} and '{c_name}' {tuple(c.shape[2:])}: box and "
                                 "class logits of one level must share the grid")
            strides.append(level_stride(image_size, c.shape[2:], c_name))
        anchors, stride_tensor = make_anchors(cls, strides)
        box_logits, cls_logits = flatten_levels(box), flatten_levels(cls)
        b, a, _ = box_logits.shape
        bins = box_logits.view(b, a, 4, self.reg_max)
        support = torch.arange(self.reg_max, device=bins.device, dtype=bins.dtype)
        dist = (bins.softmax(-1) * support).sum(-1)
        boxes = dist2bbox(dist, anchors, xywh=False) * stride_tensor
        return Decoded(logits=cls_logits, scores=cls_logits.sigmoid(), boxes=boxes, bins=bins)
