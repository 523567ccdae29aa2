"""Degenerate inputs (what a weak or early model produces): every case equals TrackEval and known values.

Regression tests for issue 13: no tracker box overlapping any gt box, or none reaching IoU 0.5, crashed
HOTA (reshape of an empty histogram) and CLEAR (predecessor masks one element too long).
"""
import numpy as np
import pytest

from eval import SequenceData, evaluate

pytest.importorskip("trackeval")
from eval.trackeval_ref import differences, trackeval_on  # noqa: E402

PERSON, STATIC_PERSON, DISTRACTOR = 1, 7, 8


def gt_rows(*entries):
    """(frame, id, x, y, w, h[, class[, consider]]) -> gt.txt rows."""
    return np.array([(*e[:6], e[7] if len(e) > 7 else 1, e[6] if len(e) > 6 else PERSON, 1.0) for e in entries],
                    float).reshape(-1, 9)


def trk_rows(*entries):
    """(frame, id, x, y, w, h) -> result rows."""
    return np.array([(*e, 1.0, -1, -1, -1) for e in entries], float).reshape(-1, 10)


PERSON_3 = [(f, 1, 100, 100, 50, 100) for f in (1, 2, 3)]
CASES = {
    # The reproduction: one person, two far-away tracker boxes.
    "no_overlap": (gt_rows(*PERSON_3), trk_rows((1, 5, 1000, 1000, 50, 100), (2, 6, 1500, 1000, 50, 100)), 3),
    "below_threshold": (gt_rows(*PERSON_3), trk_rows(*[(f, 5, 125, 100, 50, 100) for f in (1, 2, 3)]), 3),  # IoU 1/3
    "empty_tracker": (gt_rows(*PERSON_3), trk_rows(), 3),
    "empty_gt_frames": (gt_rows((2, 1, 0, 0, 10, 10)), trk_rows(*[(f, 4, 0, 0, 10, 10) for f in (1, 2, 3)]), 3),
    "all_distractor_frames": (
        gt_rows((1, 1, 0, 0, 10, 10, STATIC_PERSON), (2, 1, 0, 0, 10, 10, STATIC_PERSON),
                (2, 2, 50, 0, 10, 10, DISTRACTOR), (3, 3, 0, 0, 10, 10)),
        trk_rows((1, 4, 0, 0, 10, 10), (2, 4, 0, 0, 10, 10), (2, 5, 50, 0, 10, 10), (3, 4, 0, 0, 10, 10)), 3),
    "only_distractors": (gt_rows((1, 1, 0, 0, 10, 10, DISTRACTOR), (2, 1, 0, 0, 10, 10, DISTRACTOR)),
                         trk_rows((1, 4, 0, 0, 10, 10), (2, 4, 0, 0, 10, 10), (2, 5, 500, 0, 10, 10)), 2),
    "only_zero_marked": (gt_rows((1, 1, 0, 0, 10, 10, PERSON, 0), (2, 1, 0, 0, 10, 10, PERSON, 0)),
                         trk_rows((1, 4, 0, 0, 10, 10), (2, 4, 0, 0, 10, 10)), 2),
    "single_frame": (gt_rows((1, 1, 0, 0, 10, 10), (1, 2, 30, 0, 10, 10)),
                     trk_rows((1, 8, 0, 0, 10, 10), (1, 9, 30, 0, 10, 10)), 1),
    # gt 10x20 vs tracker 10x10 at the same corner: IoU exactly 0.5 (matches: >= 0.5 - eps, Identity >= 0.5).
    "iou_at_threshold": (gt_rows(*[(f, 1, 0, 0, 10, 20) for f in (1, 2)], (1, 2, 100, 0, 10, 20, STATIC_PERSON)),
                         trk_rows((1, 4, 0, 0, 10, 10), (2, 4, 0, 0, 10, 10), (1, 5, 100, 0, 10, 10)), 2),
    "tracker_id_in_one_frame": (gt_rows(*[(f, 1, 0, 0, 10, 10) for f in (1, 2, 3)]),
                                trk_rows((1, 4, 0, 0, 10, 10), (2, 9, 0, 0, 10, 10), (3, 4, 0, 0, 10, 10)), 3),
    "no_boxes_at_all": (gt_rows(), trk_rows(), 2),
}
#: Hand-checked public values per case (TrackEval agrees on all fields, see the parity test below).
EXPECTED = {
    "no_overlap": {"HOTA": 0.0, "MOTA": -2 / 3, "FP": 2, "FN": 3, "ML": 1, "TP": 0, "IDF1": 0.0, "IDSW": 0},
    "below_threshold": {"MOTA": -1.0, "FP": 3, "FN": 3, "TP": 0, "IDTP": 0, "ML": 1},
    "empty_tracker": {"HOTA": 0.0, "MOTA": 0.0, "FN": 3, "FP": 0, "ML": 1, "IDFN": 3},
    "empty_gt_frames": {"TP": 1, "FP": 2, "FN": 0, "MOTA": -1.0, "MT": 1},
    "all_distractor_frames": {"TP": 1, "FP": 0, "FN": 0, "Dets": 1, "GT_Dets": 1, "MOTA": 1.0, "HOTA": 1.0},
    "only_distractors": {"GT_Dets": 0, "Dets": 1, "FP": 1, "TP": 0, "MOTA": 0.0},
    "only_zero_marked": {"GT_Dets": 0, "Dets": 2, "FP": 2, "HOTA": 0.0},
    "single_frame": {"TP": 2, "FP": 0, "FN": 0, "MOTA": 1.0, "IDF1": 1.0, "HOTA": 1.0, "MT": 2},
    "iou_at_threshold": {"TP": 2, "FP": 0, "FN": 0, "IDTP": 2, "Dets": 2, "MOTP": 0.5},
    "tracker_id_in_one_frame": {"TP": 3, "IDSW": 2, "Frag": 0, "IDTP": 2, "IDFP": 1, "MOTA": 1 / 3, "IDs": 2},
    "no_boxes_at_all": {"GT_Dets": 0, "Dets": 0, "TP": 0, "FP": 0, "FN": 0, "MOTA": 0.0, "HOTA": 0.0},
}


