"""Per-frame gt x tracker box pairs and per-frame optimal matching, vectorised over a whole sequence.

Every TrackEval step works frame by frame on a dense gt x tracker IoU matrix. Almost all of that matrix is
zero, so we keep only the pairs that overlap ("edges"), computed for all frames at once with TrackEval's exact
IoU arithmetic. Matching then needs the Hungarian algorithm only in frames where candidate edges compete
for a box ("conflict" frames): when no two candidates share a gt or tracker box, the optimum is simply all
candidates, so those frames are resolved without any solver call.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.assignment import linear_sum_assignment

EPS = np.finfo("float").eps
_MAX_PAIRS_PER_CHUNK = 2_000_000  # bounds the temporary memory of the dense pair enumeration


@dataclass(frozen=True)
class Edges:
    """Overlapping gt/tracker box pairs, sorted by frame, then gt row, then tracker row (row-major)."""

    frame: np.ndarray  # (E,) int: frame index (0-based timestep)
    gt: np.ndarray  # (E,) int: row into the sequence's gt arrays
    trk: np.ndarray  # (E,) int: row into the sequence's tracker arrays
    iou: np.ndarray  # (E,) float64, > 0

    def __len__(self) -> int:
        return len(self.frame)

    def select(self, mask: np.ndarray) -> "Edges":
        return Edges(self.frame[mask], self.gt[mask], self.trk[mask], self.iou[mask])


def frame_offsets(frame: np.ndarray, num_frames: int) -> np.ndarray:
    """Start offset of each frame in an array sorted by frame (length num_frames + 1)."""
    return np.searchsorted(frame, np.arange(num_frames + 1))


def box_iou_pairs(gt_tlwh: np.ndarray, trk_tlwh: np.ndarray) -> np.ndarray:
    """IoU of paired boxes (row i with row i), bit-identical to TrackEval's ``_calculate_box_ious`` (xywh)."""
    g0x, g0y = gt_tlwh[:, 0], gt_tlwh[:, 1]
    g1x, g1y = g0x + gt_tlwh[:, 2], g0y + gt_tlwh[:, 3]
    t0x, t0y = trk_tlwh[:, 0], trk_tlwh[:, 1]
    t1x, t1y = t0x + trk_tlwh[:, 2], t0y + trk_tlwh[:, 3]
    inter = (np.maximum(np.minimum(g1x, t1x) - np.maximum(g0x, t0x), 0)
             * np.maximum(np.minimum(g1y, t1y) - np.maximum(g0y, t0y), 0))
    area_g = (g1x - g0x) * (g1y - g0y)
    area_t = (t1x - t0x) * (t1y - t0y)
    union = area_g + area_t - inter
    inter[(area_g <= 0 + EPS) | (area_t <= 0 + EPS) | (union <= 0 + EPS)] = 0
    union[union <= 0 + EPS] = 1
    return inter / union


def overlap_edges(gt_frame: np.ndarray, gt_tlwh: np.ndarray, trk_frame: np.ndarray, trk_tlwh: np.ndarray,
                  num_frames: int) -> Edges:
    """All same-frame gt/tracker pairs with IoU > 0. Inputs are sorted by frame (0-based).

    Pairs are enumerated gt row by gt row (each row against its frame's tracker block), in chunks of gt
    rows to bound memory; a cheap x-overlap test discards most pairs before the IoU.
    """
    t_off = frame_offsets(trk_frame, num_frames)
    n_t = np.diff(t_off)[gt_frame]  # trackers in each gt row's frame
    first_t = t_off[gt_frame]
    ends = np.cumsum(n_t)
    gx0, gx1 = gt_tlwh[:, 0], gt_tlwh[:, 0] + gt_tlwh[:, 2]
    tx0, tx1 = trk_tlwh[:, 0], trk_tlwh[:, 0] + trk_tlwh[:, 2]
    parts, lo = [], 0
    while lo < len(gt_frame):
        base = ends[lo] - n_t[lo]
        hi = max(int(np.searchsorted(ends, base + _MAX_PAIRS_PER_CHUNK, "right")), lo + 1)
        n = n_t[lo:hi]
        total = int(ends[hi - 1] - base)
        if total:
            gi = np.repeat(np.arange(lo, hi), n)
            ti = np.arange(total) + np.repeat(first_t[lo:hi] - (ends[lo:hi] - n - base), n)
            keep = np.minimum(gx1[gi], tx1[ti]) > np.maximum(gx0[gi], tx0[ti])  # cheap x-overlap prefilter
            gi, ti = gi[keep], ti[keep]
            iou = box_iou_pairs(gt_tlwh[gi], trk_tlwh[ti])
            pos = iou > 0
            parts.append((gt_frame[gi[pos]], gi[pos], ti[pos], iou[pos]))
        lo = hi
    if not parts:
        empty = np.zeros(0, np.int64)
        return Edges(empty, empty, empty, np.zeros(0))
    return Edges(*(np.concatenate(column) for column in zip(*parts)))


