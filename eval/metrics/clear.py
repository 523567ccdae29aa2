"""CLEAR MOT metrics (MOTA, MOTP, FP, FN, IDSW, Frag, MT/PT/ML), equal to TrackEval's ``CLEAR``.

TrackEval's per-frame matching prefers continuing the previous frame's gt->tracker pairs (+1000 bonus), so
frames depend on each other. But when no two candidate pairs (IoU >= 0.5) of a frame share a box, every
candidate is matched whatever the bonus; only the few "conflict" frames are solved, in order, with the
previous *active* frame's matches (TrackEval skips frames without gt or without tracker boxes).
"""
from __future__ import annotations

import numpy as np

from eval.frames import EPS, conflict_frames, frame_offsets, solve_frame
from eval.protocol import Prepared

THRESHOLD = 0.5
INTEGER_FIELDS = ("CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT", "PT", "ML", "Frag", "CLR_Frames")
SUMMED_FIELDS = INTEGER_FIELDS + ("MOTP_sum",)
FLOAT_FIELDS = ("MOTA", "MOTP", "MODA", "CLR_Re", "CLR_Pr", "MTR", "PTR", "MLR", "sMOTA", "CLR_F1",
                "FP_per_frame", "MOTAL", "MOTP_sum")


def _matches(p: Prepared) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Matched (frame, gt_id, trk_id, iou) of the whole sequence, sorted by frame."""
    e = p.edges.select(p.edges.iou >= THRESHOLD - EPS)
    matched = np.ones(len(e), bool)
    conflicts = conflict_frames(e, p.num_gt_dets, p.num_trk_dets)
    if len(conflicts):
        active = np.flatnonzero((np.bincount(p.gt_frame, minlength=p.num_frames) > 0)
                                & (np.bincount(p.trk_frame, minlength=p.num_frames) > 0))
        off = frame_offsets(e.frame, p.num_frames)
        g_off, t_off = frame_offsets(p.gt_frame, p.num_frames), frame_offsets(p.trk_frame, p.num_frames)
        prev_trk = np.full(p.num_gt_ids, -1)  # tracker id matched to each gt id in the previous active frame
        for f in conflicts:
            k = np.searchsorted(active, f)
            if k > 0:
                plo, phi = off[active[k - 1]], off[active[k - 1] + 1]
                sel = matched[plo:phi]
                prev_g, prev_t = p.gt_id[e.gt[plo:phi][sel]], p.trk_id[e.trk[plo:phi][sel]]
                prev_trk[prev_g] = prev_t
            lo, hi = off[f], off[f + 1]
            gid, tid = p.gt_id[e.gt[lo:hi]], p.trk_id[e.trk[lo:hi]]
            score = 1000 * (tid == prev_trk[gid]) + e.iou[lo:hi]
            matched[lo:hi] = solve_frame(e.gt[lo:hi] - g_off[f], e.trk[lo:hi] - t_off[f], score,
                                         (g_off[f + 1] - g_off[f], t_off[f + 1] - t_off[f]))
            if k > 0:
                prev_trk[prev_g] = -1
    e = e.select(matched)
    return e.frame, p.gt_id[e.gt], p.trk_id[e.trk], e.iou


def _previous(a: np.ndarray) -> np.ndarray:
    """Each element's predecessor (-1 before the first); same length as ``a`` for any length, even 0."""
    return np.concatenate(([-1], a[:-1]))[:len(a)]


def count(p: Prepared) -> dict:
    """Per-sequence CLEAR result (TrackEval fields, including its early-return values for empty input)."""
    res = {field: 0 for field in FLOAT_FIELDS + INTEGER_FIELDS}
    if p.num_trk_dets == 0:
        res.update(CLR_FN=p.num_gt_dets, ML=p.num_gt_ids, MLR=1.0)
        return res
    if p.num_gt_dets == 0:
        res.update(CLR_FP=p.num_trk_dets, MLR=1.0)
        return res
    frame, gid, tid, iou = _matches(p)
    tp = len(frame)
    # Active-frame index: TrackEval's "previous timestep" skips frames lacking gt or tracker boxes.
    active = (np.bincount(p.gt_frame, minlength=p.num_frames) > 0) & \
             (np.bincount(p.trk_frame, minlength=p.num_frames) > 0)
    step = np.cumsum(active)[frame]
    order = np.lexsort((step, gid))
    g, t, s = gid[order], tid[order], step[order]
    same_gt = g == _previous(g)  # ids are >= 0, so the first match never equals its -1 "predecessor"
    idsw = int(np.sum(same_gt & (t != _previous(t))))
    starts = ~(same_gt & (s == _previous(s) + 1))  # (re)starts of being tracked
    frag_count = np.bincount(g[starts], minlength=p.num_gt_ids)
    gt_count = np.bincount(p.gt_id, minlength=p.num_gt_ids)
    ratio = np.bincount(g, minlength=p.num_gt_ids)[gt_count > 0] / gt_count[gt_count > 0]
    mt = int(np.sum(ratio > 0.8))
    pt = int(np.sum(ratio >= 0.2)) - mt
    res.update(CLR_TP=tp, CLR_FN=p.num_gt_dets - tp, CLR_FP=p.num_trk_dets - tp, IDSW=idsw, MT=mt, PT=pt,
               ML=p.num_gt_ids - mt - pt, Frag=int(np.sum(frag_count[frag_count > 0] - 1)),
               MOTP_sum=float(np.sum(iou)), CLR_Frames=p.num_frames)
    return finalize(res)


def finalize(res: dict) -> dict:
    """Ratios from counts (TrackEval's ``_compute_final_fields``)."""
    tp, fn, fp, idsw = res["CLR_TP"], res["CLR_FN"], res["CLR_FP"], res["IDSW"]
    num_gt_ids = res["MT"] + res["ML"] + res["PT"]
    gt_dets = max(1.0, tp + fn)
    safe_log_idsw = np.log10(idsw) if idsw > 0 else idsw
    return {**res,
            "MTR": res["MT"] / max(1.0, num_gt_ids), "MLR": res["ML"] / max(1.0, num_gt_ids),
            "PTR": res["PT"] / max(1.0, num_gt_ids),
            "CLR_Re": tp / gt_dets, "CLR_Pr": tp / max(1.0, tp + fp),
            "MODA": (tp - fp) / gt_dets, "MOTA": (tp - fp - idsw) / gt_dets,
            "MOTP": res["MOTP_sum"] / max(1.0, tp), "sMOTA": (res["MOTP_sum"] - fp - idsw) / gt_dets,
            "CLR_F1": tp / max(1.0, tp + 0.5 * fn + 0.5 * fp),
            "FP_per_frame": fp / max(1.0, res["CLR_Frames"]),
            "MOTAL": (tp - fp - safe_log_idsw) / gt_dets}


def combine(results: list[dict]) -> dict:
    return finalize({field: sum(r[field] for r in results) for field in SUMMED_FIELDS})
