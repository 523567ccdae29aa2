"""Walking on the ground plane for the synthetic MOT generator: turns, stops, speed changes, entering/leaving.

Motion lives in metres on the ground (x lateral, z depth), so perspective follows from the camera alone:
a person walking towards the camera grows and moves down the image. Every random event is drawn from the
sequence's generator in a fixed order, which keeps sequences deterministic per seed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from mot_kd.data.synthetic_people import N_PHASES, STAND, Appearance, IdentityPool
from mot_kd.data.synthetic_scene import Camera

TURN_RATE = 0.15  # per second
STOP_RATE = 0.05
SPEED_CHANGE_RATE = 0.25
SPAWN_RATE = 1.5
REENTRY_PROB = 0.3  # a spawn brings back someone who left (same id and appearance), when there is one


@dataclass
class Walker:
    """One pedestrian's ground state."""

    track_id: int
    appearance: Appearance
    x: float
    z: float
    heading: float  # radians on the ground: 0 = +x (right), pi/2 = +z (away from the camera)
    pref_speed: float  # m/s
    leave_frame: int  # from this frame on the walker heads for the nearest side and leaves
    speed: float = 0.0
    target_speed: float = 0.0
    target_heading: float = 0.0
    phase: float = 0.0  # gait cycles walked (fractional part = pose)
    stop_frames: int = 0
    facing: int = 1
    leaving: bool = False

    def __post_init__(self):
        self.speed = self.target_speed = self.pref_speed
        self.target_heading = self.heading

    @property
    def pose(self) -> int:
        return STAND if self.speed < 0.2 else int(self.phase * N_PHASES) % N_PHASES

    def step(self, rng: np.random.Generator, frame: int, fps: float, cam: Camera) -> None:
        dt = 1.0 / fps
        events = rng.random(6)
        if not self.leaving and frame >= self.leave_frame:
            self.leaving = True
            self.target_heading = 0.0 if self.x > 0 else math.pi
        if self.stop_frames > 0:
            self.stop_frames -= 1
            if self.stop_frames == 0:
                self.target_speed = self.pref_speed
        elif events[0] < STOP_RATE * dt:
            self.stop_frames = int((0.7 + 2.3 * events[3]) * fps)
            self.target_speed = 0.0
        if self.stop_frames == 0 and events[1] < SPEED_CHANGE_RATE * dt:
            self.target_speed = self.pref_speed * (0.6 + 0.8 * events[4])
        if not self.leaving and events[2] < TURN_RATE * dt:
            self.target_heading = self.heading + (1 if events[5] < 0.5 else -1) * (0.5 + 1.1 * events[3])
        self._keep_in_depth(cam)
        turn = (self.target_heading - self.heading + math.pi) % (2 * math.pi) - math.pi
        self.heading += turn * min(1.0, 2.5 * dt) + rng.normal(0.0, 0.1) * math.sqrt(dt)
        self.speed += (self.target_speed - self.speed) * min(1.0, 3.0 * dt)
        u_before = cam.ground_to_canvas(self.x, self.z)[0]
        self.x += self.speed * math.cos(self.heading) * dt
        self.z += self.speed * math.sin(self.heading) * dt
        self.phase += self.speed * dt / (0.8 * self.appearance.height_m)
        du = cam.ground_to_canvas(self.x, self.z)[0] - u_before
        if abs(du) > 0.15:
            self.facing = 1 if du > 0 else -1

    def _keep_in_depth(self, cam: Camera) -> None:
        """Turn back (mirror the depth component of the heading) near the far wall and the camera."""
        going_away = math.sin(self.target_heading) > 0
        if (self.z > 0.95 * cam.z_far and going_away) or (self.z < 0.85 * cam.z_near and not going_away):
            self.target_heading = -self.target_heading

    def gone(self, cam: Camera) -> bool:
        """Outside the canvas at the sides and walking away from it."""
        outward = math.cos(self.heading) * self.x > 0
        return outward and abs(self.x) > cam.half_width_m(self.z) + 0.6 * self.appearance.height_m


@dataclass
class Crowd:
    """The pedestrians of one sequence; keeps about ``target`` of them in view, spawning at the sides."""

    rng: np.random.Generator
    cam: Camera
    fps: float
    target: int
    identities: IdentityPool
    walkers: list[Walker] = field(default_factory=list)
    departed: list[tuple[int, Walker]] = field(default_factory=list)  # (frame it left, walker)

    def populate(self) -> None:
        """The people already in view at frame 1."""
        for _ in range(self.target):
            z = self._depth(float(self.rng.random()))
            x = float(self.rng.uniform(-0.9, 0.9) * self.cam.half_width_m(z, margin=False))
            self.walkers.append(self._new_walker(x, z, float(self.rng.uniform(-math.pi, math.pi)), frame=1))

    def step(self, frame: int) -> None:
        for walker in self.walkers:
            walker.step(self.rng, frame, self.fps, self.cam)
        still = []
        for walker in self.walkers:
            (self.departed.append((frame, walker)) if walker.gone(self.cam) else still.append(walker))
        self.walkers = still
        spawn, side, depth, angle, reuse = self.rng.random(5)
        if len(self.walkers) < self.target and spawn < SPAWN_RATE / self.fps:
            self._spawn(frame, 1 if side < 0.5 else -1, depth, angle, reuse)

    def _spawn(self, frame: int, side: int, depth: float, angle: float, reuse: float) -> None:
        z = self._depth(depth)
        x = side * (self.cam.half_width_m(z) + 0.3 * 1.75)
        heading = (math.pi if side > 0 else 0.0) + (angle - 0.5) * 1.2
        back = [entry for entry in self.departed if frame - entry[0] > self.fps]
        if back and reuse < REENTRY_PROB:
            entry = back[int(reuse / REENTRY_PROB * len(back))]
            self.departed.remove(entry)
            old = entry[1]
            walker = Walker(old.track_id, old.appearance, x, z, heading, old.pref_speed,
                            leave_frame=frame + self._stay_frames())
        else:
            walker = self._new_walker(x, z, heading, frame)
        self.walkers.append(walker)

    def _depth(self, u: float) -> float:
        """Log-uniform depth in [z_near, 0.95 z_far]: equal room for near (large) and far (small) people."""
        return self.cam.z_near * (0.95 * self.cam.z_far / self.cam.z_near) ** u

    def _stay_frames(self) -> int:
        return int(self.rng.uniform(3.0, 12.0) * self.fps)

    def _new_walker(self, x: float, z: float, heading: float, frame: int) -> Walker:
        candidates = [w.track_id for w in self.walkers]
        track_id, appearance = self.identities.new_person("pedestrian", candidates)
        return Walker(track_id, appearance, x, z, heading, pref_speed=float(self.rng.uniform(0.9, 1.6)),
                      leave_frame=frame + self._stay_frames())