@pytest.fixture(scope="module")
def cases():
    seqs = [SequenceData(name, gt, trk, frames) for name, (gt, trk, frames) in CASES.items()]
    return seqs, evaluate(seqs), trackeval_on(seqs)


@pytest.mark.parametrize("name", list(CASES))
def test_degenerate_case_values(cases, name):
    _, ours, _ = cases
    got = ours.sequences[name]
    for key, value in EXPECTED[name].items():
        assert got[key] == pytest.approx(value, abs=1e-12), key


@pytest.mark.parametrize("name", list(CASES))
def test_degenerate_case_equals_trackeval(cases, name):
    _, ours, ref = cases
    assert differences(ours, {name: ref[name]}) == []


def test_degenerate_cases_combined_equals_trackeval(cases):
    _, ours, ref = cases
    assert differences(ours, {"COMBINED": ref["COMBINED"]}) == []


def test_degenerate_cases_alone_equal_trackeval():
    """Each case as the only sequence (COMBINED of one degenerate sequence), like a one-sequence validation."""
    seqs = [SequenceData(name, gt, trk, frames) for name, (gt, trk, frames) in CASES.items()]
    for seq in seqs:
        assert differences(evaluate([seq]), trackeval_on([seq])) == [], seq.name


@pytest.mark.parametrize("benchmark", ["MOT15", "MOT20"])
def test_degenerate_cases_other_protocols_equal_trackeval(benchmark):
    seqs = [SequenceData(name, gt, trk, frames) for name, (gt, trk, frames) in CASES.items()]
    assert differences(evaluate(seqs, benchmark), trackeval_on(seqs, benchmark)) == []
