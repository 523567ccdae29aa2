"""Synthetic MOTChallenge data: the built-in dataset of the demo, the tests and the benchmark.

``python -m mot_kd.data.synthetic --out DIR --seqs N --frames F --width W --height H --seed S`` writes
``DIR/<PREFIX>-01 ...`` each with ``img1/000001.jpg ...``, ``gt/gt.txt`` (MOT17's 9 columns
``frame,id,x,y,w,h,consider,class,visibility``), ``seqinfo.ini`` and ``synthetic.json`` (who is who:
appearances, which identities are look-alikes and what tells them apart).

Scenes: a brick wall with windows and posters over a tiled floor in perspective, a puddle, static clutter
(benches, bins, lamps, planters, bollards), walking articulated people identified only by appearance
(with deliberate look-alike pairs), a standing person (class 7) and puddle reflections (class 12).
Sequence ``i`` draws from ``numpy.random.default_rng([seed, i])``: same seed, same bytes; another seed,
other people. Boxes are 0-based full-image pixels and may extend past the image border (as in MOT17).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np
from loguru import logger
from tqdm import tqdm

from mot_kd.data.mot_files import write_seqinfo
from mot_kd.data.synthetic_render import Scene, SceneConfig
from mot_kd.errors import InputError, cli_entry
from mot_kd.utils.io import atomic_dir

_PREFIX = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")


def _check_seed(seed: int) -> None:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be an integer >= 0, got {seed!r}")


def _write_sequence(folder: Path, name: str, config: SceneConfig, seed: int, index: int,
                    bar: tqdm | None = None) -> None:
    """Render sequence ``index`` of ``seed`` into ``folder`` (which the caller makes atomic)."""
    rng = np.random.default_rng([seed, index])
    scene = Scene(rng, config)
    (folder / "img1").mkdir(parents=True)
    (folder / "gt").mkdir()
    rows = []
    params = [cv2.IMWRITE_JPEG_QUALITY, config.quality]
    for frame in range(1, config.frames + 1):
        image, frame_rows = scene.render(frame)
        ok, data = cv2.imencode(".jpg", image, params)
        if not ok:
            raise OSError(f"{folder}: JPEG encoding failed at frame {frame}")
        (folder / "img1" / f"{frame:06d}.jpg").write_bytes(data.tobytes())
        rows.extend(frame_rows)
        if bar is not None:
            bar.update()
    rows.sort(key=lambda r: (r[1], r[0]))  # MOT17 order: by identity, then frame
    (folder / "gt" / "gt.txt").write_text("".join(
        f"{f},{i},{x},{y},{w},{h},{c},{k},{v:.5f}\n" for f, i, x, y, w, h, c, k, v in rows))
    write_seqinfo(folder, name, config.frames, config.fps, config.width, config.height)
    identities = {str(k): {key: (asdict(val) if key == "appearance" else val) for key, val in record.items()}
                  for k, record in scene.identities.records.items()}
    meta = {"generator": "mot_kd.data.synthetic", "seed": seed, "index": index, "config": asdict(config),
            "identities": identities}
    (folder / "synthetic.json").write_text(json.dumps(meta, indent=1, sort_keys=True) + "\n")


def generate_sequence(seq_dir: str | Path, config: SceneConfig = SceneConfig(), seed: int = 0, index: int = 1,
                      name: str | None = None) -> Path:
    """Write one sequence atomically to ``seq_dir`` (replacing it); sequence ``index`` of ``seed``."""
    config.validate()
    _check_seed(seed)
    seq_dir = Path(seq_dir)
    if seq_dir.exists() and not seq_dir.is_dir():
        raise InputError(f"{seq_dir}: exists and is not a folder")
    with atomic_dir(seq_dir) as tmp:
        _write_sequence(tmp, name or seq_dir.name, config, seed, index)
    return seq_dir


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    """A temp folder whose sequences land in ``out`` only if everything succeeds.

    A new ``out`` is created by renaming the temp folder; into an existing ``out`` each finished sequence
    replaces its namesake, and anything else already there is left alone.
    """
    if not out.exists():
        with atomic_dir(out) as tmp:
            yield tmp
        return
    stage = Path(tempfile.mkdtemp(prefix=".synthetic-", suffix=".tmp", dir=out))
    try:
        yield stage
        for seq in sorted(stage.iterdir()):
            target = out / seq.name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
            os.replace(seq, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def generate_dataset(out: str | Path, seqs: int, frames: int, width: int, height: int, seed: int = 0, *,
                     prefix: str = "SYN", progress: bool = True, **scene) -> list[Path]:
    """Write ``seqs`` sequences ``<prefix>-01 ...`` under ``out``; returns their folders.

    ``scene`` takes the other :class:`SceneConfig` fields (fps, people, lookalike, clutter, static_people,
    reflections, jitter, quality). Use different seeds for training and validation sets: they share no
    people. Nothing is left in ``out`` unless every sequence was written.
    """
    unknown = set(scene) - set(SceneConfig.__dataclass_fields__)
    if unknown:
        raise InputError(f"unknown scene option(s): {', '.join(sorted(unknown))}")
    config = SceneConfig(width=width, height=height, frames=frames, **scene)
    config.validate()
    _check_seed(seed)
    if isinstance(seqs, bool) or not isinstance(seqs, (int, np.integer)) or seqs <= 0:
        raise InputError(f"seqs must be a positive integer, got {seqs!r}")
    if not _PREFIX.match(prefix):
        raise InputError(f"prefix {prefix!r} must be letters, digits, '_' or '.' (sequence names are PREFIX-01...)")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise InputError(f"{out}: output exists and is not a folder")
    names = [f"{prefix}-{i:02d}" for i in range(1, seqs + 1)]
    start = time.perf_counter()
    with tqdm(total=seqs * frames, desc="synthetic frames", unit="frame", disable=not progress) as bar, \
            _staging(out) as stage:
        for index, name in enumerate(names, 1):
            _write_sequence(stage / name, name, config, seed, index, bar)
    seconds = time.perf_counter() - start
    logger.info(f"synthetic: {seqs} sequence(s) x {frames} frames at {width}x{height} in {seconds:.1f} s "
                f"({seqs * frames / seconds:.1f} frames/s) -> {out}")
    return [out / name for name in names]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mot_kd.data.synthetic", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="dataset folder (created or updated)")
    parser.add_argument("--seqs", type=int, default=4)
    parser.add_argument("--frames", type=int, default=150)
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=384)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument("--people", type=int, default=SceneConfig.people, help="pedestrians kept in view")
    parser.add_argument("--lookalike", type=float, default=SceneConfig.lookalike,
                        help="chance a new person is a near-copy of one in view (0..1)")
    parser.add_argument("--clutter", type=int, default=SceneConfig.clutter, help="static occluding objects")
    parser.add_argument("--static-people", type=int, default=SceneConfig.static_people,
                        help="standing people (class 7)")
    parser.add_argument("--no-reflections", action="store_true", help="no puddle reflections (class 12)")
    parser.add_argument("--jitter", action="store_true", help="camera pan and shake")
    parser.add_argument("--quality", type=int, default=SceneConfig.quality, help="JPEG quality 1..100")
    parser.add_argument("--prefix", default="SYN", help="sequence names PREFIX-01, PREFIX-02, ...")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    generate_dataset(args.out, args.seqs, args.frames, args.width, args.height, args.seed, prefix=args.prefix,
                     progress=not args.quiet, fps=args.fps, people=args.people, lookalike=args.lookalike,
                     clutter=args.clutter, static_people=args.static_people, reflections=not args.no_reflections,
                     jitter=args.jitter, quality=args.quality)
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
