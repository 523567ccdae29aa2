"""Make py-motmetrics 1.4.0 run on numpy 2: it calls ``np.asfarray`` (removed in numpy 2.0) in
``motmetrics.distances.iou_matrix``. Only the speed bench and the tests that document where motmetrics
differs from TrackEval import motmetrics; they call :func:`patch_numpy_for_motmetrics` first.
"""
from __future__ import annotations

import numpy as np


def _asfarray(a, dtype=np.float64):
    """numpy 1.x semantics: float array, keeping float dtypes, anything else becomes float64."""
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.inexact):
        dtype = np.dtype(np.float64)
    return np.asarray(a, dtype=dtype)


def patch_numpy_for_motmetrics() -> None:
    """Install ``np.asfarray`` if this numpy lacks it (idempotent, no-op on numpy 1.x)."""
    if not hasattr(np, "asfarray"):
        np.asfarray = _asfarray


def motmetrics_mot_challenge(gt_files: dict[str, str], result_files: dict[str, str]) -> dict:
    """Run py-motmetrics the way its ``eval_motchallenge`` app does; returns {seq or 'COMBINED': metrics}."""
    patch_numpy_for_motmetrics()
    import motmetrics as mm

    names, accs = [], []
    for name, gt_file in gt_files.items():
        gt = mm.io.loadtxt(gt_file, fmt="mot15-2D", min_confidence=1)
        res = mm.io.loadtxt(result_files[name], fmt="mot15-2D")
        accs.append(mm.utils.compare_to_groundtruth(gt, res, "iou", distth=0.5))
        names.append(name)
    mh = mm.metrics.create()
    summary = mh.compute_many(accs, names=names, metrics=mm.metrics.motchallenge_metrics, generate_overall=True)
    keys = {"idf1": "IDF1", "idp": "IDP", "idr": "IDR", "recall": "recall", "precision": "precision",
            "mostly_tracked": "MT", "partially_tracked": "PT", "mostly_lost": "ML", "num_false_positives": "FP",
            "num_misses": "FN", "num_switches": "IDSW", "num_fragmentations": "Frag", "mota": "MOTA",
            "motp": "MOTP"}
    out = {}
    for row_name, row in summary.iterrows():
        values = {keys[k]: row[k] for k in keys if k in row}
        values["MOTP"] = 1 - values["MOTP"]  # motmetrics reports mean IoU *distance*
        out["COMBINED" if row_name == "OVERALL" else row_name] = values
    return out
