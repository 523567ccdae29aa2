"""``python -m trackers.track --weights CKPT --source VIDEO_OR_SEQ_DIR --out results.txt [--save-video]``.

Tracks a user's own video or MOTChallenge sequence folder with a trained mot-kd model and writes
MOTChallenge result lines; ``--save-video`` also renders the tracks (boxes coloured by id, trails).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loguru import logger

from mot_kd.errors import cli_entry
from mot_kd.models.backends import load_model
from mot_kd.utils.device import parse_device
from trackers.config import load_tracker_config
from trackers.runner import run_sequence


def model_detector(model, imgsz: tuple[int, int], conf: float, iou: float):
    """``detect(frame) -> (boxes, scores, embeddings)`` from a mot-kd model or exported file (anything with
    ``predict``, see :func:`mot_kd.models.backends.load_model`), for :func:`run_sequence`."""
    def detect(image):
        out = model.predict([image], imgsz=imgsz, conf=conf, iou=iou)[0]
        return out["boxes"], out["scores"], out["embeddings"]

    return detect


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trackers.track", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True,
                   help="mot-kd model: checkpoint (best.pt), ONNX (.onnx) or OpenVINO IR (.xml) from "
                        "python -m mot_kd.export; the backend follows the file type")
    p.add_argument("--source", required=True, help="a video file or a MOTChallenge sequence folder")
    p.add_argument("--out", required=True, help="result file to write (MOTChallenge format)")
    p.add_argument("--tracker", default="default", help="tracker config: YAML path or shipped name")
    p.add_argument("--imgsz", type=int, nargs=2, default=None, metavar=("W", "H"),
                   help="network input size (default: the size the model was trained at, else 1088 608)")
    p.add_argument("--conf", type=float, default=0.1, help="detection confidence threshold")
    p.add_argument("--iou", type=float, default=0.6, help="NMS IoU threshold")
    p.add_argument("--device", default="cpu", help="cpu, 0 or cuda:0")
    p.add_argument("--save-video", nargs="?", const="", default=None,
                   help="also render tracks: a .mp4 path or a folder for PNGs (default: beside --out)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    model = load_model(args.weights, parse_device(args.device))
    imgsz = tuple(args.imgsz or model.meta.get("imgsz") or (1088, 608))
    tracker_cfg = load_tracker_config(args.tracker)
    video = None
    if args.save_video is not None:
        video = Path(args.save_video) if args.save_video else Path(args.out).with_suffix(".mp4")
    detect = model_detector(model, imgsz, args.conf, args.iou)
    summary = run_sequence(detect, args.source, args.out, tracker_cfg, save_video=video)
    logger.info(f"{summary['frames']} frames, {summary['tracks']} tracks, {summary['fps']:.1f} FPS "
                f"(model + association) -> {args.out}" + (f", video {video}" if video else ""))
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
