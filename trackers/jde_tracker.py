"""The online association state machine: appearance + IoU/motion matching, then ByteTrack's low-score pass.

Per frame: (1) high detections vs tracked + lost tracks by appearance fused with IoU (BoT-SORT, default) or
with Kalman motion (JDE/FairMOT, ``jde.yaml``), by IoU alone in IoU-only mode; (2) leftover high detections
vs leftover tracked tracks by IoU; (3) low detections vs still-unmatched tracked tracks by IoU; unconfirmed
tracks by IoU or removed; new tracks from leftover high detections; expired lost tracks and tracked/lost
duplicates removed. Thresholds: ``configs/tracker/default.yaml``. Each update runs with one BLAS thread
(``trackers.blas``): fast from any shell, no environment variable needed.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mot_kd.errors import InputError
from trackers.blas import BlasLimit
from trackers.config import load_tracker_config
from trackers.detections import Detections
from trackers.kalman import KalmanFilter
from trackers.matching import embedding_distance, fuse_iou, fuse_motion, iou_distance, linear_assignment
from trackers.tracklet import Track, TrackPool, TrackState

# plain ints: compared with the pool's int8 state array every frame (enum attribute lookups cost more)
TRACKED, LOST, NEW, REMOVED = (int(state) for state in (TrackState.TRACKED, TrackState.LOST, TrackState.NEW,
                                                         TrackState.REMOVED))


class JDETracker:
    """``update(boxes, scores, embeddings)`` once per frame -> the tracks to report for that frame.

    ``blas_threads``: BLAS thread limit during ``update`` (1: fastest for these small products; None: keep
    the process setting, as benchmarks do to measure the difference).
    """

    def __init__(self, cfg: str | Path | dict | None = None, frame_rate: float = 30, blas_threads: int | None = 1):
        if not frame_rate > 0:
            raise InputError(f"frame_rate: must be positive, got {frame_rate}")
        if blas_threads is not None and (isinstance(blas_threads, bool) or not isinstance(blas_threads, int)
                                         or blas_threads < 1):
            raise InputError(f"blas_threads: must be a positive integer or None, got {blas_threads!r}")
        self.blas = BlasLimit(blas_threads)
        self.cfg = load_tracker_config(cfg)
        self.max_time_lost = int(frame_rate / 30.0 * self.cfg["track_buffer"])
        self.kf = KalmanFilter(self.cfg["kalman_box"])
        self.reset()

    def reset(self) -> None:
        """Forget all tracks and the embedding mode; ids start again at 1 (call between sequences)."""
        self.pool = TrackPool(self.kf)
        self.frame_id = 0
        self.next_id = 1
        self.embedding_dim: int | None = None  # fixed by the first frame with detections
        self.appearance: bool | None = None

    @property
    def tracks(self) -> list[Track]:
        """Every live track (new, tracked, lost) as a snapshot, in creation order."""
        return self.pool.tracks(np.arange(len(self.pool)))

    def update(self, boxes, scores, embeddings=None) -> list[Track]:
        """One frame -> the tracks to report (snapshots)."""
        with self.blas.limit():
            return self.pool.tracks(self._update(boxes, scores, embeddings))

    def update_arrays(self, boxes, scores, embeddings=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Same as ``update``, returning ``(ids, tlwh, scores)`` arrays instead of ``Track`` objects (runner path)."""
        with self.blas.limit():
            return self.pool.boxes(self._update(boxes, scores, embeddings))

    def _update(self, boxes, scores, embeddings) -> np.ndarray:
        """One frame; returns the pool rows to report."""
        dets = self._validate(boxes, scores, embeddings)
        cfg, pool, self.frame_id = self.cfg, self.pool, self.frame_id + 1
        pool.predict()
        candidates, unconfirmed = pool.rows(TRACKED, LOST), pool.rows(NEW)
        high = dets.select(np.flatnonzero(dets.scores >= cfg["det_thresh"]))
        low = dets.select(np.flatnonzero((dets.scores >= cfg["low_thresh"]) & (dets.scores < cfg["det_thresh"])))

        if self.appearance:  # stage 1: appearance fused with IoU or motion; stage 2: IoU on what is left
            thresh = cfg["iou_fusion_match_thresh" if cfg["appearance_fusion"] == "iou" else "appearance_match_thresh"]
            left, high = self._match(candidates, high, self._appearance_cost, thresh)
            tracked = left[pool.state[left] == TRACKED]
            tracked, high = self._match(tracked, high, self._iou, cfg["iou_match_thresh"])
        else:  # stage 1 by IoU only
            left, high = self._match(candidates, high, self._iou, cfg["iou_only_match_thresh"])
            tracked = left[pool.state[left] == TRACKED]
        tracked, _ = self._match(tracked, low, self._iou, cfg["low_match_thresh"])  # stage 3
        pool.set_state(tracked, LOST)
        unconfirmed, high = self._match(unconfirmed, high, self._iou, cfg["unconfirmed_match_thresh"])
        pool.set_state(unconfirmed, REMOVED)
        high = high.select(np.flatnonzero(high.scores >= cfg["new_track_thresh"]))
        pool.add(high, self.next_id, self.frame_id, TRACKED if self.frame_id == 1 else NEW)
        self.next_id += len(high)

        pool.set_state(np.flatnonzero((pool.state == LOST) & (self.frame_id - pool.last > self.max_time_lost)),
                       REMOVED)
        self._remove_duplicates()
        pool.keep(pool.state != REMOVED)
        return self._reportable(pool.rows(TRACKED))

    def _validate(self, boxes, scores, embeddings) -> Detections:
        """Check inputs; fix the mode on the first non-empty frame and hold every later frame to it."""
        dets = Detections.validate(boxes, scores, embeddings, self.embedding_dim)
        if not self.cfg["use_embeddings"] or len(dets) == 0:
            return Detections(dets.xyxy, dets.scores, None)
        has = dets.embeddings is not None
        if self.appearance is None:
            self.appearance, self.embedding_dim = has, dets.embeddings.shape[1] if has else None
        elif has != self.appearance:
            started = f"{self.embedding_dim}-d embeddings" if self.appearance else "embeddings=None (IoU-only)"
            raise InputError(f"embeddings: {'given' if has else 'None'} but this tracker was started with "
                             f"{started}; call reset() between sequences")
        return dets

    def _appearance_cost(self, rows: np.ndarray, dets: Detections) -> np.ndarray:
        pool, cfg = self.pool, self.cfg
        appearance = embedding_distance(pool.feature[rows], dets.embeddings)
        if cfg["appearance_fusion"] == "iou":
            return fuse_iou(self._iou(rows, dets), appearance, cfg["proximity_gate"], cfg["appearance_gate"])
        gating = self.kf.gating_distance(pool.mean[rows], pool.cov[rows], self.kf.measure(dets.xyxy))
        return fuse_motion(appearance, gating, cfg["motion_gate"], cfg["appearance_weight"])

    def _iou(self, rows: np.ndarray, dets: Detections) -> np.ndarray:
        return iou_distance(self.pool.xyxy(rows), dets.xyxy)

    def _match(self, rows: np.ndarray, dets: Detections, cost_fn, thresh: float) -> tuple[np.ndarray, Detections]:
        """Assign by ``cost_fn(rows, dets)`` (not computed when either side is empty), update matched tracks with
        their detections; return (unmatched rows, unmatched dets)."""
        if not len(rows) or not len(dets):
            return rows, dets
        matches, free_tracks, free_dets = linear_assignment(cost_fn(rows, dets), thresh)
        self.pool.update(rows[matches[:, 0]], dets.select(matches[:, 1]), self.frame_id, self.cfg["feature_ema"])
        return rows[free_tracks], dets.select(free_dets)

    def _remove_duplicates(self) -> None:
        """A tracked and a lost track on the same spot: keep the one followed longer (ByteTrack)."""
        pool = self.pool
        tracked, lost = pool.rows(TRACKED), pool.rows(LOST)
        if not len(tracked) or not len(lost):
            return
        p, q = np.nonzero(iou_distance(pool.xyxy(tracked), pool.xyxy(lost)) < self.cfg["duplicate_thresh"])
        duration = pool.last - pool.start
        pool.set_state(np.where(duration[tracked[p]] > duration[lost[q]], lost[q], tracked[p]), REMOVED)

    def _reportable(self, rows: np.ndarray) -> np.ndarray:
        """Output filters: minimum area and maximum w/h (CSTrack 0.6, FairMOT/ByteTrack 1.6)."""
        xyxy = self.pool.xyxy(rows)
        wh = xyxy[:, 2:] - xyxy[:, :2]
        keep = (wh.prod(1) > self.cfg["min_box_area"]) & (wh[:, 0] <= self.cfg["max_aspect_ratio"] * wh[:, 1])
        return rows[keep]
