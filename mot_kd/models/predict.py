"""Inference: letterbox BGR frames, run the model, NMS, map boxes back, read one unit embedding per box.

The embedding of a box is the stride-8 cell at its centre (the cell the identity loss trains around the
box centre), L2-normalised, which is what the trackers' cosine distance expects.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from ultralytics.utils.nms import non_max_suppression

from mot_kd.data.letterbox import boxes_from_letterbox, letterbox
from mot_kd.errors import InputError
from mot_kd.models.embedding_head import sample_embeddings


def check_imgsz(imgsz) -> tuple[int, int]:
    """(W, H) with both positive multiples of 32, else InputError."""
    try:
        w, h = (int(v) for v in imgsz)
    except (TypeError, ValueError):
        raise InputError(f"imgsz: expected (width, height), got {imgsz!r}") from None
    if w <= 0 or h <= 0 or w % 32 or h % 32:
        raise InputError(f"imgsz: width and height must be positive multiples of 32, got {w}x{h}")
    return w, h


def preprocess(images: list[np.ndarray], imgsz: tuple[int, int]) -> tuple[torch.Tensor, list]:
    """Letterboxed RGB batch (B, 3, H, W) float in [0, 1] and each image's LetterboxInfo."""
    batch, infos = [], []
    for i, image in enumerate(images):
        if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
            desc = f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
            raise InputError(f"images[{i}]: expected an (H, W, 3) uint8 BGR array, got {desc}")
        boxed, info = letterbox(image, imgsz)
        batch.append(boxed[:, :, ::-1])
        infos.append(info)
    x = torch.from_numpy(np.ascontiguousarray(np.stack(batch))).permute(0, 3, 1, 2)
    return x.float().div_(255.0), infos


def check_thresholds(conf: float, iou: float) -> None:
    if not 0.0 <= conf <= 1.0 or not 0.0 <= iou <= 1.0:
        raise InputError(f"conf/iou: thresholds must be in [0, 1], got conf={conf}, iou={iou}")


@torch.no_grad()
def predict(model, images: list[np.ndarray], imgsz=(1088, 608), conf: float = 0.4, iou: float = 0.5,
            max_det: int = 300) -> list[dict]:
    """Per image ``{"boxes": (N, 4) xyxy original pixels, "scores": (N,), "classes": (N,), "embeddings": (N, D)}``."""
    if isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    check_thresholds(conf, iou)
    if len(images) == 0:
        return []
    x, infos = preprocess(images, check_imgsz(imgsz))
    param = next(model.parameters())
    was_training = model.training
    model.eval()
    try:
        out = model(x.to(param.device, param.dtype))
    finally:
        model.train(was_training)
    box, cls = model.split_feats(out["feats"])
    return postprocess(model.head.decode(box, cls), out["embedding"], infos, model.nc, model.strides[0],
                       conf, iou, max_det)


def postprocess(dets: torch.Tensor, emb_map: torch.Tensor, infos: list, nc: int, stride: int, conf: float,
                iou: float, max_det: int) -> list[dict]:
    """NMS, boxes back to original pixels, one unit embedding per box: shared by every inference backend.

    ``dets`` (B, 4 + nc, A) xywh input pixels + class probabilities, ``emb_map`` (B, D, H/stride, W/stride).
    """
    dets = non_max_suppression(dets.float(), conf, iou, max_det=max_det, nc=nc)
    results = []
    for b, (det, info) in enumerate(zip(dets, infos)):
        centres = (det[:, :2] + det[:, 2:4]) / 2
        emb = sample_embeddings(emb_map, torch.full((len(det),), b, device=det.device), centres, stride)
        results.append({
            "boxes": boxes_from_letterbox(det[:, :4].cpu().numpy(), info).astype(np.float32),
            "scores": det[:, 4].cpu().numpy().astype(np.float32),
            "classes": det[:, 5].cpu().numpy().astype(np.int64),
            "embeddings": F.normalize(emb.float(), dim=1).cpu().numpy(),
        })
    return results
