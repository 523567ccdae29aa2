"""One synthetic sequence as a scene: renders each frame and its MOTChallenge gt rows.

Everything is drawn on a canvas slightly larger than the image (the jitter/pan margin) and the frame is
cropped from it, so camera motion moves the image and the boxes together. Figures are drawn far-to-near
while painting a label map; the nearest figure wins each pixel, which gives each box's visibility as the
fraction of its figure's pixels left uncovered (by nearer people or clutter) and inside the image.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mot_kd.data.synthetic_motion import Crowd
from mot_kd.data.synthetic_people import STAND, IdentityPool, person_sprite
from mot_kd.data.synthetic_scene import Camera, Clutter, make_clutter, render_background
from mot_kd.data.synthetic_sprite import BODY_THRESHOLD, Sprite, composite, overlap
from mot_kd.errors import InputError

PEDESTRIAN, STATIC_PERSON, REFLECTION = 1, 7, 12
MIN_HEIGHT_PX = 8
REFLECTION_STRENGTH = 0.4
MIN_REFLECTION_PX = 25  # reflections smaller than this many pixels are not annotated
MIN_WIDTH, MIN_HEIGHT, MAX_SIDE = 64, 48, 8192


@dataclass(frozen=True)
class SceneConfig:
    """What one synthetic sequence looks like; the difficulty knobs are people, lookalike and clutter."""

    width: int = 640
    height: int = 384
    frames: int = 150
    fps: int = 30
    people: int = 8  # pedestrians kept in view (crowding, mutual occlusion)
    lookalike: float = 0.3  # chance that a new person is a near-copy of one already in view
    clutter: int = 4  # static occluders on the floor
    static_people: int = 1  # class-7 distractors
    reflections: bool = True  # class-12 distractors in the puddle
    jitter: bool = False  # camera pan and shake
    quality: int = 90  # JPEG quality

    def validate(self) -> None:
        """Raise InputError naming the first bad field."""
        for name in ("width", "height", "frames", "fps", "people", "clutter", "static_people", "quality"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise InputError(f"{name} must be an integer, got {value!r}")
        for name in ("frames", "fps", "people"):
            if getattr(self, name) <= 0:
                raise InputError(f"{name} must be positive, got {getattr(self, name)}")
        if not (MIN_WIDTH <= self.width <= MAX_SIDE and MIN_HEIGHT <= self.height <= MAX_SIDE):
            raise InputError(f"image size {self.width}x{self.height} leaves no room for people: width must be "
                             f"{MIN_WIDTH}..{MAX_SIDE} and height {MIN_HEIGHT}..{MAX_SIDE}")
        if not self.height / 3 <= self.width <= 6 * self.height:
            raise InputError(f"image size {self.width}x{self.height}: width/height must be between 1/3 and 6")
        if self.clutter < 0 or self.static_people < 0:
            raise InputError(f"clutter and static_people must be >= 0, got {self.clutter}, {self.static_people}")
        if not 0.0 <= self.lookalike <= 1.0:
            raise InputError(f"lookalike must be a fraction in [0, 1], got {self.lookalike}")
        if not 1 <= self.quality <= 100:
            raise InputError(f"quality must be 1..100, got {self.quality}")


@dataclass(frozen=True)
class StaticPerson:
    track_id: int
    x: float
    z: float
    sprite: Sprite


@dataclass(frozen=True)
class Figure:
    """Something drawn this frame, in canvas coordinates (top-left of its sprite)."""

    z: float
    order: int  # tie-break for equal depth: keeps drawing order deterministic
    track_id: int  # 0 for clutter (not annotated)
    cls: int
    sprite: Sprite
    left: int
    top: int


def camera_path(rng: np.random.Generator, frames: int, fps: float, margin: int) -> np.ndarray:
    """Integer (dx, dy) canvas offsets per frame: a slow pan plus a little hand-held shake."""
    if margin == 0:
        return np.zeros((frames, 2), np.int64)
    t = np.arange(frames)[:, None] / fps
    period, phase = rng.uniform(4.0, 8.0, 2), rng.uniform(0, 2 * math.pi, 2)
    pan = margin * np.array([0.6, 0.3]) * np.sin(2 * math.pi * t / period + phase)
    noise = rng.normal(0.0, 0.8, (frames, 2))
    shake = np.zeros_like(noise)
    for k in range(frames):
        shake[k] = noise[k] + (0.6 * shake[k - 1] if k else 0.0)
    return np.clip(np.round(pan + shake), -margin, margin).astype(np.int64)


class Scene:
    """The state of one sequence; call :meth:`render` for frames 1, 2, ... in order."""

    def __init__(self, rng: np.random.Generator, config: SceneConfig):
        margin = max(4, round(0.05 * config.height)) if config.jitter else 0
        self.cam = cam = Camera(config.width, config.height, margin)
        self.rng = rng
        self.background, self.puddle = render_background(rng, cam)
        self.identities = IdentityPool(rng, config.lookalike)
        self.clutter: list[Clutter] = make_clutter(rng, cam, config.clutter)
        self.statics = [self._static_person() for _ in range(config.static_people)]
        self.crowd = Crowd(rng, cam, config.fps, config.people, self.identities)
        self.crowd.populate()
        self.path = camera_path(rng, config.frames, config.fps, margin)
        self.reflections = config.reflections
        self.reflection_ids: dict[int, int] = {}

    def _static_person(self) -> StaticPerson:
        cam = self.cam
        z = float(self.rng.uniform(cam.z_near * 1.2, cam.z_far * 0.8))
        x = float(self.rng.uniform(-0.8, 0.8) * cam.half_width_m(z, margin=False))
        facing = 1 if self.rng.random() < 0.5 else -1
        track_id, appearance = self.identities.new_person("static person", [])
        height = max(MIN_HEIGHT_PX, round(cam.pixels_per_metre(z) * appearance.height_m))
        return StaticPerson(track_id, x, z, person_sprite(appearance, height, STAND, facing))

    def _place(self, sprite: Sprite, x: float, z: float) -> tuple[int, int]:
        u, v = self.cam.ground_to_canvas(x, z)
        return round(u) - sprite.anchor[0], round(v) - sprite.anchor[1]

    def _figures(self) -> list[Figure]:
        figures = []
        for walker in self.crowd.walkers:
            height = max(MIN_HEIGHT_PX, round(self.cam.pixels_per_metre(walker.z) * walker.appearance.height_m))
            sprite = person_sprite(walker.appearance, height, walker.pose, walker.facing)
            figures.append(Figure(walker.z, 2, walker.track_id, PEDESTRIAN, sprite,
                                  *self._place(sprite, walker.x, walker.z)))
        for person in self.statics:
            figures.append(Figure(person.z, 1, person.track_id, STATIC_PERSON, person.sprite,
                                  *self._place(person.sprite, person.x, person.z)))
        for k, thing in enumerate(self.clutter):
            figures.append(Figure(thing.z, 0, -k - 1, 0, thing.sprite, *self._place(thing.sprite, thing.x, thing.z)))
        figures.sort(key=lambda f: (-f.z, f.order, f.track_id))
        return figures

    def render(self, frame: int) -> tuple[np.ndarray, list[tuple]]:
        """The image (H, W, 3) uint8 BGR and gt rows (frame, id, x, y, w, h, consider, class, visibility)."""
        if frame > 1:
            self.crowd.step(frame)
        cam = self.cam
        canvas = self.background.copy()
        labels = np.full(canvas.shape[:2], -1, np.int32)
        dx, dy = self.path[frame - 1]
        origin = (cam.margin + int(dx), cam.margin + int(dy))  # canvas position of the image's top-left pixel
        window = (slice(origin[1], origin[1] + cam.height), slice(origin[0], origin[0] + cam.width))
        figures = self._figures()
        pedestrians = [f for f in figures if f.cls == PEDESTRIAN] if self.reflections else []
        mirrored = [m for m in (self._reflect(canvas, f) for f in pedestrians) if m is not None]
        for index, figure in enumerate(figures):
            composite(canvas, labels, figure.sprite, figure.left, figure.top, index)
        seen = np.bincount(labels[window].ravel() + 1, minlength=len(figures) + 1)[1:]
        rows = []
        for figure, pixels in zip(figures, seen):
            if figure.cls != 0:
                x0, y0, x1, y1 = figure.sprite.box
                box = (figure.left + x0 - origin[0], figure.top + y0 - origin[1], x1 - x0, y1 - y0)
                visibility = min(1.0, pixels / max(1, figure.sprite.area))
                rows.append(self._row(frame, figure.track_id, box, figure.cls, visibility))
        in_image = np.zeros(canvas.shape[:2], bool)
        in_image[window] = True
        for track_id, dst, body in mirrored:
            visible = np.count_nonzero(body & (labels[dst] < 0) & in_image[dst]) / np.count_nonzero(body)
            ys, xs = np.nonzero(body.any(axis=1))[0], np.nonzero(body.any(axis=0))[0]
            box = (dst[1].start + xs[0] - origin[0], dst[0].start + ys[0] - origin[1],
                   xs[-1] - xs[0] + 1, ys[-1] - ys[0] + 1)
            rows.append(self._row(frame, self._reflection_id(track_id), box, REFLECTION, visible))
        return canvas[window], [row for row in rows if row is not None]

    def _row(self, frame: int, track_id: int, box: tuple, cls: int, visibility: float) -> tuple | None:
        """A gt row, or None when the box lies entirely outside the image."""
        x, y, w, h = (int(v) for v in box)
        if x + w <= 0 or y + h <= 0 or x >= self.cam.width or y >= self.cam.height:
            return None
        return frame, track_id, x, y, w, h, int(cls == PEDESTRIAN), cls, round(float(visibility), 5)

    def _reflection_id(self, track_id: int) -> int:
        if track_id not in self.reflection_ids:
            self.reflection_ids[track_id] = self.identities.new_id("reflection", of=track_id)
        return self.reflection_ids[track_id]

    def _reflect(self, canvas: np.ndarray, figure: Figure) -> tuple[int, tuple, np.ndarray] | None:
        """Draw a faint upside-down copy of a pedestrian into the puddle.

        Returns (track_id, canvas slices, mask of the reflection's pixels there), or None when too little of
        it falls into the puddle to be annotated.
        """
        sprite = figure.sprite
        h, w = sprite.shape
        ground_v = figure.top + sprite.anchor[1]
        slices = overlap(canvas.shape, figure.left, ground_v - (h - 1 - sprite.anchor[1]), h, w)
        if slices is None:
            return None
        dst, src = slices
        wet = self.puddle[dst]
        alpha = sprite.alpha[::-1][src]
        body = (alpha >= BODY_THRESHOLD) & (wet >= BODY_THRESHOLD)
        if np.count_nonzero(body) < MIN_REFLECTION_PX:
            return None
        strength = (wet.astype(np.float32) * (REFLECTION_STRENGTH / 255.0))[..., None]
        roi = canvas[dst].astype(np.float32)
        roi = roi * (1.0 - strength * (alpha[..., None] / np.float32(255.0))) + strength * sprite.colour[::-1][src]
        canvas[dst] = np.clip(roi + 0.5, 0, 255).astype(np.uint8)
        return figure.track_id, dst, body
