"""Articulated person figures for the synthetic MOT generator: appearance, look-alikes, walking sprites.

Identity lives in appearance only (clothing colours and patterns, hair, skin, height, build, accessories).
Look-alike identities copy another person's appearance and change one fine detail (a cap, a backpack, a
logo, the stripe count...), so telling them apart needs fine features rather than colour histograms.
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, replace

import cv2
import numpy as np

from mot_kd.data.synthetic_sprite import SUPERSAMPLE, Sprite, new_canvas, rasterise, visible_colour

#: walking poses per gait cycle; pose ``STAND`` is the still, upright pose
N_PHASES = 8
STAND = N_PHASES

Colour = tuple[int, int, int]

CLOTHES: tuple[Colour, ...] = (
    (30, 30, 32), (235, 235, 232), (128, 128, 128), (90, 42, 22), (150, 100, 60), (40, 40, 200),
    (40, 30, 120), (60, 130, 60), (50, 110, 110), (150, 190, 210), (40, 70, 110), (50, 200, 230),
    (30, 130, 240), (180, 150, 240), (130, 50, 110), (130, 130, 30), (230, 180, 120), (70, 70, 70))
TROUSERS: tuple[Colour, ...] = (
    (30, 30, 32), (110, 70, 40), (140, 100, 70), (90, 90, 90), (150, 185, 200), (60, 50, 40), (45, 70, 85))
SKIN: tuple[Colour, ...] = ((160, 190, 230), (125, 165, 215), (95, 135, 185), (65, 95, 145), (45, 65, 105))
HAIR: tuple[Colour, ...] = ((20, 20, 25), (30, 50, 80), (100, 170, 210), (165, 165, 165), (40, 70, 150))
SHIRT_PATTERNS = ("solid", "hstripe", "vstripe", "check", "logo", "twotone")
#: the fine details a look-alike may differ in
DETAILS = ("cap", "backpack", "bag", "scarf", "shoes", "logo", "stripes")


@dataclass(frozen=True)
class Appearance:
    """Everything that identifies a person visually (hashable: sprites are cached per appearance)."""

    height_m: float
    build: float  # width multiplier
    skin: Colour
    hair: Colour
    hair_style: str  # short | long | bald
    shirt: Colour
    shirt_alt: Colour  # stripe / check / logo / lower-half colour
    shirt_pattern: str
    stripes: int
    long_sleeves: bool
    legwear: str  # trousers | shorts | skirt
    trousers: Colour
    shoes: Colour
    cap: Colour | None = None
    backpack: Colour | None = None
    bag: Colour | None = None
    scarf: Colour | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def _pick(rng: np.random.Generator, palette: tuple[Colour, ...], jitter: float = 14.0) -> Colour:
    base = np.array(palette[int(rng.integers(len(palette)))], float)
    return visible_colour(base + rng.uniform(-jitter, jitter, 3))


def _distance(a: Colour, b: Colour) -> float:
    return float(np.abs(np.subtract(a, b)).sum())


def _maybe(rng: np.random.Generator, p: float, palette: tuple[Colour, ...] = CLOTHES) -> Colour | None:
    colour = _pick(rng, palette)  # always draw, so the random stream does not depend on the coin
    return colour if rng.random() < p else None


def sample_appearance(rng: np.random.Generator) -> Appearance:
    """A random person; colours come from realistic clothing palettes with small jitter."""
    shirt = _pick(rng, CLOTHES)
    alt = _pick(rng, CLOTHES)
    if _distance(alt, shirt) < 60:  # patterns and logos must be visible (look-alikes may differ only there)
        alt = max(CLOTHES, key=lambda c: _distance(c, shirt))
    return Appearance(
        height_m=float(rng.uniform(1.55, 1.95)), build=float(rng.uniform(0.85, 1.25)),
        skin=_pick(rng, SKIN, 8), hair=_pick(rng, HAIR, 8),
        hair_style=("short", "short", "long", "bald")[int(rng.integers(4))],
        shirt=shirt, shirt_alt=alt, shirt_pattern=SHIRT_PATTERNS[int(rng.integers(len(SHIRT_PATTERNS)))],
        stripes=int(rng.integers(3, 7)), long_sleeves=bool(rng.random() < 0.6),
        legwear=("trousers", "trousers", "trousers", "shorts", "skirt")[int(rng.integers(5))],
        trousers=_pick(rng, TROUSERS), shoes=_pick(rng, TROUSERS, 10),
        cap=_maybe(rng, 0.2), backpack=_maybe(rng, 0.25), bag=_maybe(rng, 0.15), scarf=_maybe(rng, 0.1))


def make_lookalike(source: Appearance, rng: np.random.Generator) -> tuple[Appearance, str]:
    """Copy ``source`` and change exactly one fine detail; returns (appearance, detail name)."""
    detail = DETAILS[int(rng.integers(len(DETAILS)))]
    colour = _pick(rng, CLOTHES)
    if detail in ("logo", "stripes"):
        if source.shirt_pattern in ("hstripe", "vstripe", "check"):
            return replace(source, stripes=source.stripes + (1 if source.stripes < 5 else -1)), "stripes"
        if source.shirt_pattern in ("solid", "logo"):
            return replace(source, shirt_pattern="solid" if source.shirt_pattern == "logo" else "logo"), "logo"
        detail = "cap"  # a two-tone shirt has no fine pattern detail to change
    if detail == "shoes":  # the most different of white, red and black shoes
        shoes = max(((235, 235, 235), (40, 40, 200), (30, 30, 32)), key=lambda c: _distance(c, source.shoes))
        return replace(source, shoes=shoes), detail
    return replace(source, **{detail: None if getattr(source, detail) else colour}), detail


@functools.lru_cache(maxsize=512)
def person_sprite(appearance: Appearance, height_px: int, pose: int, facing: int) -> Sprite:
    """The figure ``height_px`` tall in walking pose ``pose`` (or STAND), facing +x (1) or -x (-1)."""
    if facing < 0:
        return person_sprite(appearance, height_px, pose, 1).flipped()
    return _draw_person(appearance, height_px, pose)


def _draw_person(a: Appearance, height_px: int, pose: int) -> Sprite:
    """Draw a side-walking figure facing +x: frontal torso with the shirt pattern, swinging limbs."""
    ph, b = float(height_px), a.build
    width = 0.9 * ph * max(b, 1.0) + 4
    canvas = new_canvas(width, 1.06 * ph + 2)
    scale, cx = ph * SUPERSAMPLE, width * SUPERSAMPLE / 2

    def pt(x: float, y: float) -> tuple[int, int]:
        return int(round(cx + x * scale)), int(round(y * scale))

    def thick(t: float) -> int:
        return max(1, int(round(t * scale)))

    def line(p, q, colour, t):
        cv2.line(canvas, pt(*p), pt(*q), visible_colour(colour), thick(t))

    swing = 0.0 if pose == STAND else math.sin(2 * math.pi * pose / N_PHASES)
    lift = 0.0 if pose == STAND else math.cos(2 * math.pi * pose / N_PHASES)
    shoulder_y, hip_y = 0.185, 0.50

    if a.backpack is not None:  # behind the body, sticking out on the back (-x) side
        cv2.rectangle(canvas, pt(-0.18 * b, 0.19), pt(-0.02 * b, 0.43), visible_colour(a.backpack), -1)

    # legs: thigh and shin; the knee of the leg swinging back bends
    for side, sign in ((-1, 1.0), (1, -1.0)):
        angle = 0.42 * swing * sign
        bend = 0.55 * max(0.0, -lift * sign)
        hip = (0.04 * b * side, hip_y)
        knee = (hip[0] + 0.245 * math.sin(angle), hip[1] + 0.245 * math.cos(angle))
        foot = (knee[0] + 0.245 * math.sin(angle - bend), knee[1] + 0.245 * math.cos(angle - bend))
        shin = a.skin if a.legwear in ("shorts", "skirt") else a.trousers
        line(hip, knee, a.skin if a.legwear == "skirt" else a.trousers, 0.085 * b)
        line(knee, foot, shin, 0.075 * b)
        line(foot, (foot[0] + 0.065, foot[1]), a.shoes, 0.04)
    if a.legwear == "skirt":
        flare = 0.17 * b + 0.04 * abs(swing)
        poly = np.array([pt(-0.1 * b, 0.47), pt(0.1 * b, 0.47), pt(flare, 0.72), pt(-flare, 0.72)], np.int32)
        cv2.fillPoly(canvas, [poly], visible_colour(a.trousers))

    _draw_torso(canvas, a, pt, thick, shoulder_y, hip_y)

    # arms swing against the legs; long sleeves cover the forearm
    for side, sign in ((-1, -1.0), (1, 1.0)):
        angle = -0.38 * swing * sign
        shoulder = (0.115 * b * side, shoulder_y)
        elbow = (shoulder[0] + 0.16 * math.sin(angle), shoulder[1] + 0.16 * math.cos(angle))
        hand = (elbow[0] + 0.15 * math.sin(angle + 0.25), elbow[1] + 0.15 * math.cos(angle + 0.25))
        line(shoulder, elbow, a.shirt, 0.055 * b)
        line(elbow, hand, a.shirt if a.long_sleeves else a.skin, 0.048 * b)
        cv2.circle(canvas, pt(*hand), thick(0.026), visible_colour(a.skin), -1)

    # head, hair on top and at the back, optional cap with a brim to the front
    line((0.0, 0.12), (0.0, 0.17), a.skin, 0.05)
    head, r = pt(0.012, 0.075), 0.058
    axes = (thick(r), thick(r))
    cv2.circle(canvas, head, axes[0], visible_colour(a.skin), -1)
    if a.hair_style != "bald":
        hair = visible_colour(a.hair)
        cv2.ellipse(canvas, head, (thick(r * 1.06), thick(r * 1.02)), 0, 180, 360, hair, -1)
        cv2.ellipse(canvas, head, (thick(r * 1.06), thick(r * 1.02)), 0, 90, 270, hair, -1)
        if a.hair_style == "long":
            cv2.rectangle(canvas, pt(-r * 1.05, 0.075), pt(-r * 0.2, 0.2), hair, -1)
    if a.scarf is not None:
        line((-0.07 * b, 0.165), (0.07 * b, 0.165), a.scarf, 0.035)
        line((0.04 * b, 0.165), (0.05 * b, 0.27), a.scarf, 0.03)
    if a.cap is not None:
        cap = visible_colour(a.cap)
        cv2.ellipse(canvas, head, (thick(r * 1.12), thick(r * 0.85)), 0, 180, 360, cap, -1)
        line((0.0, 0.07), (r * 1.9, 0.07), a.cap, 0.018)
    return rasterise(canvas, (width / 2, ph), shadow_axes=(0.2 * b * ph, 0.035 * ph))


def _draw_torso(canvas: np.ndarray, a: Appearance, pt, thick, top: float, bottom: float) -> None:
    """Torso polygon filled with the shirt pattern (drawn on a layer, then cut by the torso mask)."""
    b = a.build
    poly = np.array([pt(-0.125 * b, top - 0.02), pt(0.125 * b, top - 0.02), pt(0.105 * b, bottom),
                     pt(-0.105 * b, bottom)], np.int32)
    mask = np.zeros(canvas.shape[:2], np.uint8)
    cv2.fillPoly(mask, [poly], 255)
    for side in (-1, 1):
        cv2.circle(mask, pt(0.1 * b * side, top), thick(0.03 * b), 255, -1)
    layer = np.empty_like(canvas)
    cv2.rectangle(layer, (0, 0), (layer.shape[1], layer.shape[0]), visible_colour(a.shirt), -1)
    alt = visible_colour(a.shirt_alt)
    height, half = bottom - top + 0.02, 0.125 * b
    period = height / a.stripes
    if a.shirt_pattern in ("hstripe", "check"):
        for k in range(a.stripes):
            y = top - 0.02 + (k + 0.5) * period
            cv2.line(layer, pt(-half, y), pt(half, y), alt, thick(period * 0.45))
    if a.shirt_pattern in ("vstripe", "check"):
        step = 2 * half / a.stripes
        for k in range(a.stripes):
            x = -half + (k + 0.5) * step
            cv2.line(layer, pt(x, top - 0.02), pt(x, bottom), alt, thick(step * 0.4))
    if a.shirt_pattern == "twotone":
        cv2.rectangle(layer, pt(-half, top + 0.17), pt(half, bottom), alt, -1)
    if a.shirt_pattern == "logo":
        cv2.rectangle(layer, pt(0.025 * b, 0.23), pt(0.085 * b, 0.285), alt, -1)
    if a.backpack is not None:  # shoulder straps
        for x in (-0.07 * b, 0.07 * b):
            cv2.line(layer, pt(x, top - 0.02), pt(x * 0.9, 0.36), visible_colour(np.array(a.backpack) * 0.7),
                     thick(0.018))
    if a.bag is not None:  # strap across the chest
        cv2.line(layer, pt(0.11 * b, top), pt(-0.1 * b, 0.45), visible_colour(a.bag), thick(0.016))
    cv2.copyTo(layer, mask, canvas)
    if a.bag is not None:
        cv2.rectangle(canvas, pt(-0.19 * b, 0.41), pt(-0.08 * b, 0.5), visible_colour(a.bag), -1)


class IdentityPool:
    """Hands out per-sequence track ids and appearances, making look-alikes of earlier people on request."""

    def __init__(self, rng: np.random.Generator, lookalike: float):
        self.rng, self.lookalike = rng, lookalike
        self.records: dict[int, dict] = {}

    def new_id(self, kind: str, **info) -> int:
        track_id = len(self.records) + 1
        self.records[track_id] = {"kind": kind, **info}
        return track_id

    def new_person(self, kind: str, candidates: list[int]) -> tuple[int, Appearance]:
        """A fresh identity; with probability ``lookalike`` a near-copy of one of ``candidates``."""
        fresh = sample_appearance(self.rng)
        coin, choice = self.rng.random(), self.rng.random()
        sources = [c for c in candidates if "appearance" in self.records[c]]
        if sources and coin < self.lookalike:
            source = sources[int(choice * len(sources))]
            appearance, detail = make_lookalike(self.records[source]["appearance"], self.rng)
            return self.new_id(kind, appearance=appearance, twin_of=source, differs_in=detail), appearance
        return self.new_id(kind, appearance=fresh), fresh
