"""Sprites for the synthetic MOT generator: supersampled OpenCV drawings as premultiplied-alpha patches.

Why: every figure and clutter object is drawn once (per size and pose) with plain OpenCV primitives at
``SUPERSAMPLE`` times the output scale on a black canvas. Area-downsampling that canvas gives anti-aliased
premultiplied colour, and downsampling its non-black mask gives coverage, so compositing a patch is one
multiply-add and the same coverage yields the occlusion masks used for the visibility column.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

SUPERSAMPLE = 2
#: coverage (0..255) at or above which a pixel belongs to a figure (occlusion labels, visibility areas)
BODY_THRESHOLD = 128
#: coverage at or above which a pixel is inside the annotated box (ignores faint anti-aliasing fringes)
BOX_THRESHOLD = 64
#: how much a ground shadow darkens the floor at its centre
SHADOW_STRENGTH = 0.35


@dataclass(frozen=True)
class Sprite:
    """An anti-aliased patch anchored at its ground-contact point."""

    colour: np.ndarray  # (h, w, 3) uint8, BGR premultiplied by coverage
    alpha: np.ndarray  # (h, w) uint8 coverage
    shadow: np.ndarray | None  # (h, w) uint8 ground-shadow strength, or None
    anchor: tuple[int, int]  # (x, y) of the ground-contact point inside the patch
    box: tuple[int, int, int, int]  # body box x0, y0, x1, y1 (x1/y1 exclusive) inside the patch
    area: int  # number of pixels with coverage >= BODY_THRESHOLD

    @property
    def shape(self) -> tuple[int, int]:
        return self.alpha.shape

    def flipped(self) -> "Sprite":
        """Mirror left-right (a figure facing the other way)."""
        w = self.alpha.shape[1]
        x0, y0, x1, y1 = self.box
        shadow = None if self.shadow is None else self.shadow[:, ::-1].copy()
        return Sprite(self.colour[:, ::-1].copy(), self.alpha[:, ::-1].copy(), shadow,
                      (w - 1 - self.anchor[0], self.anchor[1]), (w - x1, y0, w - x0, y1), self.area)


def new_canvas(width: float, height: float) -> np.ndarray:
    """A black supersampled canvas for ``width`` x ``height`` output pixels (draw colours with channels >= 1)."""
    return np.zeros((int(np.ceil(height)) * SUPERSAMPLE, int(np.ceil(width)) * SUPERSAMPLE, 3), np.uint8)


def visible_colour(colour) -> tuple[int, int, int]:
    """Clamp a BGR colour away from pure black, which the canvas reserves for 'empty'."""
    return tuple(int(min(255, max(1, round(c)))) for c in colour)


def rasterise(canvas: np.ndarray, anchor: tuple[float, float], shadow_axes: tuple[float, float] | None = None
              ) -> Sprite:
    """Downsample a supersampled canvas into a Sprite cropped to its content.

    ``anchor`` is the ground-contact point in output pixels; ``shadow_axes`` (output pixels) adds an
    elliptical ground shadow centred there.
    """
    ss = SUPERSAMPLE
    h, w = canvas.shape[0] // ss, canvas.shape[1] // ss
    canvas = np.ascontiguousarray(canvas[:h * ss, :w * ss])
    # drawn colours have every channel >= 1, so their grey value is >= 1 and empty pixels stay 0
    mask = cv2.threshold(cv2.cvtColor(canvas, cv2.COLOR_BGR2GRAY), 0, 255, cv2.THRESH_BINARY)[1]
    colour = cv2.resize(canvas, (w, h), interpolation=cv2.INTER_AREA)
    alpha = cv2.resize(mask, (w, h), interpolation=cv2.INTER_AREA)
    shadow = None
    occupied = alpha
    if shadow_axes is not None:
        shadow = np.zeros((h, w), np.uint8)
        axes = (max(1, round(shadow_axes[0])), max(1, round(shadow_axes[1])))
        cv2.ellipse(shadow, (round(anchor[0]), round(anchor[1])), axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
        occupied = cv2.max(alpha, shadow)
    x, y, cw, ch = cv2.boundingRect(occupied)
    if cw == 0:  # nothing drawn (too small): keep one transparent pixel so callers need no special case
        x, y, cw, ch = 0, 0, 1, 1
    ys, xs = slice(y, y + ch), slice(x, x + cw)
    colour, alpha = colour[ys, xs].copy(), alpha[ys, xs].copy()
    shadow = None if shadow is None else shadow[ys, xs].copy()
    bx, by, bw, bh = cv2.boundingRect(cv2.threshold(alpha, BOX_THRESHOLD - 1, 255, cv2.THRESH_BINARY)[1])
    box = (bx, by, bx + bw, by + bh) if bw else (0, 0, 1, 1)
    anchor_px = (int(round(anchor[0])) - x, int(round(anchor[1])) - y)
    return Sprite(colour, alpha, shadow, anchor_px, box, int(np.count_nonzero(alpha >= BODY_THRESHOLD)))


def overlap(frame_shape: tuple[int, ...], x: int, y: int, h: int, w: int):
    """Slices (frame, patch) of a h x w patch placed with its top-left at (x, y); None if it misses the frame."""
    fh, fw = frame_shape[:2]
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, fw), min(y + h, fh)
    if x0 >= x1 or y0 >= y1:
        return None
    return (slice(y0, y1), slice(x0, x1)), (slice(y0 - y, y1 - y), slice(x0 - x, x1 - x))


def composite(frame: np.ndarray, labels: np.ndarray, sprite: Sprite, x: int, y: int, label: int) -> None:
    """Draw ``sprite`` (top-left at x, y) over ``frame`` and paint ``label`` where it covers ``labels``.

    Called far-to-near, so ``labels`` ends up holding the nearest figure of every pixel.
    """
    slices = overlap(frame.shape, x, y, *sprite.shape)
    if slices is None:
        return
    dst, src = slices
    roi = frame[dst].astype(np.float32)
    if sprite.shadow is not None:
        roi *= 1.0 - (SHADOW_STRENGTH / 255.0) * sprite.shadow[src][..., None]
    alpha = sprite.alpha[src]
    roi = roi * (1.0 - alpha[..., None] / np.float32(255.0)) + sprite.colour[src]
    frame[dst] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
    labels[dst][alpha >= BODY_THRESHOLD] = label
