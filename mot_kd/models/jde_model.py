"""The joint detector-embedder: YOLOv5 trunk -> per-level CCN decoupling -> detection head + SAAN embedding.

Everything needed to rebuild the network is in ``model.arch`` (builtins only), which is what portable
checkpoints store instead of pickled classes. Tap names (see docs/models.md) are the same at every scale.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.models.decouple import CrossCorrelationDecouple
from mot_kd.models.detect_head import DetectionHead, LevelTaps
from mot_kd.models.embedding_head import ScaleAwareEmbedding
from mot_kd.models.widths import apply_widths
from mot_kd.models.yolo_backbone import LEVELS, build_trunk, resolve_model_cfg

STRIDES = (8, 16, 32)


class JDEModel(nn.Module):
    """``model(images) -> {"feats": [(B, 4*reg_max+nc, H/s, W/s)] * 3, "embedding": (B, id_dim, H/8, W/8)}``.

    ``images`` is (B, 3, H, W) RGB in [0, 1] with H, W multiples of 32. The output is the same in train and
    eval mode; :meth:`predict` turns it into boxes and embeddings.
    """

    def __init__(self, arch: dict):
        super().__init__()
        self.arch = _check_arch(arch)
        self.nc, self.id_dim = arch["nc"], arch["id_dim"]
        self.reg_max = int(arch["cfg"].get("reg_max", 16))
        self.strides = STRIDES
        self.names = list(arch["names"])
        self.num_ids, self.meta = 0, {}  # training facts, filled by load_checkpoint
        self.backbone, self.neck, channels = build_trunk(arch["cfg"], arch["scale"])
        self.decouple = nn.ModuleDict({level: CrossCorrelationDecouple(c) for level, c in zip(LEVELS, channels)})
        self.id_branch = LevelTaps()
        self.head = DetectionHead(self.nc, channels, self.strides, self.reg_max, arch["cfg"].get("legacy_cls_width"))
        self.embedding = ScaleAwareEmbedding(channels, self.id_dim)
        bn = arch["cfg"].get("batchnorm")  # e.g. ultralytics' {eps, momentum}: their checkpoints' weights need them
        for m in self.modules() if bn else ():
            if isinstance(m, nn.BatchNorm2d):
                m.eps, m.momentum = float(bn["eps"]), float(bn["momentum"])
        if arch.get("widths") is not None:  # a pruned model: per-layer channel counts (mot_kd.prune)
            apply_widths(self, arch["widths"])

    def forward(self, images: torch.Tensor) -> dict:
        if images.ndim != 4 or images.shape[1] != 3 or images.shape[2] % 32 or images.shape[3] % 32:
            raise InputError(f"images: expected (B, 3, H, W) with H, W multiples of 32, got {tuple(images.shape)}")
        feats = self.neck(self.backbone(images))
        det, ident = zip(*(self.decouple[level](x) for level, x in zip(LEVELS, feats)))
        box, cls = self.head(list(det))
        return {"feats": [torch.cat((b, c), 1) for b, c in zip(box, cls)],
                "embedding": self.embedding(self.id_branch(list(ident)))}

    def split_feats(self, feats: list[torch.Tensor]) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Per-level (box distribution logits, class logits) from the concatenated training outputs."""
        parts = [f.split((4 * self.reg_max, self.nc), 1) for f in feats]
        return [p[0] for p in parts], [p[1] for p in parts]

    def predict(self, images: list[np.ndarray], imgsz: tuple[int, int] = (1088, 608), conf: float = 0.4,
                iou: float = 0.5, max_det: int = 300) -> list[dict]:
        """Detections per BGR image: ``boxes`` (N, 4) xyxy original pixels, ``scores`` (N,), unit ``embeddings``."""
        from mot_kd.models.predict import predict

        return predict(self, images, imgsz=imgsz, conf=conf, iou=iou, max_det=max_det)


def build_model(name: str | Path | dict = "yolov5s", nc: int = 1, id_dim: int = 512, scale: str | None = None,
                names: list[str] | None = None) -> JDEModel:
    """Build a fresh model from a shipped name (``yolov5n`` ... ``yolov5x``, ``yolov5s-ghost``), a YAML or a dict."""
    cfg, scale = resolve_model_cfg(name, scale)
    if names is None:
        names = cfg.get("names") if len(cfg.get("names") or []) == nc else [f"class{i}" for i in range(nc)]
    label = "custom" if isinstance(name, dict) else Path(str(name)).stem
    return JDEModel({"name": label, "cfg": cfg, "scale": scale, "nc": nc, "id_dim": id_dim, "names": list(names)})


def _check_arch(arch: dict) -> dict:
    if not isinstance(arch, dict) or not {"cfg", "scale", "nc", "id_dim", "names"} <= set(arch):
        raise InputError("model arch: expected a dict with cfg, scale, nc, id_dim, names")
    if not isinstance(arch["nc"], int) or arch["nc"] < 1:
        raise InputError(f"model arch: nc must be a positive integer, got {arch['nc']!r}")
    if not isinstance(arch["id_dim"], int) or arch["id_dim"] < 2:
        raise InputError(f"model arch: id_dim must be an integer >= 2 (512 CSTrack, 128 fast), got {arch['id_dim']!r}")
    if len(arch["names"]) != arch["nc"]:
        raise InputError(f"model arch: {len(arch['names'])} class names for nc={arch['nc']}")
    return arch
