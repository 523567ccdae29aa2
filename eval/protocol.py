"""MOTChallenge evaluation protocol: validate one sequence, remove distractor matches, keep scored gt.

Semantics follow TrackEval's ``MotChallenge2DBox`` (the code behind the official server):

* MOT17/MOT16/MOT20: per frame, tracker boxes are matched to *all* gt boxes by one Hungarian step on IoU
  (pairs below 0.5 - eps never match); tracker boxes matched to a distractor class are dropped. Scored gt
  = class 1 rows whose column 7 (``int()`` of it, like TrackEval) is not 0.
* MOT15: no matching, no class filter; gt rows whose column 7 is 0 are still dropped.

Input rows use the MOTChallenge text layout: ``frame, id, x, y, w, h[, conf/consider, class, vis, z]``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from eval.frames import EPS, Edges, match_edges, overlap_edges
from mot_kd.data.motchallenge import BENCHMARKS, DISTRACTOR_CLASSES
from mot_kd.errors import InputError

#: TrackEval's class ids (its ``class_name_to_class_id``).
VALID_GT_CLASSES = tuple(range(1, 14))
PEDESTRIAN = 1
DISTRACTORS = {"MOT16": DISTRACTOR_CLASSES, "MOT17": DISTRACTOR_CLASSES,
               "MOT20": tuple(sorted((*DISTRACTOR_CLASSES, 6))), "MOT15": ()}


@dataclass(frozen=True)
class SequenceData:
    """One sequence to evaluate: raw gt and tracker rows for frames first_frame..first_frame+num_frames-1."""

    name: str
    gt: np.ndarray  # (N, >=6) gt.txt rows
    tracker: np.ndarray  # (M, >=6) result rows
    num_frames: int
    first_frame: int = 1
    gt_source: str = ""  # file names for error messages (default: "<name> gt" / "<name> tracker")
    tracker_source: str = ""


@dataclass(frozen=True)
class Prepared:
    """What the metrics need after preprocessing: contiguous ids and the overlapping pairs."""

    name: str
    num_frames: int
    gt_frame: np.ndarray  # (G,) 0-based timestep, sorted
    gt_id: np.ndarray  # (G,) contiguous 0..num_gt_ids-1
    trk_frame: np.ndarray  # (T,) sorted
    trk_id: np.ndarray  # (T,) contiguous 0..num_trk_ids-1
    edges: Edges  # rows index gt_*/trk_* arrays; IoU > 0
    num_gt_ids: int
    num_trk_ids: int

    @property
    def num_gt_dets(self) -> int:
        return len(self.gt_frame)

    @property
    def num_trk_dets(self) -> int:
        return len(self.trk_frame)


def listing(values, limit: int = 3) -> str:
    """The first ``limit`` values and how many there are, so that an error stays one short line."""
    values = list(values)
    more = f", ... ({len(values):,} in all)" if len(values) > limit else ""
    return ", ".join(str(v) for v in values[:limit]) + more


def _as_rows(rows: np.ndarray, what: str) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return np.zeros((0, 6))
    if rows.ndim != 2 or rows.shape[1] < 6:
        raise InputError(f"{what}: expected rows with at least 6 columns (frame,id,x,y,w,h), got shape {rows.shape}")
    if not np.isfinite(rows[:, :6]).all():
        raise InputError(f"{what}: NaN or infinite values")
    return rows


def _check_frames(frame: np.ndarray, seq: SequenceData, what: str) -> None:
    last = seq.first_frame + seq.num_frames - 1
    bad = (frame < seq.first_frame) | (frame > last) | (frame != np.round(frame))
    if bad.any():
        raise InputError(f"{what}: frame {frame[bad][0]:g} outside {seq.first_frame}..{last} "
                         f"(sequence {seq.name})")


def _check_unique(frame: np.ndarray, ids: np.ndarray, what: str) -> None:
    key = np.stack([frame, ids], axis=1)
    order = np.lexsort((ids, frame))
    dup = np.flatnonzero((np.diff(key[order], axis=0) == 0).all(axis=1))
    if len(dup):
        f, i = key[order[dup[0]]]
        raise InputError(f"{what}: id {int(i)} appears more than once in frame {int(f)}")


def _sorted_by_frame(rows: np.ndarray, first_frame: int) -> tuple[np.ndarray, np.ndarray]:
    order = np.argsort(rows[:, 0], kind="stable")  # keep file order within a frame, like TrackEval
    rows = rows[order]
    return rows, (rows[:, 0] - first_frame).astype(np.int64)


def _relabel(ids: np.ndarray) -> tuple[np.ndarray, int]:
    unique, inverse = np.unique(ids, return_inverse=True)
    return inverse.astype(np.int64), len(unique)


def prepare(seq: SequenceData, benchmark: str = "MOT17", preprocess: bool = True) -> Prepared:
    """Validate a sequence and apply the benchmark's preprocessing; raises InputError on bad data."""
    if benchmark not in BENCHMARKS:
        raise InputError(f"unknown benchmark {benchmark!r}; choose one of {', '.join(BENCHMARKS)}")
    if seq.num_frames < 1:
        raise InputError(f"{seq.name}: sequence has no frames (num_frames={seq.num_frames})")
    gt_what = seq.gt_source or f"{seq.name} gt"
    trk_what = seq.tracker_source or f"{seq.name} tracker"
    gt, trk = _as_rows(seq.gt, gt_what), _as_rows(seq.tracker, trk_what)
    for rows, what in ((gt, gt_what), (trk, trk_what)):
        _check_frames(rows[:, 0], seq, what)
        if (rows[:, 1] != np.round(rows[:, 1])).any():
            raise InputError(f"{what}: ids must be integers")
        _check_unique(rows[:, 0], rows[:, 1].astype(np.int64), what)
    if trk.shape[1] >= 8 and len(trk) and trk[:, 7].max() > 1:
        raise InputError(f"{trk_what}: tracker rows must be pedestrians (column 8 = class <= 1), "
                         f"found class {trk[:, 7].max():g}")
    mot15 = benchmark == "MOT15" or not preprocess
    gt, gt_frame = _sorted_by_frame(gt, seq.first_frame)
    trk, trk_frame = _sorted_by_frame(trk, seq.first_frame)
    consider = gt[:, 6].astype(np.int64) != 0 if gt.shape[1] > 6 else np.ones(len(gt), bool)
    gt_cls = gt[:, 7].astype(np.int64) if gt.shape[1] > 7 else np.full(len(gt), PEDESTRIAN)
    if not mot15:
        invalid = np.setdiff1d(np.unique(gt_cls), VALID_GT_CLASSES)
        if len(invalid):
            rows = int(np.isin(gt_cls, invalid).sum())
            raise InputError(f"{gt_what}: gt class ids {listing(invalid.tolist())} in {rows:,} of {len(gt_cls):,} "
                             f"rows are not MOTChallenge classes 1..13 (MOT15-style gt? use --benchmark MOT15)")

    edges = overlap_edges(gt_frame, gt[:, 2:6], trk_frame, trk[:, 2:6], seq.num_frames)
    keep_trk = np.ones(len(trk), bool)
    if not mot15 and len(edges):
        cand = edges.select(edges.iou >= 0.5 - EPS)
        distractor = np.isin(gt_cls[cand.gt], DISTRACTORS[benchmark])
        frames = np.isin(cand.frame, np.unique(cand.frame[distractor]))  # only these frames can lose boxes
        cand = cand.select(frames)
        matched = match_edges(cand, cand.iou, gt_frame, trk_frame, seq.num_frames)
        keep_trk[cand.trk[matched & np.isin(gt_cls[cand.gt], DISTRACTORS[benchmark])]] = False
    keep_gt = consider if mot15 else consider & (gt_cls == PEDESTRIAN)

    edges = edges.select(keep_gt[edges.gt] & keep_trk[edges.trk])
    gt_new = np.cumsum(keep_gt) - 1
    trk_new = np.cumsum(keep_trk) - 1
    edges = Edges(edges.frame, gt_new[edges.gt], trk_new[edges.trk], edges.iou)
    gt_id, num_gt_ids = _relabel(gt[keep_gt, 1].astype(np.int64))
    trk_id, num_trk_ids = _relabel(trk[keep_trk, 1].astype(np.int64))
    return Prepared(seq.name, seq.num_frames, gt_frame[keep_gt], gt_id, trk_frame[keep_trk], trk_id, edges,
                    num_gt_ids, num_trk_ids)
