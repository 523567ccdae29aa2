"""Run any ``detect(frame) -> (boxes, scores, embeddings)`` over a sequence folder or video and write MOT results.

The model-specific CLI only has to build ``detect``; reading frames, tracking, timing, the result file
(written atomically, original frame numbers) and the optional rendering all live here.
"""
from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Callable

import numpy as np
from loguru import logger
from tqdm import tqdm

from mot_kd.data.mot_files import format_result_rows, write_mot_txt
from mot_kd.errors import InputError
from trackers.frames import open_source
from trackers.jde_tracker import JDETracker
from trackers.tracklet import Track
from trackers.visualize import TrackRenderer

#: detect(BGR image (H, W, 3) uint8) -> boxes (N, 4) xyxy pixels, scores (N,), embeddings (N, D) or None
Detector = Callable[[np.ndarray], tuple]


def track_arrays(tracks: list[Track]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ids (K,), tlwh (K, 4), scores (K,)) of a frame's output tracks."""
    tlwh = np.array([t.tlwh for t in tracks], dtype=float).reshape(-1, 4)
    return np.array([t.track_id for t in tracks], dtype=np.int64), tlwh, np.array([t.score for t in tracks])


def _unpack(output, frame: int) -> tuple:
    if not isinstance(output, (tuple, list)) or len(output) != 3:
        raise InputError(f"detect(): frame {frame}: expected (boxes, scores, embeddings), got {type(output).__name__}"
                         + (f" of length {len(output)}" if isinstance(output, (tuple, list)) else ""))
    return tuple(output)


def run_sequence(detect: Detector, source: str | Path, out_path: str | Path, tracker_cfg=None,
                 save_video: str | Path | None = None, frame_range: tuple[int, int] | None = None) -> dict:
    """Track ``source`` (sequence folder or video) with ``detect``; write ``out_path``; return a summary.

    ``frame_range`` (inclusive, e.g. ``split_range(seq_length, 'val_half')``) restricts the frames; rows keep
    the original frame numbers. ``save_video`` (.mp4/.avi or a folder for PNGs) also renders the tracks.
    Summary times: ``detect_s`` (the callable) and ``associate_s`` (the tracker) exclude image decoding;
    ``fps`` = frames / (detect_s + associate_s).
    """
    src = open_source(source, frame_range)
    tracker = JDETracker(tracker_cfg, frame_rate=src.frame_rate)
    chunks, seen_ids, detect_s, associate_s, n_dets, frames = [], set(), 0.0, 0.0, 0, 0
    renderer = TrackRenderer(save_video, src.frame_rate) if save_video else contextlib.nullcontext()
    with renderer:
        for frame, image in tqdm(src, total=src.num_frames, desc=f"track {src.name}", leave=False):
            start = time.perf_counter()
            boxes, scores, embeddings = _unpack(detect(image), frame)
            mid = time.perf_counter()
            try:
                ids, tlwh, track_scores = tracker.update_arrays(boxes, scores, embeddings)
            except InputError as exc:
                raise InputError(f"{src.name} frame {frame}: {exc}") from None
            associate_s += time.perf_counter() - mid
            detect_s += mid - start
            frames += 1
            n_dets += int(np.size(scores))
            seen_ids.update(ids.tolist())
            chunks.append(format_result_rows(np.full(len(ids), frame), ids, tlwh, track_scores))
            if save_video:
                renderer.write(image, ids, tlwh, frame)
    text = "".join(chunks)
    write_mot_txt(out_path, text)
    total = detect_s + associate_s
    summary = {
        "sequence": src.name, "frames": frames, "detections": n_dets, "rows": text.count("\n"),
        "tracks": len(seen_ids), "detect_s": detect_s, "associate_s": associate_s,
        "fps": frames / total if total > 0 else 0.0, "result": str(out_path),
        "video": str(save_video) if save_video else None,
    }
    logger.info(f"{src.name}: {frames} frames, {summary['rows']} rows, {summary['tracks']} tracks, "
                f"{1e3 * associate_s / max(frames, 1):.2f} ms/frame association, {summary['fps']:.1f} FPS "
                f"-> {out_path}")
    return summary
