"""Run a detector-embedder + the tracker over evaluation sequences, then evaluate: one call for training
validation, ``python -m eval.mot17 --weights`` and the benchmark.

FPS is frames / (model time + association time): image decoding is excluded, and ``predict`` returns host
arrays, which synchronises CUDA before the clock stops.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from eval.evaluate import EvalResult, evaluate
from eval.loading import Protocol, load_gt, load_results
from mot_kd.data.motchallenge import unique_by_gt
from trackers import load_tracker_config, run_sequence
from trackers.track import model_detector


@dataclass(frozen=True)
class RunSettings:
    """How the model is run on frames and tracked."""

    imgsz: tuple[int, int] = (1088, 608)
    conf: float = 0.1  # low: the tracker's third stage recovers low-score boxes itself
    iou: float = 0.6
    tracker: str | Path | dict = "default"


def track_and_evaluate(model, data_root: str | Path, results_dir: str | Path, split: str = "val_half",
                       detector: str = "FRCNN", sequences: list[str] | None = None,
                       settings: RunSettings = RunSettings(), benchmark: str = "MOT17",
                       video_dir: str | Path | None = None) -> tuple[EvalResult, Protocol, dict]:
    """Track every selected sequence on ``split`` frames, write ``results_dir/<SEQ>.txt``, evaluate.

    ``model`` is anything with ``predict``: a JDEModel or a backend of :func:`mot_kd.models.backends.load_model`.

    Returns the evaluation, its protocol and a speed summary ``{frames, detect_s, associate_s, fps}``.
    """
    gts = load_gt(data_root, split, detector, sequences)
    one_copy = {s.name for s in unique_by_gt([g.seq for g in gts])}  # MOT17 --detector all: track one copy
    gts = [g for g in gts if g.name in one_copy]
    tracker_cfg = load_tracker_config(settings.tracker)
    detect = model_detector(model, settings.imgsz, settings.conf, settings.iou)
    results_dir = Path(results_dir)
    frames = detect_s = associate_s = 0.0
    for gt in gts:
        video = Path(video_dir) / f"{gt.name}.mp4" if video_dir else None
        summary = run_sequence(detect, gt.seq.path, results_dir / f"{gt.name}.txt", tracker_cfg,
                               save_video=video, frame_range=(gt.first, gt.last))
        frames += summary["frames"]
        detect_s += summary["detect_s"]
        associate_s += summary["associate_s"]
    loaded, numbering = load_results(gts, results_dir)
    result = evaluate(loaded, benchmark, workers=1)  # no fork of a process holding torch's threads
    total = detect_s + associate_s
    speed = {"frames": int(frames), "detect_s": detect_s, "associate_s": associate_s,
             "fps": frames / total if total > 0 else 0.0}
    return result, Protocol(benchmark, split, detector, numbering), speed
