"""HOTA (with DetA, AssA, LocA, ...), equal to TrackEval's ``HOTA``.

Two passes like TrackEval: (1) a global alignment score per gt-id/tracker-id pair from IoU-normalised
overlaps; (2) per frame, a Hungarian match maximising alignment x IoU, scored at every alpha in
``np.arange(0.05, 0.99, 0.05)``. Everything is accumulated over the sparse overlapping pairs only; the
solver runs only in frames where overlapping pairs compete for a box.
"""
from __future__ import annotations

import numpy as np

from eval.frames import EPS, frame_offsets, match_edges, numpy_sums
from eval.protocol import Prepared

ALPHAS = np.arange(0.05, 0.99, 0.05)
INTEGER_ARRAY_FIELDS = ("HOTA_TP", "HOTA_FN", "HOTA_FP")
FLOAT_ARRAY_FIELDS = ("HOTA", "DetA", "AssA", "DetRe", "DetPr", "AssRe", "AssPr", "LocA", "OWTA")
FLOAT_FIELDS = ("HOTA(0)", "LocA(0)", "HOTALocA(0)")


def _empty(p: Prepared) -> dict:
    res = {field: np.zeros(len(ALPHAS)) for field in FLOAT_ARRAY_FIELDS + INTEGER_ARRAY_FIELDS}
    res.update({field: 0 for field in FLOAT_FIELDS})
    res["HOTA_FN" if p.num_trk_dets == 0 else "HOTA_FP"] = \
        float(p.num_gt_dets if p.num_trk_dets == 0 else p.num_trk_dets) * np.ones(len(ALPHAS))
    res["LocA"] = np.ones(len(ALPHAS))
    res["LocA(0)"] = 1.0
    return res


def _frame_sums(p: Prepared) -> tuple[np.ndarray, np.ndarray]:
    """Each frame's IoU matrix summed over trackers (per gt row) and over gt (per tracker row), with numpy's
    exact summation order, so the alignment scores are bit-identical to TrackEval's."""
    e = p.edges
    g_off, t_off = frame_offsets(p.gt_frame, p.num_frames), frame_offsets(p.trk_frame, p.num_frames)
    n_g, n_t = np.diff(g_off), np.diff(t_off)
    row_sum = numpy_sums(e.gt, e.trk - t_off[e.frame], n_t[p.gt_frame], e.iou, p.num_gt_dets)
    # Summing over axis 0 adds rows in order (= bincount order), except for a single-column matrix, which
    # numpy sums like a vector (pairwise).
    col_sum = np.bincount(e.trk, weights=e.iou, minlength=p.num_trk_dets)
    single = n_t[e.frame] == 1
    if single.any():
        length = np.where(n_t == 1, n_g, 0)[p.trk_frame]
        fixed = numpy_sums(e.trk[single], e.gt[single] - g_off[e.frame[single]], length, e.iou[single],
                           p.num_trk_dets)
        col_sum[e.trk[single]] = fixed[e.trk[single]]
    return row_sum, col_sum


def count(p: Prepared) -> dict:
    if p.num_trk_dets == 0 or p.num_gt_dets == 0:
        return _empty(p)
    e = p.edges
    gid, tid = p.gt_id[e.gt], p.trk_id[e.trk]
    gt_count = np.bincount(p.gt_id, minlength=p.num_gt_ids).astype(float)
    trk_count = np.bincount(p.trk_id, minlength=p.num_trk_ids).astype(float)

    # Pass 1: global alignment score per (gt id, tracker id) cell that ever overlaps.
    row_sum, col_sum = _frame_sums(p)
    denom = col_sum[e.trk] + row_sum[e.gt] - e.iou
    sim_iou = np.where(denom > 0 + EPS, e.iou / np.where(denom > 0 + EPS, denom, 1.0), 0.0)
    cells, cell = np.unique(gid * p.num_trk_ids + tid, return_inverse=True)
    potential = np.bincount(cell, weights=sim_iou, minlength=len(cells))  # sums in frame order, like TrackEval
    cell_g, cell_t = cells // p.num_trk_ids, cells % p.num_trk_ids
    alignment = potential / (gt_count[cell_g] + trk_count[cell_t] - potential)

    # Pass 2: per-frame matching, then every alpha at once.
    matched = match_edges(e, alignment[cell] * e.iou, p.gt_frame, p.trk_frame, p.num_frames)
    iou, mcell = e.iou[matched], cell[matched]
    ok = iou[:, None] >= ALPHAS[None, :] - EPS  # (matches, alphas)
    tp = ok.sum(0).astype(float)
    loc = np.where(ok, iou[:, None], 0.0).sum(0)
    # Matches per cell and alpha: alphas are nested thresholds, so count by "last alpha passed", then cumsum.
    passed = ok.sum(1)
    hist = np.bincount(mcell * (len(ALPHAS) + 1) + passed, minlength=len(cells) * (len(ALPHAS) + 1))
    per_cell = np.cumsum(hist.reshape(len(cells), len(ALPHAS) + 1)[:, :0:-1], axis=1)[:, ::-1].astype(float)
    used = per_cell.any(1)
    mc = per_cell[used]
    union = gt_count[cell_g[used]][:, None] + trk_count[cell_t[used]][:, None] - mc
    res = {
        "HOTA_TP": tp, "HOTA_FN": p.num_gt_dets - tp, "HOTA_FP": p.num_trk_dets - tp,
        "AssA": np.sum(mc * (mc / np.maximum(1, union)), 0) / np.maximum(1, tp),
        "AssRe": np.sum(mc * (mc / np.maximum(1, gt_count[cell_g[used]][:, None])), 0) / np.maximum(1, tp),
        "AssPr": np.sum(mc * (mc / np.maximum(1, trk_count[cell_t[used]][:, None])), 0) / np.maximum(1, tp),
        "LocA": np.maximum(1e-10, loc) / np.maximum(1e-10, tp),
    }
    return finalize(res)


def finalize(res: dict) -> dict:
    tp, fn, fp = res["HOTA_TP"], res["HOTA_FN"], res["HOTA_FP"]
    out = dict(res)
    out["DetRe"] = tp / np.maximum(1, tp + fn)
    out["DetPr"] = tp / np.maximum(1, tp + fp)
    out["DetA"] = tp / np.maximum(1, tp + fn + fp)
    out["HOTA"] = np.sqrt(out["DetA"] * res["AssA"])
    out["OWTA"] = np.sqrt(out["DetRe"] * res["AssA"])
    out["HOTA(0)"] = out["HOTA"][0]
    out["LocA(0)"] = out["LocA"][0]
    out["HOTALocA(0)"] = out["HOTA(0)"] * out["LocA(0)"]
    return out


def combine(results: list[dict]) -> dict:
    res = {field: sum(r[field] for r in results) for field in INTEGER_ARRAY_FIELDS}
    for field in ("AssRe", "AssPr", "AssA"):
        res[field] = sum(r[field] * r["HOTA_TP"] for r in results) / np.maximum(1.0, res["HOTA_TP"])
    loca = sum(r["LocA"] * r["HOTA_TP"] for r in results)
    res["LocA"] = np.maximum(1e-10, loca) / np.maximum(1e-10, res["HOTA_TP"])
    return finalize(res)
