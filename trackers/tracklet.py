"""Track state for the whole crowd as arrays (one row per track), and ``Track``, the per-track view callers see.

ByteTrack's STrack keeps one Python object per target and loops over them; here the tracker's state is a
``TrackPool`` of stacked arrays (Kalman means/covariances, smoothed features, ids, lifecycle), so predicting,
updating and boxing 60 tracks are a handful of numpy calls. Arrays are replaced, never written in place,
so a ``Track`` handed out earlier (views into the arrays of its frame) stays a consistent snapshot.
"""
from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum

import numpy as np

from trackers.detections import Detections
from trackers.kalman import KalmanFilter


class TrackState(IntEnum):
    NEW = 0  # created from one detection; confirmed only if matched on the next frame
    TRACKED = 1
    LOST = 2  # unmatched; kept for re-identification up to the lost-track buffer
    REMOVED = 3


_TRACKED = int(TrackState.TRACKED)


@dataclass(eq=False)
class Track:
    """One track as of the frame it was read (a snapshot)."""

    track_id: int
    mean: np.ndarray  # (8,) Kalman state: box (cx, cy, w|a, h) and its velocities, see trackers.kalman
    covariance: np.ndarray  # (8, 8)
    score: float
    feature: np.ndarray | None  # smoothed unit appearance embedding (D,), None in IoU-only mode
    start_frame: int
    frame_id: int  # last frame this track was matched
    state: TrackState
    tlwh: np.ndarray  # (4,) the box to report: x, y (top left), w, h

    @property
    def duration(self) -> int:
        return self.frame_id - self.start_frame


class TrackPool:
    """All live tracks, row i = one track, rows in creation order (which fixes assignment tie-breaks)."""

    def __init__(self, kf: KalmanFilter):
        self.kf = kf
        self.ids = np.zeros(0, dtype=np.int64)
        self.mean = np.zeros((0, 8))
        self.cov = np.zeros((0, 8, 8))
        self.score = np.zeros(0)
        self.feature: np.ndarray | None = None  # (T, D) float32 once the first appearance track exists
        self.start = np.zeros(0, dtype=np.int64)
        self.last = np.zeros(0, dtype=np.int64)  # frame of the last match
        self.state = np.zeros(0, dtype=np.int8)

    def __len__(self) -> int:
        return len(self.ids)

    def rows(self, *states: TrackState) -> np.ndarray:
        """Row indices of tracks in any of ``states``, in pool order."""
        mask = self.state == states[0]
        for state in states[1:]:
            mask |= self.state == state
        return np.flatnonzero(mask)

    def xyxy(self, rows: np.ndarray) -> np.ndarray:
        return self.kf.to_xyxy(self.mean[rows])

    def predict(self) -> None:
        """Advance all tracks one frame; non-tracked ones stop growing/shrinking (size velocity 0, as ByteTrack)."""
        if not len(self):
            return
        mean = self.mean.copy()
        mean[np.ix_(self.state != _TRACKED, self.kf.size_velocity)] = 0.0
        self.mean, self.cov = self.kf.predict(mean, self.cov)

    def update(self, rows: np.ndarray, dets: Detections, frame_id: int, alpha: float) -> None:
        """Correct track ``rows[i]`` with detection ``i`` (Kalman update, feature EMA) and mark them tracked."""
        if not len(rows):
            return
        mean, cov = self.kf.update(self.mean[rows], self.cov[rows], self.kf.measure(dets.xyxy))
        self.mean, self.cov = self.mean.copy(), self.cov.copy()
        self.mean[rows], self.cov[rows] = mean, cov
        self.score, self.last, self.state = self.score.copy(), self.last.copy(), self.state.copy()
        self.score[rows], self.last[rows], self.state[rows] = dets.scores, frame_id, _TRACKED
        if dets.embeddings is not None:
            smoothed = alpha * self.feature[rows] + (1 - alpha) * dets.embeddings
            self.feature = self.feature.copy()
            self.feature[rows] = smoothed / np.linalg.norm(smoothed, axis=1, keepdims=True)

    def add(self, dets: Detections, first_id: int, frame_id: int, state: TrackState) -> None:
        """One new track per detection, ids first_id, first_id + 1, ..."""
        if not len(dets):
            return
        mean, cov = self.kf.initiate(self.kf.measure(dets.xyxy))
        n = len(dets)
        self.ids = np.concatenate([self.ids, np.arange(first_id, first_id + n)])
        self.mean, self.cov = np.concatenate([self.mean, mean]), np.concatenate([self.cov, cov])
        self.score = np.concatenate([self.score, dets.scores])
        if dets.embeddings is not None:
            old = self.feature if self.feature is not None else np.zeros((0, dets.embeddings.shape[1]), np.float32)
            self.feature = np.concatenate([old, dets.embeddings])
        self.start = np.concatenate([self.start, np.full(n, frame_id)])
        self.last = np.concatenate([self.last, np.full(n, frame_id)])
        self.state = np.concatenate([self.state, np.full(n, state, dtype=np.int8)])

    def set_state(self, rows: np.ndarray, state: TrackState) -> None:
        if len(rows):
            self.state = self.state.copy()
            self.state[rows] = state

    def keep(self, mask: np.ndarray) -> None:
        """Drop the rows where ``mask`` is False."""
        if mask.all():
            return
        self.ids, self.mean, self.cov, self.score = self.ids[mask], self.mean[mask], self.cov[mask], self.score[mask]
        self.start, self.last, self.state = self.start[mask], self.last[mask], self.state[mask]
        if self.feature is not None:
            self.feature = self.feature[mask]

    def boxes(self, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids (K,), tlwh (K, 4), scores (K,)) of ``rows``: the result-file columns, no Track objects."""
        xyxy = self.xyxy(rows)
        return self.ids[rows], np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], axis=1), self.score[rows]

    def tracks(self, rows: np.ndarray) -> list[Track]:
        """Snapshots of ``rows``."""
        _, tlwh, _ = self.boxes(rows)
        return [Track(int(self.ids[i]), self.mean[i], self.cov[i], float(self.score[i]),
                      None if self.feature is None else self.feature[i], int(self.start[i]), int(self.last[i]),
                      TrackState(int(self.state[i])), box) for i, box in zip(rows, tlwh)]
