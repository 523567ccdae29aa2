"""Association cost per frame at MOT17-like crowding: ``python -m trackers.bench_speed``.

A generated crowd of ``--targets`` pedestrians walks across a 1920x1080 frame; each frame about
``--detections`` of them are detected (with jitter, low-score and false-positive boxes), so roughly
``--targets`` tracks are alive (tracked + lost). Timed: ``JDETracker.update_arrays`` only (what the runner
calls: Kalman, costs, assignment, bookkeeping, output arrays), after a warm-up that fills the track pool.
Target: <= 1 ms/frame.

Two columns on the same frames: the tracker as shipped (one BLAS thread during ``update``, set by
``trackers.blas``) and with BLAS left at the process default (what numpy does without the limit: several
threads for the small appearance product, which on a loaded machine costs far more than it saves). Run it
from a plain shell: with ``OPENBLAS_NUM_THREADS`` set, the default column is no longer the default.
``--busy N`` keeps N other processes spinning meanwhile, to measure a loaded machine reproducibly.
"""
from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import time

import numpy as np
from threadpoolctl import threadpool_info

from mot_kd.errors import InputError, cli_entry
from trackers.jde_tracker import JDETracker


def crowd(frames: int, targets: int, detections: int, dim: int | None, seed: int = 0, truth: list | None = None):
    """Yield (boxes, scores, embeddings) per frame for a crowd walking on straight lines, bouncing at borders.

    ``truth``: a list to append each frame's true ``(ids (T,), xyxy (T, 4))`` to (for scoring trackers on it).
    """
    rng = np.random.default_rng(seed)
    size = np.stack([rng.uniform(30, 80, targets), rng.uniform(80, 220, targets)], 1)  # w, h
    pos = rng.uniform([0, 0], [1920, 1080], (targets, 2))
    vel = rng.normal(0, 3, (targets, 2))
    ident = rng.normal(size=(targets, dim or 1))
    for _ in range(frames):
        pos += vel
        vel[(pos[:, 0] < 0) | (pos[:, 0] > 1920), 0] *= -1
        vel[(pos[:, 1] < 0) | (pos[:, 1] > 1080), 1] *= -1
        if truth is not None:
            truth.append((np.arange(1, targets + 1), np.concatenate([pos - size / 2, pos + size / 2], 1)))
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


def bench(dim: int | None, targets: int, detections: int, frames: int, warmup: int = 30,
          blas_threads: int | None = 1) -> tuple[float, float, float]:
    """Return (median ms/frame, mean ms/frame, mean live tracks) over ``frames`` timed frames."""
    tracker = JDETracker({"use_embeddings": dim is not None}, blas_threads=blas_threads)
    times, live = [], []
    for i, (boxes, scores, emb) in enumerate(crowd(warmup + frames, targets, detections, dim)):
        start = time.perf_counter()
        tracker.update_arrays(boxes, scores, emb)
        if i >= warmup:
            times.append(time.perf_counter() - start)
            live.append(len(tracker.pool))
    return 1e3 * float(np.median(times)), 1e3 * float(np.mean(times)), float(np.mean(live))


def _spin() -> None:
    while True:
        pass


@contextlib.contextmanager
def busy(processes: int):
    """``processes`` CPU-bound processes running for the duration of the block (a loaded machine)."""
    workers = [multiprocessing.get_context("spawn").Process(target=_spin, daemon=True) for _ in range(processes)]
    for w in workers:
        w.start()
    try:
        yield
    finally:
        for w in workers:
            w.terminate()
            w.join()


def machine() -> str:
    """CPU model, cores, BLAS library and its default thread count, for the header line."""
    cpu = platform.processor() or "unknown CPU"
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            cpu = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), cpu)
    blas = [f"{i['internal_api']} {i['num_threads']} threads" for i in threadpool_info() if i["user_api"] == "blas"]
    return f"{cpu}, {os.cpu_count()} cores, BLAS default: {', '.join(blas) or 'none found'}"


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=60, help="pedestrians in the scene (~ live tracks)")
    parser.add_argument("--detections", type=int, default=50, help="detections per frame")
    parser.add_argument("--frames", type=int, default=300, help="timed frames per setting")
    parser.add_argument("--busy", type=int, default=0, help="other CPU-bound processes while timing (load)")
    args = parser.parse_args(argv)
    if args.busy < 0:
        raise InputError(f"--busy: must be >= 0, got {args.busy}")
    env = os.environ.get("OPENBLAS_NUM_THREADS")
    print(f"association ms/frame, {args.detections} detections/frame, {args.targets} targets, {args.frames} frames;"
          f" {machine()}" + (f"; {args.busy} busy processes" if args.busy else "")
          + (f"; OPENBLAS_NUM_THREADS={env} is set, so 'default' is not the default" if env else ""))
    print(f"  {'mode':16s} {'shipped (1 BLAS thread)':>28s} {'BLAS default':>28s} {'ratio':>6s}  live tracks")
    with busy(args.busy):
        for dim in (128, 512, None):
            pinned, pinned_mean, live = bench(dim, args.targets, args.detections, args.frames, blas_threads=1)
            default, default_mean, _ = bench(dim, args.targets, args.detections, args.frames, blas_threads=None)
            mode = f"{dim}-d embeddings" if dim else "IoU-only"
            print(f"  {mode:16s} median {pinned:7.3f} mean {pinned_mean:7.3f} ms  median {default:7.3f} mean "
                  f"{default_mean:7.3f} ms {default / pinned:5.1f}x  {live:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
