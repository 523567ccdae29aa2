"""One frame's detections, validated once at the tracker's door.

Bad arrays (NaN, negative sizes, mismatched lengths, wrong embedding width) raise InputError here with the
argument named, instead of surfacing later as a silent wrong match or a cryptic numpy error.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mot_kd.errors import InputError


def _as_array(value, name: str, ndim: int, dtype=np.float64) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{name}: not a numeric array ({exc})") from None
    if array.size == 0:
        array = array.reshape((0,) + array.shape[1:] if array.ndim == ndim else (0,) * ndim)
    if array.ndim != ndim:
        raise InputError(f"{name}: expected a {ndim}-D array, got shape {array.shape}")
    return array


@dataclass(frozen=True)
class Detections:
    """Boxes (N, 4) xyxy in image pixels, scores (N,), unit float32 embeddings (N, D) or None."""

    xyxy: np.ndarray
    scores: np.ndarray
    embeddings: np.ndarray | None

    @classmethod
    def validate(cls, boxes, scores, embeddings=None, dim: int | None = None) -> "Detections":
        """Check and normalise raw detector output; ``dim`` is the embedding width the tracker expects."""
        boxes = _as_array(boxes, "boxes", 2)
        scores = _as_array(scores, "scores", 1)
        if boxes.shape[1:] != (4,) and len(boxes):
            raise InputError(f"boxes: expected shape (N, 4) xyxy, got {boxes.shape}")
        boxes = boxes.reshape(-1, 4)
        if len(boxes) != len(scores):
            raise InputError(f"boxes/scores: lengths differ ({len(boxes)} boxes, {len(scores)} scores)")
        if not np.isfinite(boxes).all():
            raise InputError(f"boxes: NaN or infinite value in box {int(np.argmax(~np.isfinite(boxes).all(1)))}")
        if not np.isfinite(scores).all():
            raise InputError(f"scores: NaN or infinite value at index {int(np.argmax(~np.isfinite(scores)))}")
        bad = (boxes[:, 2] < boxes[:, 0]) | (boxes[:, 3] < boxes[:, 1])
        if bad.any():
            i = int(np.argmax(bad))
            raise InputError(f"boxes: negative width or height in box {i} (xyxy {boxes[i].tolist()})")
        if embeddings is not None:
            embeddings = cls._check_embeddings(embeddings, len(boxes), dim)
        return cls(boxes, scores, embeddings)

    @staticmethod
    def _check_embeddings(embeddings, n: int, dim: int | None) -> np.ndarray:
        """Unit float32 rows: cosine distances need no more precision, and half the bytes halve the cost."""
        emb = _as_array(embeddings, "embeddings", 2, np.float32)
        if len(emb) != n:
            raise InputError(f"embeddings: {len(emb)} rows for {n} boxes")
        if dim is not None and n and emb.shape[1] != dim:
            raise InputError(f"embeddings: dimension {emb.shape[1]}, but this tracker was started with {dim}")
        norms = np.sqrt(np.einsum("ij,ij->i", emb, emb, dtype=np.float64))  # NaN/inf in a row -> its norm
        if not np.isfinite(norms).all():
            raise InputError(f"embeddings: NaN or infinite value in row {int(np.argmax(~np.isfinite(norms)))}")
        if n and (norms <= 1e-12).any():
            raise InputError(f"embeddings: zero vector in row {int(np.argmax(norms <= 1e-12))}")
        return emb * (1.0 / norms).astype(np.float32)[:, None]  # cosine distance assumes unit vectors

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, index: np.ndarray) -> "Detections":
        emb = None if self.embeddings is None else self.embeddings[index]
        return Detections(self.xyxy[index], self.scores[index], emb)
