"""Static scene of the synthetic MOT generator: perspective camera, textured background, puddle, clutter.

The camera is a pinhole above a flat ground plane, so figures shrink and rise towards the horizon. The
background (a wall with bricks, windows and posters above the horizon, a tiled floor in perspective below)
is rendered once per sequence on a canvas with a margin, from which jittered frames are cropped.
"""
from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from mot_kd.data.synthetic_sprite import Sprite, new_canvas, rasterise, visible_colour

CAMERA_HEIGHT_M = 3.0
#: horizon position as a fraction of the image height
HORIZON = 0.2


@dataclass(frozen=True)
class Camera:
    """Pinhole camera over the ground; canvas = image plus ``margin`` pixels on each side (for jitter/pan)."""

    width: int
    height: int
    margin: int

    @property
    def focal(self) -> float:
        return 1.5 * self.height

    @property
    def horizon_v(self) -> float:
        return self.margin + HORIZON * self.height

    @property
    def z_near(self) -> float:
        """Depth whose ground point lies on the bottom image row."""
        return self.focal * CAMERA_HEIGHT_M / ((1.0 - HORIZON) * self.height)

    @property
    def z_far(self) -> float:
        """Farthest walking depth (a 1.75 m person is ~11% of the image height there)."""
        return 4.2 * self.z_near

    def ground_to_canvas(self, x: np.ndarray | float, z: np.ndarray | float):
        """Canvas pixel (u, v) of the ground point at lateral x and depth z (metres)."""
        return (self.margin + self.width / 2 + self.focal * x / z,
                self.horizon_v + self.focal * CAMERA_HEIGHT_M / z)

    def pixels_per_metre(self, z: float) -> float:
        return self.focal / z

    def half_width_m(self, z: float, margin: bool = True) -> float:
        """Half the ground width seen at depth z (including the canvas margin when ``margin``)."""
        return (self.width / 2 + (self.margin if margin else 0)) * z / self.focal


def render_background(rng: np.random.Generator, cam: Camera) -> tuple[np.ndarray, np.ndarray]:
    """The canvas background (uint8 BGR) and the puddle's coverage mask (uint8, 0..255)."""
    ch, cw = cam.height + 2 * cam.margin, cam.width + 2 * cam.margin
    ss = 2  # supersample the procedural texture so far tiles do not alias
    vs, us = np.mgrid[0:ch * ss, 0:cw * ss].astype(np.float32) / ss
    below = np.maximum(vs - cam.horizon_v, 1e-3)
    z = cam.focal * CAMERA_HEIGHT_M / below
    x = (us - cam.margin - cam.width / 2) * z / cam.focal
    tile = float(rng.choice([0.5, 0.8, 1.0, 1.5]))
    ix, iz = np.floor(x / tile).astype(np.int64), np.floor(z / tile).astype(np.int64)
    base = rng.uniform(70, 190) + rng.uniform(-20, 20, 3)  # muted floor colour; tiles vary mostly in brightness
    palette = np.clip(base * rng.uniform(0.8, 1.2, (16, 1)) + rng.uniform(-6, 6, (16, 3)), 0, 255).astype(np.float32)
    checker = ((ix + iz) % 2) * int(rng.integers(0, 2))
    tone = palette[((ix * 7 + iz * 13) % 8 + checker * 8) % 16]
    grout = (np.minimum(np.mod(x, tile), np.mod(z, tile)) < 0.04 * tile)[..., None]
    floor = np.where(grout, tone * 0.6, tone)
    haze = np.clip((z / (cam.z_far * 3.0)) ** 0.7, 0, 1)[..., None]
    floor = floor * (1 - haze) + palette.mean(axis=0) * haze
    floor = cv2.resize(floor, (cw, ch), interpolation=cv2.INTER_AREA)
    img = np.clip(floor, 0, 255)
    horizon = int(round(cam.horizon_v))
    img[:horizon] = _wall(rng, cw, horizon)
    # illumination: smooth brightness field, then sensor-like grain
    light = cv2.resize(rng.uniform(0.8, 1.15, (4, 6)).astype(np.float32), (cw, ch), interpolation=cv2.INTER_CUBIC)
    img = img * light[..., None] + rng.normal(0, 4, img.shape).astype(np.float32)
    img, puddle = _puddle(rng, cam, img)
    _stains(rng, cam, img)
    return np.clip(img + 0.5, 0, 255).astype(np.uint8), puddle


