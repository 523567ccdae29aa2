"""Identity metrics (IDF1, IDP, IDR), equal to TrackEval's ``Identity``.

TrackEval solves a (G+T) x (G+T) assignment with dummy rows/columns. Its optimum is a maximum-weight
bipartite matching of gt ids to tracker ids, weighted by the number of frames they overlap with IoU >= 0.5,
and IDFN/IDFP depend only on that maximum. We solve just the ids that overlap at all, which gives the
same (integer) optimum on a much smaller matrix.
"""
from __future__ import annotations

import numpy as np

from eval.assignment import linear_sum_assignment
from eval.protocol import Prepared

THRESHOLD = 0.5
INTEGER_FIELDS = ("IDTP", "IDFN", "IDFP")
FLOAT_FIELDS = ("IDF1", "IDR", "IDP")


def _max_overlap(p: Prepared) -> int:
    e = p.edges.select(p.edges.iou >= THRESHOLD)  # TrackEval uses >= 0.5 here, without eps
    if not len(e):
        return 0

    gid, tid = p.gt_id[e.gt], p.trk_id[e.trk]
    rows, r = np.unique(gid, return_inverse=True)
    cols, c = np.unique(tid, return_inverse=True)
    weight = np.zeros((len(rows), len(cols)))
    np.add.at(weight, (r, c), 1)
    mr, mc = linear_sum_assignment(weight, maximize=True)
    return int(weight[mr, mc].sum())


def count(p: Prepared) -> dict:
    if p.num_trk_dets == 0 or p.num_gt_dets == 0:
        return finalize({"IDTP": 0, "IDFN": p.num_gt_dets if p.num_trk_dets == 0 else 0,
                         "IDFP": p.num_trk_dets if p.num_trk_dets and p.num_gt_dets == 0 else 0})
    idtp = _max_overlap(p)
    return finalize({"IDTP": idtp, "IDFN": p.num_gt_dets - idtp, "IDFP": p.num_trk_dets - idtp})


def finalize(res: dict) -> dict:
    tp, fn, fp = res["IDTP"], res["IDFN"], res["IDFP"]
    return {**res, "IDR": tp / max(1.0, tp + fn), "IDP": tp / max(1.0, tp + fp),
            "IDF1": tp / max(1.0, tp + 0.5 * fp + 0.5 * fn)}


def combine(results: list[dict]) -> dict:
    return finalize({field: sum(r[field] for r in results) for field in INTEGER_FIELDS})
