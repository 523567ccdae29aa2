"""Letterbox resize to a fixed (width, height) and its exact inverse for boxes.

Kept in one place so training, inference and box decoding agree on the padding arithmetic.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

PAD_VALUE = 114  # ultralytics/YOLOv5 grey


@dataclass(frozen=True)
class LetterboxInfo:
    """How an original image was mapped into the network input: x_in = x_orig * scale + pad_x."""

    scale: float
    pad_x: float
    pad_y: float
    orig_width: int
    orig_height: int


def letterbox(image: np.ndarray, size: tuple[int, int], pad_value: int = PAD_VALUE) -> tuple[np.ndarray, LetterboxInfo]:
    """Resize keeping aspect ratio and pad to ``size`` = (width, height), image centred."""
    width, height = size
    h0, w0 = image.shape[:2]
    scale = min(width / w0, height / h0)
    new_w, new_h = int(round(w0 * scale)), int(round(h0 * scale))
    resized = image if (new_w, new_h) == (w0, h0) else cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
    pad_x, pad_y = (width - new_w) / 2, (height - new_h) / 2
    left, top = int(round(pad_x - 0.1)), int(round(pad_y - 0.1))
    out = cv2.copyMakeBorder(resized, top, height - new_h - top, left, width - new_w - left,
                             cv2.BORDER_CONSTANT, value=(pad_value,) * 3)
    return out, LetterboxInfo(scale, float(left), float(top), w0, h0)


def boxes_to_letterbox(xyxy: np.ndarray, info: LetterboxInfo) -> np.ndarray:
    out = np.asarray(xyxy, dtype=np.float64) * info.scale
    out[..., [0, 2]] += info.pad_x
    out[..., [1, 3]] += info.pad_y
    return out


def boxes_from_letterbox(xyxy: np.ndarray, info: LetterboxInfo, clip: bool = True) -> np.ndarray:
    """Map boxes predicted on the letterboxed input back to original image pixels."""
    out = np.array(xyxy, dtype=np.float64)
    out[..., [0, 2]] -= info.pad_x
    out[..., [1, 3]] -= info.pad_y
    out /= info.scale
    if clip:
        out[..., [0, 2]] = out[..., [0, 2]].clip(0, info.orig_width)
        out[..., [1, 3]] = out[..., [1, 3]].clip(0, info.orig_height)
    return out
