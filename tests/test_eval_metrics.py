"""Evaluator values: TUD fixtures from the motmetrics wheel, TrackEval's hand-made cases, edge cases."""
from pathlib import Path

import numpy as np
import pytest

from eval import SequenceData, evaluate
from mot_kd.data.mot_files import read_mot_txt

motmetrics = pytest.importorskip("motmetrics")
TUD = Path(motmetrics.__file__).parent / "data"


def tud_sequences():
    seqs = []
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        gt = read_mot_txt(TUD / name / "gt.txt")
        seqs.append(SequenceData(name, gt, read_mot_txt(TUD / name / "test.txt"), int(gt[:, 0].max())))
    return seqs


def test_tud_mot15_matches_published_numbers():
    res = evaluate(tud_sequences(), "MOT15")
    c = res.combined
    assert (c["FP"], c["FN"], c["IDSW"], c["Frag"], c["MT"], c["PT"], c["ML"]) == (58, 602, 14, 13, 6, 10, 2)
    for key, value in {"IDF1": 0.624296, "IDP": 0.799176, "IDR": 0.512211, "MOTA": 0.555116}.items():
        assert c[key] == pytest.approx(value, abs=1e-6)
    assert c["HOTA"] == pytest.approx(0.4000, abs=1e-4)
    assert res.sequences["TUD-Campus"]["HOTA"] == pytest.approx(0.3914, abs=1e-4)
    assert res.sequences["TUD-Stadtmitte"]["HOTA"] == pytest.approx(0.3978, abs=1e-4)
    assert all(isinstance(c[k], int) for k in ("FP", "FN", "IDSW", "MT"))
    assert 0 <= c["recall"] <= 1 and 0 <= c["precision"] <= 1


def rows(entries):
    """(frame, id, x, y, w, h) tuples -> gt-style rows (consider 1, class 1, vis 1)."""
    a = np.array(entries, float)
    return np.c_[a, np.ones((len(a), 3))]


def box_track(track_id, frames, x=0.0):
    return [(f, track_id, x, 0, 10, 20) for f in frames]


def test_no_confusion_is_perfect():
    gt = rows(box_track(1, range(1, 6)) + box_track(2, range(1, 6), x=100))
    trk = rows(box_track(7, range(1, 6)) + box_track(9, range(1, 6), x=100))
    c = evaluate([SequenceData("s", gt, trk, 5)]).combined
    assert c["HOTA"] == pytest.approx(1.0) and c["MOTA"] == 1.0 and c["IDF1"] == 1.0
    assert (c["IDSW"], c["Frag"], c["FP"], c["FN"], c["MT"]) == (0, 0, 0, 0, 2)


def test_with_confusion_counts_switch():
    # gt 1 is tracked by id 7 for 3 frames, then by id 8 (one identity switch).
    gt = rows(box_track(1, range(1, 7)))
    trk = rows(box_track(7, range(1, 4)) + box_track(8, range(4, 7)))
    c = evaluate([SequenceData("s", gt, trk, 6)]).combined
    assert (c["IDSW"], c["Frag"], c["FP"], c["FN"]) == (1, 0, 0, 0)
    assert c["MOTA"] == pytest.approx(5 / 6)
    assert c["IDF1"] == pytest.approx(0.5) and c["DetA"] == pytest.approx(1.0)
    assert c["AssA"] == pytest.approx(0.5)  # each matched pair overlaps its track for 3 of 6 frames
    assert c["HOTA"] == pytest.approx(np.sqrt(0.5))


def test_split_track_counts_fragment():
    # One tracker id, gap in frames 3-4 (tracker boxes elsewhere, so those frames are still active).
    gt = rows(box_track(1, range(1, 7)))
    trk = rows(box_track(5, [1, 2, 5, 6]) + box_track(6, [3, 4], x=500))
    c = evaluate([SequenceData("s", gt, trk, 6)]).combined
    assert (c["Frag"], c["IDSW"], c["FN"], c["FP"]) == (1, 0, 2, 2)
    assert c["MT"] == 0 and c["PT"] == 1


def test_distractor_matches_are_removed_and_zero_marked_ignored():
    gt = rows(box_track(1, range(1, 4)) + box_track(2, range(1, 4), x=200))
    gt[3:, 7] = 7  # track 2 is a static person (distractor)
    gt[2, 6] = 0  # frame 3 of track 1 is zero-marked (not scored)
    trk = rows(box_track(1, range(1, 4)) + box_track(2, range(1, 4), x=200))
    mot17 = evaluate([SequenceData("s", gt, trk, 3)], "MOT17").combined
    assert (mot17["FP"], mot17["FN"], mot17["TP"]) == (1, 0, 2)  # frame-3 box of track 1 has no gt left
    mot15 = evaluate([SequenceData("s", gt, trk, 3)], "MOT15").combined
    assert (mot15["FP"], mot15["TP"]) == (1, 5)  # MOT15: class ignored, distractor counted as gt


def test_empty_tracker_and_empty_gt():
    gt = rows(box_track(1, range(1, 4)))
    res = evaluate([SequenceData("a", gt, np.zeros((0, 6)), 3), SequenceData("b", np.zeros((0, 9)), gt, 3)])
    assert res.sequences["a"]["FN"] == 3 and res.sequences["a"]["ML"] == 1 and res.sequences["a"]["HOTA"] == 0
    assert res.sequences["b"]["FP"] == 3
    assert res.sequences["b"]["MOTA"] == 0.0  # TrackEval leaves ratios at 0 when a sequence has no gt
    assert res.combined["MOTA"] == -1.0  # COMBINED from sums: (0 TP - 3 FP) / 3 gt


def test_combined_uses_summed_counts_not_mean_of_ratios():
    seqs = tud_sequences()
    res = evaluate(seqs, "MOT15")
    s = res.sequences
    idtp = sum(v["IDTP"] for v in s.values())
    assert res.combined["IDF1"] == pytest.approx(
        idtp / (idtp + 0.5 * sum(v["IDFP"] for v in s.values()) + 0.5 * sum(v["IDFN"] for v in s.values())))
    assert res.combined["IDF1"] != pytest.approx(np.mean([v["IDF1"] for v in s.values()]))


def test_duplicate_sequence_names_are_listed_briefly():
    gt = rows(box_track(1, range(1, 3)))
    seqs = [SequenceData(name, gt, gt, 2) for name in [f"S{i}" for i in range(6)] * 2 + ["T"]]
    with pytest.raises(ValueError) as info:
        evaluate(seqs)
    assert str(info.value) == "duplicate sequence names: S0, S1, S2, ... (6 in all)"
