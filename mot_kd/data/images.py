"""Reading image files: the one reader of training, tracking and evaluation, so a damaged frame is an error
everywhere instead of a silently different image.

Why not plain ``cv2.imread``: for a JPEG cut short (an interrupted copy, download or unzip) OpenCV prints
"Premature end of JPEG file" and returns what it decoded, grey below the cut, and training or tracking goes
on with it. A complete JPEG has its end-of-image marker (FF D9) after the start of its last scan (FF DA);
inside compressed data an FF byte is always followed by 00 or a restart marker, so image bytes cannot fake
it. The check costs next to nothing when the file ends with the marker, as nearly all do (a byte search
otherwise); ``python -m mot_kd.data.bench_dataset`` compares it with ``cv2.imread`` (docs/data.md).
Corruption that keeps the file length (flipped bits) is not detected. A truncated PNG already fails to decode.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mot_kd.errors import InputError

_JPEG_START, _JPEG_SCAN, _JPEG_END = b"\xff\xd8", b"\xff\xda", b"\xff\xd9"


def jpeg_complete(data: bytes) -> bool:
    """Whether JPEG bytes end their last scan with the end-of-image marker."""
    if data.endswith(_JPEG_END):  # almost every file: O(1); the search below is ~2 ms for 0.5 MB
        return True
    scan = data.rfind(_JPEG_SCAN)
    return scan >= 0 and data.find(_JPEG_END, scan + 2) >= 0


def read_image(path: str | Path) -> np.ndarray:
    """BGR uint8 image of ``path``; InputError naming the file when it is missing, not an image or truncated."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: missing or unreadable image (no such file)") from None
    except OSError as exc:
        raise InputError(f"{path}: missing or unreadable image ({exc.strerror or type(exc).__name__})") from None
    if data.startswith(_JPEG_START) and not jpeg_complete(data):
        raise InputError(f"{path}: truncated JPEG (the file ends before its end-of-image marker, so only part of the "
                         "picture would decode): copy or extract it again")
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    if image is None:
        raise InputError(f"{path}: missing or unreadable image (empty, damaged or not an image)")
    return image
