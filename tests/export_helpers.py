"""A tiny model whose outputs depend on the image, for export parity tests.

A fresh model's class bias makes every score ~1e-4 (NMS keeps nothing: parity would hold trivially), and
with the bias at 0 alone every score is 0.5 +- 0.02 whatever the image (ties make NMS order arbitrary). So
BN statistics are set from a few noise images (features normalised, so they follow the input) and the
last class/box convolutions amplified: scores and boxes spread with content.
"""
from __future__ import annotations

import torch
from torch import nn

from mot_kd.models import build_model, save_checkpoint

IMGSZ = (96, 64)


def tiny_model(seed: int = 0, id_dim: int = 16, gain: float = 3.0):
    torch.manual_seed(seed)
    model = build_model("yolov5n", id_dim=id_dim)
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.momentum = None  # cumulative average over the calibration batches
            m.weight.data.uniform_(0.5, 1.5)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.rand(4, 3, IMGSZ[1], IMGSZ[0]))
    with torch.no_grad():
        for cls, box in zip(model.head.detect.cv3, model.head.detect.cv2):
            nn.init.zeros_(cls[-1].bias)
            cls[-1].weight.mul_(gain)
            box[-1].weight.mul_(gain)
    return model.eval()


def tiny_checkpoint(path, seed: int = 0):
    return save_checkpoint(tiny_model(seed), path, meta={"imgsz": list(IMGSZ)})
