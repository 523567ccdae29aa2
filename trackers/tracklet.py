"""Per-target track state (ByteTrack's STrack) and the batched operations the tracker applies to many at once.

A track owns its Kalman mean/covariance, its smoothed appearance feature and its lifecycle
(new -> tracked -> lost -> removed). Numeric work is done on stacks of tracks (``predict_tracks``,
``update_tracks``) so one frame costs a few numpy calls whatever the crowd size.
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


@dataclass(eq=False)
class Track:
    track_id: int
    mean: np.ndarray  # (8,) Kalman state: cx, cy, w/h, h and their velocities
    covariance: np.ndarray  # (8, 8)
    score: float
    feature: np.ndarray | None  # smoothed unit appearance embedding (D,), None in IoU-only mode
    start_frame: int
    frame_id: int  # last frame this track was matched
    state: TrackState = TrackState.NEW

    @property
    def tlwh(self) -> np.ndarray:
        w = self.mean[2] * self.mean[3]
        return np.array([self.mean[0] - w / 2, self.mean[1] - self.mean[3] / 2, w, self.mean[3]])

    @property
    def duration(self) -> int:
        return self.frame_id - self.start_frame


def tracks_xyxy(tracks: list[Track]) -> np.ndarray:
    """Current boxes (T, 4) xyxy from the Kalman means."""
    if not tracks:
        return np.zeros((0, 4))
    mean = np.array([t.mean for t in tracks])
    half = mean[:, 2:4] / 2
    half[:, 0] *= mean[:, 3]  # w = aspect * h
    return np.concatenate([mean[:, :2] - half, mean[:, :2] + half], axis=1)


def stack_states(tracks: list[Track]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([t.mean for t in tracks]), np.array([t.covariance for t in tracks])


def predict_tracks(tracks: list[Track], kf: KalmanFilter) -> None:
    """Advance all tracks one frame; non-tracked ones stop growing/shrinking (h velocity 0, as ByteTrack)."""
    if not tracks:
        return
    mean, cov = stack_states(tracks)
    mean[:, 7] *= np.array([t.state == TrackState.TRACKED for t in tracks])
    mean, cov = kf.predict(mean, cov)
    for track, m, c in zip(tracks, mean, cov):
        track.mean, track.covariance = m, c


def new_tracks(dets: Detections, kf: KalmanFilter, first_id: int, frame_id: int) -> list[Track]:
    """Start one track per detection; tracks born on the very first frame are confirmed at once."""
    mean, cov = kf.initiate(dets.xyah)
    feats = dets.embeddings if dets.embeddings is not None else [None] * len(dets)
    state = TrackState.TRACKED if frame_id == 1 else TrackState.NEW
    return [Track(first_id + i, m, c, float(s), f, frame_id, frame_id, state)
            for i, (m, c, s, f) in enumerate(zip(mean, cov, dets.scores, feats))]


def update_tracks(tracks: list[Track], dets: Detections, kf: KalmanFilter, frame_id: int, alpha: float) -> None:
    """Correct ``tracks[i]`` with detection ``i`` (Kalman update, feature EMA) and mark them tracked."""
    if not tracks:
        return
    mean, cov = kf.update(*stack_states(tracks), dets.xyah)
    feats = [None] * len(tracks)
    if dets.embeddings is not None:
        smoothed = alpha * np.array([t.feature for t in tracks]) + (1 - alpha) * dets.embeddings
        feats = smoothed / np.linalg.norm(smoothed, axis=1, keepdims=True)
    for track, m, c, s, f in zip(tracks, mean, cov, dets.scores, feats):
        track.mean, track.covariance, track.score, track.feature = m, c, float(s), f
        track.frame_id, track.state = frame_id, TrackState.TRACKED