def _wall(rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """Brick wall with windows and posters (posters use clothing-like colours as distractors)."""
    wall = np.empty((height, width, 3), np.float32)
    base = rng.uniform(60, 170, 3)
    wall[:] = base
    brick_h = max(2, height // int(rng.integers(6, 11)))
    brick_w = brick_h * 3
    for row, y in enumerate(range(0, height, brick_h)):
        cv2.line(wall, (0, y), (width, y), (base * 0.7).tolist(), 1)
        for x in range((row % 2) * brick_w // 2, width, brick_w):
            cv2.line(wall, (x, y), (x, y + brick_h), (base * 0.7).tolist(), 1)
            shade = rng.uniform(-12, 12, 3)
            cv2.rectangle(wall, (x + 1, y + 1), (x + brick_w - 1, y + brick_h - 1), (base + shade).tolist(), -1)
    for _ in range(int(rng.integers(2, 6))):
        w, h = int(rng.uniform(0.05, 0.15) * width) + 2, int(rng.uniform(0.3, 0.8) * height) + 2
        x, y = int(rng.integers(0, max(1, width - w))), int(rng.integers(0, max(1, height - h)))
        if rng.random() < 0.5:  # window: dark glass with a frame and a lighter reflection band
            cv2.rectangle(wall, (x, y), (x + w, y + h), rng.uniform(40, 80, 3).tolist(), -1)
            cv2.rectangle(wall, (x + w // 4, y), (x + w // 2, y + h), rng.uniform(80, 120, 3).tolist(), -1)
            cv2.rectangle(wall, (x, y), (x + w, y + h), rng.uniform(180, 230, 3).tolist(), max(1, w // 20))
        else:  # poster: coloured blocks and stripes
            cv2.rectangle(wall, (x, y), (x + w, y + h), rng.uniform(20, 240, 3).tolist(), -1)
            for k in range(int(rng.integers(1, 5))):
                yy = y + int(rng.uniform(0, 1) * h)
                cv2.line(wall, (x, yy), (x + w, yy), rng.uniform(20, 240, 3).tolist(), max(1, h // 10))
    return wall


def _puddle(rng: np.random.Generator, cam: Camera, img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A glossy wet patch on the floor: darker and bluish; reflections are drawn into it per frame."""
    ch, cw = img.shape[:2]
    centre = (int(cam.margin + rng.uniform(0.2, 0.8) * cam.width),
              int(cam.margin + rng.uniform(0.55, 0.85) * cam.height))
    axes = (int(rng.uniform(0.15, 0.25) * cam.width) + 1, int(rng.uniform(0.05, 0.08) * cam.height) + 1)
    mask = np.zeros((ch, cw), np.uint8)
    cv2.ellipse(mask, centre, axes, 0, 0, 360, 255, -1, cv2.LINE_AA)
    blur = 2 * max(1, cam.height // 100) + 1
    mask = cv2.GaussianBlur(mask, (blur, blur), 0)
    m = mask[..., None].astype(np.float32) / 255.0
    wet = img * 0.55 + np.array([60, 45, 30], np.float32)
    return img * (1 - m) + wet * m, mask


def _stains(rng: np.random.Generator, cam: Camera, img: np.ndarray) -> None:
    """A few flattened dark stains/manhole covers on the floor, shaped by perspective."""
    for _ in range(int(rng.integers(2, 5))):
        z = rng.uniform(cam.z_near, cam.z_far)
        x = rng.uniform(-1, 1) * cam.half_width_m(z)
        u, v = cam.ground_to_canvas(x, z)
        r = rng.uniform(0.25, 0.6) * cam.pixels_per_metre(z)
        squash = CAMERA_HEIGHT_M / z
        colour = (img[min(int(v), img.shape[0] - 1), min(max(int(u), 0), img.shape[1] - 1)] * 0.7).tolist()
        cv2.ellipse(img, (int(u), int(v)), (max(1, int(r)), max(1, int(r * squash))), 0, 0, 360, colour, -1,
                    cv2.LINE_AA)


@dataclass(frozen=True)
class Clutter:
    """A static object standing on the floor; it occludes people behind it."""

    kind: str
    x: float
    z: float
    sprite: Sprite


CLUTTER_KINDS = ("bench", "bin", "lamp", "planter", "bollard")


def make_clutter(rng: np.random.Generator, cam: Camera, count: int) -> list[Clutter]:
    """``count`` random objects spread over the visible floor."""
    objects = []
    for _ in range(count):
        kind = CLUTTER_KINDS[int(rng.integers(len(CLUTTER_KINDS)))]
        z = float(rng.uniform(cam.z_near * 0.9, cam.z_far))
        x = float(rng.uniform(-0.9, 0.9) * cam.half_width_m(z, margin=False))
        objects.append(Clutter(kind, x, z, _clutter_sprite(rng, kind, cam.pixels_per_metre(z))))
    return objects


def _clutter_sprite(rng: np.random.Generator, kind: str, ppm: float) -> Sprite:
    """Draw one object ``ppm`` pixels per metre with its ground point at the bottom centre."""
    sizes = {"bench": (1.7, 0.95), "bin": (0.55, 0.95), "lamp": (0.5, 3.6), "planter": (1.1, 1.2),
             "bollard": (0.22, 0.9)}
    w_m, h_m = sizes[kind]
    width, height = w_m * ppm + 4, h_m * ppm + 4
    canvas = new_canvas(width, height)
    scale, cx, ground = ppm * 2, width, (height - 2) * 2  # supersampled coordinates (SUPERSAMPLE == 2)
    colour = visible_colour(rng.uniform(30, 140, 3))

    def rect(x0, y0, x1, y1, c):  # metres: x from the centre, y up from the ground
        cv2.rectangle(canvas, (int(cx + x0 * scale), int(ground - y1 * scale)),
                      (int(cx + x1 * scale), int(ground - y0 * scale)), visible_colour(c), -1)

    if kind == "bench":
        for leg in (-0.75, 0.7):
            rect(leg, 0, leg + 0.06, 0.45, np.array(colour) * 0.6)
        rect(-0.85, 0.42, 0.85, 0.5, colour)
        rect(-0.85, 0.6, 0.85, 0.68, colour)
        rect(-0.85, 0.78, 0.85, 0.86, colour)
    elif kind == "bin":
        rect(-0.24, 0, 0.24, 0.85, colour)
        rect(-0.27, 0.85, 0.27, 0.93, np.array(colour) * 0.7)
    elif kind == "lamp":
        rect(-0.05, 0, 0.05, 3.3, (60, 60, 60))
        rect(-0.22, 3.3, 0.22, 3.55, (190, 220, 230))
    elif kind == "planter":
        rect(-0.5, 0, 0.5, 0.55, colour)
        for _ in range(6):
            centre = (int(cx + rng.uniform(-0.4, 0.4) * scale), int(ground - rng.uniform(0.6, 0.95) * scale))
            cv2.circle(canvas, centre, max(1, int(rng.uniform(0.15, 0.28) * scale)),
                       visible_colour(rng.uniform([20, 90, 20], [70, 160, 60])), -1)
    else:
        rect(-0.1, 0, 0.1, 0.9, (40, 40, 40))
        rect(-0.1, 0.7, 0.1, 0.78, (30, 200, 230))
    return rasterise(canvas, (width / 2, height - 2), shadow_axes=(0.55 * w_m * ppm, 0.06 * ppm))