def conflict_frames(edges: Edges, num_gt: int, num_trk: int) -> np.ndarray:
    """Sorted frames in which two edges share a gt or a tracker row."""
    if not len(edges):
        return np.zeros(0, np.int64)
    shared = (np.bincount(edges.gt, minlength=num_gt)[edges.gt] > 1) | \
             (np.bincount(edges.trk, minlength=num_trk)[edges.trk] > 1)
    return np.unique(edges.frame[shared])


def match_edges(edges: Edges, score: np.ndarray, gt_frame: np.ndarray, trk_frame: np.ndarray,
                num_frames: int) -> np.ndarray:
    """Per-frame maximum-score assignment over the given candidate edges; returns the mask of matched edges.

    In conflict frames the solver gets the frame's full gt x tracker matrix, exactly as TrackEval builds it,
    so that even exact ties (duplicate boxes) resolve the same way.
    """
    matched = np.ones(len(edges), bool)
    conflicts = conflict_frames(edges, len(gt_frame), len(trk_frame))
    if len(conflicts):
        off = frame_offsets(edges.frame, num_frames)
        g_off, t_off = frame_offsets(gt_frame, num_frames), frame_offsets(trk_frame, num_frames)
        for f in conflicts:
            lo, hi = off[f], off[f + 1]
            matched[lo:hi] = solve_frame(edges.gt[lo:hi] - g_off[f], edges.trk[lo:hi] - t_off[f], score[lo:hi],
                                         (g_off[f + 1] - g_off[f], t_off[f + 1] - t_off[f]))
    return matched


def solve_frame(rows: np.ndarray, cols: np.ndarray, score: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """TrackEval's Hungarian step on one frame's score matrix; mask of the given entries kept (score > eps).

    scipy's solver, as in TrackEval: another optimal assignment (``lap``) could break exact ties differently.
    """
    mat = np.zeros(shape)
    mat[rows, cols] = score
    mr, mc = linear_sum_assignment(-mat)
    chosen = np.zeros(shape, dtype=bool)
    chosen[mr, mc] = mat[mr, mc] > 0 + EPS
    return chosen[rows, cols]


def numpy_sums(key: np.ndarray, pos: np.ndarray, length: np.ndarray, value: np.ndarray, num_keys: int
               ) -> np.ndarray:
    """Per-key sums bit-identical to numpy's ``dense_vector.sum()`` (pairwise summation) of each key's dense
    vector of ``length[key]`` entries holding ``value`` at ``pos``.

    numpy sums contiguous vectors of >= 8 entries pairwise, not left to right; with at most two non-zero
    entries the order cannot matter, so only keys with three or more are rebuilt densely.
    """
    out = np.bincount(key, weights=value, minlength=num_keys)
    need = (np.bincount(key, minlength=num_keys)[key] >= 3) & (length[key] >= 8)
    if need.any():
        k, p, v = key[need], pos[need], value[need]
        n_of = length[k]
        for n in np.unique(n_of):
            sel = n_of == n
            keys, inv = np.unique(k[sel], return_inverse=True)
            dense = np.zeros((len(keys), n))
            dense[inv, p[sel]] = v[sel]
            out[keys] = dense.sum(1)
    return out
