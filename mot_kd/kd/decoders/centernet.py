"""CenterNet heads (FairMOT): one stride-4 level of heatmap logits, box size or ltrb, and centre offset.

A point is a grid cell (x, y); its centre is (x, y) + offset and its box ``wh`` is either the size (w, h)
(``size``) or the distances to the left/top/right/bottom sides (``ltrb``, FairMOT's default), all in grid
units; times the stride this is input pixels. Distances are clamped at 0 for the boxes (a fresh head may
predict negative sizes); the L1 term still pulls on them. That term reads wh log-scaled,
sign(x)·log(1 + |x|), so its difference is about the relative size error (~0.1 per side for a 10% error on a
4- or a 40-cell person), on the scale of pred-diff's KL and IoU terms; raw wh in cells is tens of units and
would drown them (FairMOT weights its own wh L1 by 0.1, right for one person size only). The offset, in
[0, 1) cells, stays raw.
"""
from __future__ import annotations

import torch
from ultralytics.utils.tal import dist2bbox, make_anchors

from mot_kd.errors import InputError
from mot_kd.kd.decoders.base import Decoded, check_levels, expect_4d, flatten_levels, level_stride


class CenterNetDecoder:
    family = "centernet"
    groups = ("cls", "box", "offset")

    def __init__(self, head: dict):
        self.nc, self.wh = head["nc"], head["wh"]

    def decode(self, taps: dict[str, list[torch.Tensor]], names: dict[str, list[str]],
               image_size: tuple[int, int]) -> Decoded:
        check_levels(taps, names, self.groups, self.family)
        for group in self.groups:
            if len(taps[group]) != 1:
                raise InputError(f"taps.{group}: head family centernet has one level, got {len(taps[group])}")
        (hm,), (wh,), (offset,) = taps["cls"], taps["box"], taps["offset"]
        (hm_name,), (wh_name,), (off_name,) = names["cls"], names["box"], names["offset"]
        for x, tap, what in ((hm, hm_name, "heatmap logits"), (wh, wh_name, "wh"), (offset, off_name, "offset")):
            expect_4d(x, tap, what)
            if x.shape[2:] != hm.shape[2:]:
                raise InputError(f"tap '{tap}' {tuple(x.shape[2:])}: not on the heatmap's grid {tuple(hm.shape[2:])}")
        if hm.shape[1] != self.nc:
            raise InputError(f"tap '{hm_name}': {hm.shape[1]} heatmap channels, expected head.nc = {self.nc}")
        wh_channels = 4 if self.wh == "ltrb" else 2
        if wh.shape[1] != wh_channels:
            raise InputError(f"tap '{wh_name}': {wh.shape[1]} wh channels, expected {wh_channels} for head.wh "
                             f"{self.wh} (ltrb: 4 side distances, FairMOT's default; size: 2)")
        if offset.shape[1] != 2:
            raise InputError(f"tap '{off_name}': {offset.shape[1]} offset channels, expected 2 (x, y)")
        stride = level_stride(image_size, hm.shape[2:], hm_name)
        cells, _ = make_anchors([hm], [stride], grid_cell_offset=0.0)
        logits, sizes, offsets = flatten_levels([hm]), flatten_levels([wh]), flatten_levels([offset])
        sides = sizes.clamp(min=0)
        ltrb = sides if self.wh == "ltrb" else torch.cat((sides, sides), -1) / 2
        boxes = dist2bbox(ltrb, cells + offsets, xywh=False) * stride
        raw = torch.cat((sizes.sign() * sizes.abs().log1p(), offsets), -1)
        return Decoded(logits=logits, scores=logits.sigmoid(), boxes=boxes, raw=raw)
