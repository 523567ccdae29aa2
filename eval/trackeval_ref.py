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

from eval.protocol import SequenceData


def _write_rows(path: Path, rows: np.ndarray, frame_shift: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = np.asarray(rows, dtype=float)
    lines = [",".join([str(int(r[0] - frame_shift)), str(int(r[1]))] + [repr(float(v)) for v in r[2:]])
             for r in rows]
    path.write_text("\n".join(lines) + ("\n" if lines else ""))


def write_trackeval_layout(sequences: list[SequenceData], root: Path, tracker: str = "ours") -> dict:
    """Write gt and tracker files where TrackEval expects them; returns its dataset config."""
    seq_info = {}
    for seq in sequences:
        shift = seq.first_frame - 1  # TrackEval numbers timesteps from 1
        _write_rows(root / "gt" / seq.name / "gt" / "gt.txt", seq.gt, shift)
        _write_rows(root / "trackers" / tracker / "data" / f"{seq.name}.txt", seq.tracker, shift)
        seq_info[seq.name] = seq.num_frames
    return {"GT_FOLDER": str(root / "gt"), "TRACKERS_FOLDER": str(root / "trackers"),
            "TRACKERS_TO_EVAL": [tracker], "SKIP_SPLIT_FOL": True, "SEQ_INFO": seq_info, "PRINT_CONFIG": False}


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
        return run_trackeval(write_trackeval_layout(sequences, Path(tmp)), benchmark, do_preproc)
