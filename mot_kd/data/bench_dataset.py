"""Training-data throughput: JPEG decoding (cv2.imread vs the checked read_image), ms per item (read +
letterbox + augment) and loader images/s by worker count.

    python -m mot_kd.data.bench_dataset [--frames 24] [--width 1920 --height 1080] [--workers 0 2]

Writes a throwaway MOTChallenge sequence of noise JPEGs (the decode cost of real frames) to a temp folder.
"""
from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from mot_kd.data.dataset import DEFAULT_SIZE, MOTSource, MOTTrainDataset, build_loader
from mot_kd.data.images import read_image
from mot_kd.data.mot_files import write_mot_txt, write_seqinfo
from mot_kd.errors import cli_entry


def write_noise_sequence(root: Path, frames: int, width: int, height: int, people: int = 20) -> None:
    rng = np.random.default_rng(0)
    seq = root / "BENCH"
    (seq / "img1").mkdir(parents=True)
    (seq / "gt").mkdir()
    write_seqinfo(seq, "BENCH", frames, 30, width, height)
    small = rng.integers(0, 255, (height // 8, width // 8, 3), dtype=np.uint8)
    for frame in range(1, frames + 1):
        image = cv2.resize(np.roll(small, frame, axis=1), (width, height), interpolation=cv2.INTER_NEAREST)
        cv2.imwrite(str(seq / "img1" / f"{frame:06d}.jpg"), image)
    xy = rng.uniform(0, 0.8, (people, 2)) * (width, height)
    rows = [f"{f},{k + 1},{x + f:.1f},{y:.1f},{width / 20:.1f},{height / 6:.1f},1,1,1\n"
            for f in range(1, frames + 1) for k, (x, y) in enumerate(xy)]
    write_mot_txt(seq / "gt" / "gt.txt", "".join(rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--width", type=int, default=1920)
    parser.add_argument("--height", type=int, default=1080)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        write_noise_sequence(Path(tmp), args.frames, args.width, args.height)
        data = MOTTrainDataset.from_sources([MOTSource(Path(tmp), "full")], size=DEFAULT_SIZE)
        times = {"cv2.imread": [], "read_image": []}  # interleaved, so load from other jobs hits both alike
        for sample in data.samples:
            for label, read in (("cv2.imread", lambda p: cv2.imread(str(p), cv2.IMREAD_COLOR)),
                                ("read_image", read_image)):
                start = time.perf_counter()
                read(sample.image)
                times[label].append(time.perf_counter() - start)
        print(f"decode {args.width}x{args.height} JPEG, median: " + ", ".join(
            f"{label} {np.median(t) * 1000:.2f} ms" for label, t in times.items()) + " (read_image checks truncation)")
        for label, augment in [("plain", None), ("augmented", data.augment)]:
            data.augment = augment
            start = time.perf_counter()
            for index in range(len(data)):
                data[index]
            ms = (time.perf_counter() - start) / len(data) * 1000
            print(f"{args.width}x{args.height} -> {DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]} {label}: {ms:.1f} ms/item")
        for workers in args.workers:
            start = time.perf_counter()
            for _ in build_loader(data, batch_size=4, workers=workers):
                pass
            rate = len(data) / (time.perf_counter() - start)
            print(f"loader, batch 4, {workers} workers: {rate:.0f} images/s (augmented items)")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
