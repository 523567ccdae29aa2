"""Association cost per frame at MOT17-like crowding: ``python -m trackers.bench_speed``.

A generated crowd of ``--targets`` pedestrians walks across a 1920x1080 frame; each frame about
``--detections`` of them are detected (with jitter, low-score and false-positive boxes), so roughly
``--targets`` tracks are alive (tracked + lost). Timed: ``JDETracker.update`` only (Kalman, costs,
assignment, bookkeeping), after a warm-up that fills the track pool. Target: <= 1 ms/frame.

numpy's OpenBLAS runs the (tracks x D) @ (D x detections) appearance product on several threads; on a
loaded machine (or beside torch's own threads) that costs far more than it saves at these sizes. Run with
``OPENBLAS_NUM_THREADS=1`` (set before Python starts) to measure the tracker rather than the contention.
"""
from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mot_kd.errors import cli_entry
from trackers.jde_tracker import JDETracker


def crowd(frames: int, targets: int, detections: int, dim: int | None, seed: int = 0):
    """Yield (boxes, scores, embeddings) per frame for a crowd walking on straight lines, bouncing at borders."""
    rng = np.random.default_rng(seed)
    size = np.stack([rng.uniform(30, 80, targets), rng.uniform(80, 220, targets)], 1)  # w, h
    pos = rng.uniform([0, 0], [1920, 1080], (targets, 2))
    vel = rng.normal(0, 3, (targets, 2))
    ident = rng.normal(size=(targets, dim or 1))
    for _ in range(frames):
        pos += vel
        vel[(pos[:, 0] < 0) | (pos[:, 0] > 1920), 0] *= -1
        vel[(pos[:, 1] < 0) | (pos[:, 1] > 1080), 1] *= -1
        seen = rng.choice(targets, size=min(detections - 5, targets), replace=False)
        centre = np.concatenate([pos[seen] + rng.normal(0, 2, (len(seen), 2)), rng.uniform(0, 1900, (5, 2))])
        wh = np.concatenate([size[seen], rng.uniform(30, 100, (5, 2))])
        boxes = np.concatenate([centre - wh / 2, centre + wh / 2], 1)
        scores = np.concatenate([rng.uniform(0.3, 1.0, len(seen)), rng.uniform(0.1, 0.45, 5)])
        emb = None
        if dim:
            emb = np.concatenate([ident[seen], rng.normal(size=(5, dim))]) + rng.normal(0, 0.3, (len(boxes), dim))
            emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        yield boxes, scores, emb


def bench(dim: int | None, targets: int, detections: int, frames: int, warmup: int = 30) -> tuple[float, float, float]:
    """Return (median ms/frame, mean ms/frame, mean live tracks) over ``frames`` timed frames."""
    tracker = JDETracker({"use_embeddings": dim is not None})
    times, live = [], []
    for i, (boxes, scores, emb) in enumerate(crowd(warmup + frames, targets, detections, dim)):
        start = time.perf_counter()
        tracker.update(boxes, scores, emb)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            live.append(len(tracker.tracks))
    return 1e3 * float(np.median(times)), 1e3 * float(np.mean(times)), float(np.mean(live))


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=60, help="pedestrians in the scene (~ live tracks)")
    parser.add_argument("--detections", type=int, default=50, help="detections per frame")
    parser.add_argument("--frames", type=int, default=300, help="timed frames per setting")
    args = parser.parse_args(argv)
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    print(f"association ms/frame, {args.detections} detections/frame, {args.targets} targets, {args.frames} frames"
          f" (OPENBLAS_NUM_THREADS={blas})")
    for dim in (128, 512, None):
        median, mean, live = bench(dim, args.targets, args.detections, args.frames)
        mode = f"{dim}-d embeddings" if dim else "IoU-only"
        print(f"  {mode:16s} median {median:.3f} ms  mean {mean:.3f} ms  live tracks {live:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
