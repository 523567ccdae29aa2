"""Training augmentations that move boxes with the pixels, so every box keeps its identity.

All randomness comes from an explicit ``numpy.random.Generator`` (never the global ``random``/``np.random``
state), which is what makes the dataset reproducible per (seed, epoch, index) whatever the worker count.
Boxes are (n, 4) xyxy pixels; functions that may drop boxes return the indices of the kept ones, so the
caller carries identities and classes along.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mot_kd.config import check_keys
from mot_kd.data.letterbox import PAD_VALUE
from mot_kd.errors import InputError


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (defaults follow YOLOv5's HSV gains and JDE's affine ranges)."""

    hsv_h: float = 0.015  # hue gain (fraction of the hue circle)
    hsv_s: float = 0.7  # saturation gain
    hsv_v: float = 0.4  # value gain
    flip: float = 0.5  # probability of a horizontal flip
    scale: tuple[float, float] = (0.5, 1.2)  # zoom range of the affine warp
    translate: float = 0.1  # max shift as a fraction of the image size
    degrees: float = 0.0  # max rotation (JDE uses 5; rotation inflates boxes, so off by default)
    min_size: float = 2.0  # boxes narrower or lower than this (pixels) after the warp are dropped
    min_area_frac: float = 0.2  # boxes keeping less than this fraction of their warped area are dropped

    @classmethod
    def from_dict(cls, values: dict | None) -> "AugmentConfig":
        values = dict(values or {})
        check_keys(values, cls.__dataclass_fields__, "augment")
        if "scale" in values:
            values["scale"] = tuple(float(v) for v in values["scale"])
        return cls(**values)


def hsv_jitter(image: np.ndarray, rng: np.random.Generator, h_gain: float, s_gain: float,
               v_gain: float) -> np.ndarray:
    """Random hue/saturation/value gains on a BGR uint8 image, via lookup tables (YOLOv5's scheme)."""
    if not (h_gain or s_gain or v_gain):
        return image
    gains = rng.uniform(-1, 1, 3) * (h_gain, s_gain, v_gain) + 1
    hue, sat, val = cv2.split(cv2.cvtColor(image, cv2.COLOR_BGR2HSV))
    x = np.arange(256, dtype=np.float64)
    lut_hue = ((x * gains[0]) % 180).astype(np.uint8)
    lut_sat = np.clip(x * gains[1], 0, 255).astype(np.uint8)
    lut_val = np.clip(x * gains[2], 0, 255).astype(np.uint8)
    hsv = cv2.merge((cv2.LUT(hue, lut_hue), cv2.LUT(sat, lut_sat), cv2.LUT(val, lut_val)))
    return cv2.cvtColor(hsv, cv2.COLOR_HSV2BGR)


def hflip(image: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mirror the image left-right and the boxes with it."""
    width = image.shape[1]
    out = np.array(boxes, dtype=np.float64)
    out[:, [0, 2]] = width - out[:, [2, 0]]
    return np.ascontiguousarray(image[:, ::-1]), out


def affine_matrix(width: int, height: int, rng: np.random.Generator, config: AugmentConfig) -> np.ndarray:
    """A random 2x3 scale/rotate-about-centre then translate matrix."""
    angle = rng.uniform(-config.degrees, config.degrees) if config.degrees else 0.0
    zoom = rng.uniform(*config.scale)
    shift = rng.uniform(-config.translate, config.translate, 2) * (width, height)
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), angle, zoom)
    matrix[:, 2] += shift
    return matrix


def warp_boxes(boxes: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Boxes enclosing the four warped corners of each box."""
    boxes = np.asarray(boxes, dtype=np.float64)
    corners = boxes[:, [0, 1, 2, 1, 2, 3, 0, 3]].reshape(-1, 4, 2)
    warped = corners @ matrix[:, :2].T + matrix[:, 2]
    return np.concatenate([warped.min(1), warped.max(1)], axis=1)


def clip_boxes(boxes: np.ndarray, width: int, height: int, min_size: float,
               min_area_frac: float) -> tuple[np.ndarray, np.ndarray]:
    """Clip boxes to the image; return the kept boxes and their indices.

    A box is dropped when, after clipping, it is thinner or lower than ``min_size`` pixels or keeps less
    than ``min_area_frac`` of its unclipped area (mostly outside the image).
    """
    boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
    clipped = boxes.copy()
    clipped[:, [0, 2]] = clipped[:, [0, 2]].clip(0, width)
    clipped[:, [1, 3]] = clipped[:, [1, 3]].clip(0, height)
    w, h = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    full_area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    keep = (w >= min_size) & (h >= min_size) & (w * h >= min_area_frac * np.maximum(full_area, 1e-9))
    index = np.flatnonzero(keep)
    return clipped[index], index


def random_affine(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
                  config: AugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Warp image and boxes by one random affine map; return image, kept boxes and their indices."""
    height, width = image.shape[:2]
    matrix = affine_matrix(width, height, rng, config)
    warped = cv2.warpAffine(image, matrix, (width, height), flags=cv2.INTER_LINEAR,
                            borderValue=(PAD_VALUE,) * 3)
    boxes, index = clip_boxes(warp_boxes(boxes, matrix), width, height, config.min_size, config.min_area_frac)
    return warped, boxes, index


def augment(image: np.ndarray, boxes: np.ndarray, rng: np.random.Generator,
            config: AugmentConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Affine warp, HSV jitter, then a random flip; return image, boxes and indices of the kept boxes."""
    image, boxes, index = random_affine(image, boxes, rng, config)
    image = hsv_jitter(image, rng, config.hsv_h, config.hsv_s, config.hsv_v)
    if rng.random() < config.flip:
        image, boxes = hflip(image, boxes)
    return image, boxes, index
