"""MOT17-like synthetic sequences (gt with distractors and zero-marked rows, imperfect tracker output).

Used by the parity tests and the speed bench: the data exercises every protocol rule (distractor removal,
zero-marked gt, id switches, fragmented tracks, false positives, competing overlapping boxes).
"""
from __future__ import annotations

import numpy as np

from eval.protocol import SequenceData

_OTHER_CLASSES = (2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13)


def _tracks(rng: np.random.Generator, num_frames: int, num_tracks: int, width: float, height: float
            ) -> np.ndarray:
    """Rows (frame, id, x, y, w, h) of linearly moving boxes with random lifetimes."""
    rows = []
    for tid in range(1, num_tracks + 1):
        start = int(rng.integers(1, num_frames + 1))
        length = int(rng.integers(1, max(2, num_frames // 2)))
        frames = np.arange(start, min(num_frames, start + length) + 1)
        w = rng.uniform(20, 120)
        h = w * rng.uniform(1.8, 3.0)
        x0, y0 = rng.uniform(0, width - w), rng.uniform(0, height - h)
        vx, vy = rng.normal(0, 2, 2)
        t = frames - start
        rows.append(np.c_[frames, np.full(len(frames), tid), x0 + vx * t, y0 + vy * t,
                          np.full(len(frames), w), np.full(len(frames), h)])
    return np.concatenate(rows) if rows else np.zeros((0, 6))


def make_sequence(rng: np.random.Generator, name: str, num_frames: int, num_tracks: int,
                  distractor_fraction: float = 0.15, zero_marked_fraction: float = 0.05,
                  width: float = 1920, height: float = 1080, mot15: bool = False) -> SequenceData:
    """One sequence: gt.txt-style rows (10 columns) and result rows derived from them with errors."""
    base = _tracks(rng, num_frames, num_tracks, width, height)
    n = len(base)
    cls = np.ones(n)
    track_cls = rng.choice(_OTHER_CLASSES, num_tracks + 1)
    other = rng.random(num_tracks + 1) < distractor_fraction
    is_other = other[base[:, 1].astype(int)]
    cls[is_other] = track_cls[base[is_other, 1].astype(int)]
    consider = (rng.random(n) >= zero_marked_fraction).astype(float)
    consider[is_other] = 0  # like MOT17: non-pedestrian rows carry 0 in column 7
    if mot15:
        cls[:] = -1
    visibility = rng.uniform(0, 1, n).round(2)
    gt = np.c_[base, consider, cls, visibility, -np.ones(n)]
    gt[:, 2:6] = gt[:, 2:6].round(0)

    # Tracker: noisy copies of most gt boxes (distractors included), with id switches and gaps.
    keep = rng.random(n) < 0.7
    trk = base[keep].copy()
    trk[:, 2:6] += rng.normal(0, 0.08, (len(trk), 4)) * trk[:, [4, 5, 4, 5]]
    trk[:, 4:6] = np.abs(trk[:, 4:6])
    ids = trk[:, 1].copy()
    switch = rng.random(num_tracks + 1) < 0.3  # these tracks change tracker id half way
    mid = {tid: np.median(trk[ids == tid, 0]) for tid in np.flatnonzero(switch) if (ids == tid).any()}
    for tid, frame in mid.items():
        ids[(ids == tid) & (trk[:, 0] > frame)] = tid + 100_000
    trk[:, 1] = ids
    # Duplicated boxes (competing matches) and pure false positives.
    dup = trk[rng.random(len(trk)) < 0.03].copy()
    dup[:, 1] += 200_000
    dup[:, 2:4] += rng.normal(0, 3, (len(dup), 2))
    fps = _tracks(rng, num_frames, max(1, num_tracks // 10), width, height)
    fps[:, 1] += 1_000_000
    trk = np.concatenate([trk, dup, fps])
    trk = trk[np.argsort(trk[:, 0], kind="stable")]
    trk = np.c_[trk[:, :2], trk[:, 2:6].round(2), rng.uniform(0.3, 1, len(trk)).round(3),
                -np.ones((len(trk), 3))]
    return SequenceData(name, gt, trk, num_frames)


def make_benchmark(seed: int = 0, num_sequences: int = 3, num_frames: int = 60, num_tracks: int = 25,
                   **kwargs) -> list[SequenceData]:
    rng = np.random.default_rng(seed)
    return [make_sequence(rng, f"SYN-{i + 1:02d}", num_frames, num_tracks, **kwargs) for i in range(num_sequences)]
