"""What every exported-model backend shares: the metadata, the input-size check and the one predict path.

A backend only implements ``run(batch) -> (dets, embedding map)`` as numpy arrays; letterboxing, NMS, the
mapping back to original pixels and the per-box embedding lookup are :mod:`mot_kd.models.predict`'s, the
same code the PyTorch model uses, so a backend cannot drift from it.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from mot_kd.errors import InputError
from mot_kd.models.predict import check_imgsz, check_thresholds, postprocess, preprocess


class ExportedModel:
    """``predict(images, imgsz, conf, iou)`` like :meth:`JDEModel.predict`, for a file exported by mot-kd."""

    kind = "exported"

    def __init__(self, path: str | Path, meta: dict):
        self.path, self.meta = Path(path), meta
        self.names, self.nc, self.id_dim = list(meta["names"]), int(meta["nc"]), int(meta["id_dim"])
        self.strides = tuple(int(s) for s in meta["strides"])

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(B, 3, H, W) float32 in [0, 1] -> dets (B, 4 + nc, A), embedding map (B, id_dim, H/8, W/8)."""
        raise NotImplementedError

    def predict(self, images: list[np.ndarray], imgsz=None, conf: float = 0.4, iou: float = 0.5,
                max_det: int = 300) -> list[dict]:
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        check_thresholds(conf, iou)
        size = check_imgsz(imgsz if imgsz is not None else self.meta["imgsz"])
        if list(size) != list(self.meta["imgsz"]):
            w, h = self.meta["imgsz"]
            raise InputError(f"{self.path}: exported for a {w}x{h} input, got imgsz {size[0]}x{size[1]} "
                             f"(use --imgsz {w} {h}, or export again with --imgsz {size[0]} {size[1]})")
        if len(images) == 0:
            return []
        x, infos = preprocess(images, size)
        x = x.numpy()
        chunks = [x] if self.meta["dynamic_batch"] else [x[i:i + 1] for i in range(len(x))]
        outs = [self.run(np.ascontiguousarray(c)) for c in chunks]
        dets = torch.from_numpy(np.concatenate([o[0] for o in outs]))
        emb = torch.from_numpy(np.concatenate([o[1] for o in outs]))
        return postprocess(dets, emb, infos, self.nc, self.strides[0], conf, iou, max_det)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path}, {self.meta['precision']}, imgsz={self.meta['imgsz']})"
