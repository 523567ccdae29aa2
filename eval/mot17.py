"""Command line: ``python -m eval.mot17 --data-root DIR --results RES [--split ...] [--json OUT.json]``.

Prints HOTA/CLEAR/Identity per sequence and COMBINED, exactly as TrackEval computes them. With
``--weights CKPT`` it first runs the model + tracker on every sequence (writing ``--results``) and also
reports tracking FPS (model forward + association, image decoding excluded).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from loguru import logger

from eval.loading import MISSING, describe_numbering, evaluate_folder
from eval.protocol import BENCHMARKS
from eval.report import format_table, write_csv, write_json
from mot_kd.data.motchallenge import DETECTORS, SPLITS
from mot_kd.errors import InputError, cli_entry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eval.mot17", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="sequence folders, or a MOT17/MOT20 root with train/")
    parser.add_argument("--results", help="folder of <SEQ>.txt files in MOTChallenge format (written with --weights; "
                                           "default there: runs/eval/<run>-<checkpoint>)")
    parser.add_argument("--weights", help="mot-kd model (.pt checkpoint, .onnx or OpenVINO .xml from mot_kd.export): "
                                           "track every sequence first, then evaluate")
    parser.add_argument("--imgsz", type=int, nargs=2, metavar=("W", "H"),
                        help="--weights: network input (default: the model's training size)")
    parser.add_argument("--conf", type=float, default=0.1, help="--weights: detection confidence threshold")
    parser.add_argument("--iou", type=float, default=0.6, help="--weights: NMS IoU threshold")
    parser.add_argument("--tracker", default="default", help="--weights: tracker config (YAML or shipped name)")
    parser.add_argument("--device", default="cpu", help="--weights: cpu or cuda:0")
    parser.add_argument("--save-video", action="store_true", help="--weights: render tracks to <results>/videos/")
    parser.add_argument("--split", default="full", choices=SPLITS)
    parser.add_argument("--benchmark", default="MOT17", choices=BENCHMARKS)
    parser.add_argument("--detector", default="FRCNN", choices=(*DETECTORS, "all"),
                        help="which MOT17 copy to evaluate (the three share gt)")
    parser.add_argument("--seqs", nargs="+", metavar="NAME",
                        help="evaluate only these sequences of the data root (full names, or MOT17-02 for the "
                             "--detector copy)")
    parser.add_argument("--missing", default="error", choices=MISSING,
                        help="a sequence without <SEQ>.txt in --results: stop with an error (default, like "
                             "TrackEval) or count it as empty (no boxes)")
    parser.add_argument("--workers", type=int, metavar="N",
                        help="processes for the sequences (1: in this process; default: one per idle CPU, up to one "
                             "per sequence, when there are several sequences and enough boxes for it to pay); "
                             "not with --weights")
    parser.add_argument("--json", help="write {combined, sequences, protocol} here")
    parser.add_argument("--csv", help="write one row per sequence plus COMBINED here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    extra = {}
    if args.workers is not None and args.workers < 1:
        raise InputError(f"--workers {args.workers}: must be at least 1 (1 evaluates in this process)")
    if args.workers is not None and args.weights:
        raise InputError("--workers applies to evaluating a --results folder only: with --weights the sequences "
                         "are scored in this process, which holds torch (drop --workers)")
    if args.weights:
        result, protocol, speed = run_weights(args)
        extra = {"fps": speed["fps"], "speed": speed, "weights": args.weights}
    elif args.results:
        result, protocol = evaluate_folder(args.data_root, args.results, args.split, args.benchmark, args.detector,
                                           progress=True, seqs=args.seqs, missing=args.missing,
                                           workers=args.workers)
    else:
        raise InputError("--results is required (or --weights to track with a model first)")
    logger.info(f"{len(result.sequences)} sequences, {args.benchmark} protocol, split {args.split}, "
                f"results use {describe_numbering(protocol.numbering)} "
                f"({time.perf_counter() - start:.2f} s)")
    print(format_table(result))
    if extra:
        print(f"FPS {extra['fps']:.1f} (model + association over {extra['speed']['frames']} frames)")
    if args.json:
        write_json(args.json, result, protocol.as_dict(), extra)
        logger.info(f"wrote {args.json}")
    if args.csv:
        write_csv(args.csv, result)
        logger.info(f"wrote {args.csv}")
    return 0


def run_weights(args: argparse.Namespace):
    """Track with the checkpoint, then evaluate (model loading kept out of the plain evaluation path)."""
    from eval.model_run import RunSettings, track_and_evaluate
    from mot_kd.models.backends import load_model
    from mot_kd.utils.device import parse_device

    model = load_model(args.weights, parse_device(args.device))
    imgsz = tuple(args.imgsz or model.meta.get("imgsz") or (1088, 608))
    weights = Path(args.weights).resolve()
    results = Path(args.results) if args.results else Path("runs/eval") / f"{weights.parent.parent.name}-{weights.stem}"
    settings = RunSettings(imgsz, args.conf, args.iou, args.tracker)
    video_dir = results / "videos" if args.save_video else None
    logger.info(f"tracking with {args.weights} at {imgsz[0]}x{imgsz[1]} -> {results}")
    return track_and_evaluate(model, args.data_root, results, args.split, args.detector, args.seqs, settings,
                              args.benchmark, video_dir)


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
