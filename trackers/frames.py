"""Frames from a MOTChallenge sequence folder or a video file, numbered as in the result file (from 1).

Both the runner and the renderer read frames this way, so a ``frame_range`` (e.g. a val_half) yields the
original frame numbers and the frame rate comes from seqinfo.ini or the video container (30 if it has
none).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from mot_kd.data.images import read_image
from mot_kd.data.motchallenge import Sequence, load_sequence
from mot_kd.errors import InputError


@dataclass(frozen=True)
class FrameSource:
    """Where frames come from; iterate to get ``(frame_number, BGR image)``."""

    name: str
    path: Path
    frame_rate: float
    first: int
    last: int | None  # inclusive; None: until the video ends
    sequence: Sequence | None = None  # set for sequence folders, None for videos

    def __iter__(self) -> Iterator[tuple[int, np.ndarray]]:
        return self._images() if self.sequence is not None else self._video()

    @property
    def num_frames(self) -> int | None:
        return None if self.last is None else self.last - self.first + 1

    def _images(self) -> Iterator[tuple[int, np.ndarray]]:
        for frame in range(self.first, self.last + 1):
            yield frame, read_image(self.sequence.image_path(frame))  # truncated JPEGs too: an error naming the file

    def _video(self) -> Iterator[tuple[int, np.ndarray]]:
        capture = cv2.VideoCapture(str(self.path))
        try:
            frame = 0
            while self.last is None or frame < self.last:
                ok, image = capture.read()
                if not ok:
                    if self.last is not None:
                        raise InputError(f"{self.path}: video ends at frame {frame}, before frame {self.last}")
                    return
                frame += 1
                if frame >= self.first:
                    yield frame, image
        finally:
            capture.release()


def _check_range(frame_range, length: int | None, source: Path) -> tuple[int, int | None]:
    if frame_range is None:
        return 1, length
    try:
        first, last = (int(v) for v in frame_range)
    except (TypeError, ValueError):
        raise InputError(f"frame_range: expected (first, last) frame numbers, got {frame_range!r}") from None
    if not 1 <= first <= last or (length is not None and last > length):
        raise InputError(f"frame_range: ({first}, {last}) outside 1..{length or 'end'} of {source}")
    return first, last


def open_source(source: str | Path, frame_range: tuple[int, int] | None = None) -> FrameSource:
    """A sequence folder (with seqinfo.ini) or a video file; ``frame_range`` is inclusive, 1-based."""
    source = Path(source)
    if source.is_dir():
        seq = load_sequence(source)
        first, last = _check_range(frame_range, seq.seq_length, source)
        return FrameSource(seq.name, source, float(seq.frame_rate), first, last, seq)
    if not source.is_file():
        raise InputError(f"{source}: no such sequence folder or video file")
    capture = cv2.VideoCapture(str(source))
    try:
        if not capture.isOpened():
            raise InputError(f"{source}: not a readable video (and not a sequence folder with seqinfo.ini)")
        fps = capture.get(cv2.CAP_PROP_FPS)
    finally:
        capture.release()
    first, last = _check_range(frame_range, None, source)
    return FrameSource(source.stem, source, float(fps) if fps and np.isfinite(fps) and fps > 0 else 30.0,
                       first, last)
