"""Randomised parity with TrackEval: thousands of tiny sequences, every field, counts exact, ratios to 1e-9.

Boxes come from a handful of positions and sizes, so exact ties (identical boxes), IoU exactly 0.5, partial
overlaps below 0.5 and no overlap at all are all frequent, as are empty frames, empty trackers, sequences of
one frame, ids seen in one frame only and sequences starting after frame 1. Many sequences go into one
TrackEval evaluation per protocol, which keeps the whole test at a few seconds. Seeded: the same cases every run.
"""
import functools

import numpy as np
import pytest

from eval import EvalResult, SequenceData, evaluate
from eval.frames import conflict_frames
from eval.protocol import prepare

pytest.importorskip("trackeval")
from eval.trackeval_ref import differences, trackeval_on  # noqa: E402

# x 0 twice (ties), 2.5 / 5 / 10 (partial overlap), 100 (no overlap); widths 10 vs 20 at x 0: IoU exactly 0.5.
XS, YS, SIZES = (0.0, 0.0, 2.5, 5.0, 10.0, 100.0), (0.0, 5.0), (10.0, 20.0)
MOT17_CLASSES = (1, 1, 1, 1, 1, 2, 7, 8, 12, 6, 3)  # pedestrians, distractors (6 only in MOT20), a non-distractor
CASES = [("MOT17", True, 900), ("MOT15", True, 600), ("MOT20", True, 300), ("MOT17", False, 200)]


def random_boxes(rng, n):
    return np.c_[rng.choice(XS, n), rng.choice(YS, n), rng.choice(SIZES, n), rng.choice(SIZES, n)]


def random_sequence(rng, name: str, mot15: bool) -> SequenceData:
    """gt ids keep their box from frame to frame (or jump); tracker boxes copy a gt box or land anywhere."""
    num_frames, first = int(rng.integers(1, 6)), int(rng.choice([1, 1, 7]))  # 7: a val_half-like offset
    gt_box = random_boxes(rng, 4)
    gt, trk = [], []
    for frame in range(first, first + num_frames):
        moved = rng.random(4) < 0.3
        gt_box[moved] = random_boxes(rng, int(moved.sum()))
        ids = np.flatnonzero(rng.random(4) < 0.5)  # ids unique within a frame
        gt.append(np.c_[np.full(len(ids), frame), ids + 1, gt_box[ids]])
        tids = np.flatnonzero(rng.random(4) < 0.45) + 1
        boxes = random_boxes(rng, len(tids))
        if len(ids):
            copy = rng.random(len(tids)) < 0.6
            boxes[copy] = gt_box[rng.choice(ids, int(copy.sum()))]
        trk.append(np.c_[np.full(len(tids), frame), tids, boxes])
    gt, trk = np.concatenate(gt), np.concatenate(trk)
    consider = rng.choice([1.0, 1.0, 1.0, 1.0, 0.0, 0.5], len(gt))  # TrackEval int(): 0.5 -> not scored
    cls = np.full(len(gt), -1.0) if mot15 else rng.choice(MOT17_CLASSES, len(gt)).astype(float)
    gt = np.c_[gt, consider, cls, rng.random(len(gt))]
    trk = np.c_[trk, rng.random(len(trk)), -np.ones((len(trk), 3))]
    return SequenceData(name, gt, trk, num_frames, first)


def make_cases(seed: int, benchmark: str, count: int) -> list[SequenceData]:
    rng = np.random.default_rng(seed)
    return [random_sequence(rng, f"R{i:04d}", benchmark == "MOT15") for i in range(count)]


@functools.lru_cache
def evaluated(benchmark: str, preprocess: bool, count: int) -> tuple[list[SequenceData], EvalResult]:
    seqs = make_cases(13, benchmark, count)
    return seqs, evaluate(seqs, benchmark, preprocess)


@pytest.mark.parametrize("benchmark, preprocess, count", CASES)
def test_random_sequences_equal_trackeval(benchmark, preprocess, count):
    seqs, ours = evaluated(benchmark, preprocess, count)
    assert differences(ours, trackeval_on(seqs, benchmark, preprocess), atol=1e-9) == []


def test_random_cases_cover_the_degenerate_situations():
    """The generator really produces the cases the parity test is for (else it would prove little)."""
    seqs, ours = evaluated(*CASES[0])
    stats = {"no overlap": 0, "overlap, none >= 0.5": 0, "IoU exactly 0.5": 0, "tied IoU in a frame": 0,
             "competing candidates": 0, "no tracker boxes": 0, "no scored gt": 0, "one frame": 0, "id switch": 0,
             "fragmentation": 0, "distractor removed": 0}
    for seq in seqs:
        p, m = prepare(seq), ours.sequences[seq.name]
        both = p.num_gt_dets and p.num_trk_dets
        stats["no overlap"] += bool(both and not len(p.edges))
        stats["overlap, none >= 0.5"] += bool(len(p.edges) and (p.edges.iou < 0.5).all())
        stats["IoU exactly 0.5"] += bool((p.edges.iou == 0.5).any())
        key = p.edges.frame * 1000 + np.round(p.edges.iou * 1e6)
        stats["tied IoU in a frame"] += len(np.unique(key)) < len(key)
        stats["competing candidates"] += len(conflict_frames(p.edges.select(p.edges.iou >= 0.5), p.num_gt_dets,
                                                             p.num_trk_dets)) > 0
        stats["no tracker boxes"] += p.num_trk_dets == 0
        stats["no scored gt"] += p.num_gt_dets == 0
        stats["one frame"] += seq.num_frames == 1
        stats["id switch"] += m["IDSW"] > 0
        stats["fragmentation"] += m["Frag"] > 0
        stats["distractor removed"] += p.num_trk_dets < len(seq.tracker)
    assert min(stats.values()) >= 10, stats  # deterministic (seeded); fragmentation is the rarest, at 13
