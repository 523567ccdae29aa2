"""Run the reference TrackEval (PyPI ``trackeval``) on the same data: for parity tests and the speed bench.

Not used by the evaluator itself; ``trackeval`` is a test-only dependency. This fork (1.3.0) no longer
uses the numpy aliases removed in numpy 2 (``np.float``...), so no monkey-patching is needed.
"""
from __future__ import annotations

import contextlib
import io
import tempfile
from pathlib import Path

import numpy as np

from eval.evaluate import EvalResult
from eval.protocol import SequenceData

#: TrackEval fields that are counts: compared exactly (everything else to a tolerance).
EXACT_FIELDS = {"HOTA_TP", "HOTA_FN", "HOTA_FP", "IDTP", "IDFN", "IDFP", "CLR_TP", "CLR_FN", "CLR_FP", "IDSW", "MT",
                "PT", "ML", "Frag", "CLR_Frames"}


def _write_rows(path: Path, rows: np.ndarray, frame_shift: int) -> None:
    if not path.parent.is_dir():
        path.parent.mkdir(parents=True)
    rows = np.asarray(rows, dtype=float)
    lines = [",".join([str(int(r[0] - frame_shift)), str(int(r[1]))] + [repr(float(v)) for v in r[2:]])
             for r in rows]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def write_trackeval_layout(sequences: list[SequenceData], root: Path, tracker: str = "ours",
                           flat_gt: bool = False) -> dict:
    """Write gt and tracker files where TrackEval expects them; returns its dataset config.

    ``flat_gt`` puts every gt file in one folder (``gt/<SEQ>.txt``, via TrackEval's ``GT_LOC_FORMAT``) instead
    of ``gt/<SEQ>/gt/gt.txt``: thousands of tiny sequences then cost no folder creation and removal.
    """
    seq_info = {}
    for seq in sequences:
        shift = seq.first_frame - 1  # TrackEval numbers timesteps from 1
        _write_rows(root / "gt" / (f"{seq.name}.txt" if flat_gt else f"{seq.name}/gt/gt.txt"), seq.gt, shift)
        _write_rows(root / "trackers" / tracker / "data" / f"{seq.name}.txt", seq.tracker, shift)
        seq_info[seq.name] = seq.num_frames
    config = {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"), "TRACKERS_TO_EVAL": [tracker],
              "SKIP_SPLIT_FOL": True, "SEQ_INFO": seq_info, "PRINT_CONFIG": False}
    return {**config, "GT_LOC_FORMAT": "{gt_folder}/{seq}.txt"} if flat_gt else config


def run_trackeval(dataset_config: dict, benchmark: str = "MOT17", do_preproc: bool = True) -> dict:
    """Evaluate with TrackEval; returns {seq or 'COMBINED': {'HOTA': {...}, 'CLEAR': {...}, 'Identity': {...}}}."""
    import trackeval  # test-only dependency

    config = {**dataset_config, "BENCHMARK": benchmark, "DO_PREPROC": do_preproc}
    evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "PRINT_RESULTS": False, "PRINT_CONFIG": False,
                                     "TIME_PROGRESS": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                                     "PLOT_CURVES": False, "BREAK_ON_ERROR": True, "LOG_ON_ERROR": None})
    metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR({"PRINT_CONFIG": False}),
               trackeval.metrics.Identity({"PRINT_CONFIG": False})]
    with contextlib.redirect_stdout(io.StringIO()):
        out, _ = evaluator.evaluate([trackeval.datasets.MotChallenge2DBox(config)], metrics)
    tracker = config["TRACKERS_TO_EVAL"][0]
    res = out["MotChallenge2DBox"][tracker]
    return {("COMBINED" if seq == "COMBINED_SEQ" else seq): per_cls["pedestrian"] for seq, per_cls in res.items()}


def trackeval_on(sequences: list[SequenceData], benchmark: str = "MOT17", do_preproc: bool = True) -> dict:
    """Convenience: write a temporary layout and run TrackEval on it."""
    with tempfile.TemporaryDirectory() as tmp:
        return run_trackeval(write_trackeval_layout(sequences, Path(tmp), flat_gt=True), benchmark, do_preproc)


def differences(ours: EvalResult, ref: dict, atol: float = 1e-12) -> list[str]:
    """Every field (per sequence and COMBINED, HOTA per alpha) where ours differs from TrackEval's ``ref``:
    counts exactly, ratios beyond ``atol``; plus the detection/id counts. Empty when they agree."""
    out = []
    for seq, metrics in ref.items():
        for metric in ("HOTA", "CLEAR", "Identity"):
            for name, value in metrics[metric].items():
                mine, theirs = np.asarray(ours.raw[seq][metric][name], float), np.asarray(value, float)
                tol = 0 if name in EXACT_FIELDS else atol
                if mine.shape != theirs.shape or not np.all(np.abs(mine - theirs) <= tol):
                    out.append(f"{seq} {metric}.{name}: ours {mine.tolist()}, TrackEval {theirs.tolist()}")
        mine = ours.sequences[seq] if seq != "COMBINED" else ours.combined
        for key in ("GT_Dets", "Dets", "GT_IDs", "IDs"):
            if mine[key] != metrics["Count"][key]:
                out.append(f"{seq} Count.{key}: ours {mine[key]}, TrackEval {metrics['Count'][key]}")
    return out
