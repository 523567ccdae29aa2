"""Association costs (IoU, appearance, motion gating, their two fusions) and thresholded linear assignment.

IoU comes from ``cython_bbox.bbox_overlaps`` and assignment from ``lap.lapjv``, as in JDE/FairMOT/ByteTrack;
every cost is a whole (tracks x detections) matrix built with numpy, never a per-pair Python loop.
"""
from __future__ import annotations

import lap
import numpy as np
from cython_bbox import bbox_overlaps


def iou_distance(track_xyxy: np.ndarray, det_xyxy: np.ndarray) -> np.ndarray:
    """1 - IoU, shape (T, N). cython_bbox counts pixels inclusively (+1), as the reference trackers do."""
    if len(track_xyxy) == 0 or len(det_xyxy) == 0:
        return np.zeros((len(track_xyxy), len(det_xyxy)))
    ious = bbox_overlaps(np.ascontiguousarray(track_xyxy, dtype=np.float64),
                         np.ascontiguousarray(det_xyxy, dtype=np.float64))
    return 1.0 - ious


def embedding_distance(track_features: np.ndarray, det_features: np.ndarray) -> np.ndarray:
    """Cosine distance (T, N) between unit vectors, floored at 0 like FairMOT's cdist(..., 'cosine')."""
    if len(track_features) == 0 or len(det_features) == 0:
        return np.zeros((len(track_features), len(det_features)))
    return np.maximum(0.0, 1.0 - track_features @ det_features.T)


def fuse_motion(appearance: np.ndarray, gating: np.ndarray, gate: float, weight: float) -> np.ndarray:
    """JDE's fusion: pairs outside the Mahalanobis gate are impossible, others mix appearance and motion."""
    cost = weight * appearance + (1.0 - weight) * gating
    cost[gating > gate] = np.inf
    return cost


def fuse_iou(iou_cost: np.ndarray, appearance: np.ndarray, proximity_gate: float, appearance_gate: float
             ) -> np.ndarray:
    """BoT-SORT's fusion: min(1 - IoU, cosine / 2), the appearance term counting only for pairs that overlap
    (1 - IoU <= proximity_gate) and look alike (cosine <= appearance_gate). Appearance can only make an
    overlapping pair cheaper, never beat a clearly better overlap (lookalikes, stale lost tracks)."""
    cost = appearance / 2.0
    cost[(appearance > appearance_gate) | (iou_cost > proximity_gate)] = 1.0
    return np.minimum(iou_cost, cost)


def linear_assignment(cost: np.ndarray, thresh: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost matching keeping only pairs with cost <= thresh.

    Returns (matches (K, 2) of [row, col], unmatched rows, unmatched cols). Costs above the threshold
    (including inf) are clipped just above it: with ``cost_limit`` lapjv leaves them unassigned anyway, and
    finite values keep the solver numerically safe.
    """
    rows, cols = cost.shape
    if cost.size == 0:
        return np.zeros((0, 2), dtype=np.int64), np.arange(rows), np.arange(cols)
    _, x, y = lap.lapjv(np.minimum(cost, thresh + 1.0), extend_cost=True, cost_limit=thresh)
    matched_rows = np.flatnonzero(x >= 0)
    matches = np.stack([matched_rows, x[matched_rows]], axis=1).astype(np.int64)
    return matches, np.flatnonzero(x < 0), np.flatnonzero(y < 0)
