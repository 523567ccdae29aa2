"""``python -m mot_kd.export --weights best.pt --format onnx|openvino [--imgsz W H] [--int8 --calib DATA_ROOT]
[--qat] [--dynamic] --out model.onnx``; ``python -m mot_kd.export --bench ...`` runs the deploy benchmark.

Everything is checked before the first byte is written: unknown format, an ``--out`` of the wrong type,
``--imgsz`` not a multiple of 32, ``--int8`` without calibration data, a damaged checkpoint.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from loguru import logger

from mot_kd.errors import InputError, cli_entry
from mot_kd.export.pipeline import FORMATS, Int8Settings, check_format, export_model
from mot_kd.export.quantize import DEFAULT_FP32, SENSITIVE

DEFAULT_IMGSZ = (1088, 608)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mot_kd.export", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="mot-kd model checkpoint (e.g. runs/kd_s/weights/best.pt)")
    p.add_argument("--format", default="onnx", help=f"{' or '.join(FORMATS)} (default onnx)")
    p.add_argument("--out", help="output file (.onnx / .xml; default: beside --weights)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("W", "H"),
                   help="fixed network input (default: the model's training size, else 1088 608)")
    p.add_argument("--dynamic", action="store_true", help="dynamic batch axis (the input size stays fixed)")
    p.add_argument("--int8", action="store_true", help="INT8 static quantization (QDQ, per-channel weights)")
    p.add_argument("--calib", help="--int8: MOTChallenge data root whose frames calibrate the activation ranges")
    p.add_argument("--calib-frames", type=int, default=64, help="--int8: calibration frames (spread evenly)")
    p.add_argument("--calib-method", default="minmax", help="--int8: minmax, percentile or entropy")
    p.add_argument("--keep-fp32", nargs="*", default=list(DEFAULT_FP32), metavar="GROUP",
                   help=f"--int8: layer groups kept in FP32: {', '.join(SENSITIVE)} (default: first; none: "
                        "quantize them all)")
    p.add_argument("--qat", action="store_true",
                   help="--int8: quantization-aware fine-tuning with KD from the FP32 model first (uses --calib's gt)")
    p.add_argument("--qat-steps", type=int, default=100, help="--qat: optimizer steps")
    p.add_argument("--qat-batch", type=int, default=4, help="--qat: batch size")
    p.add_argument("--qat-lr", type=float, default=1e-6,
                   help="--qat: AdamW learning rate (higher hurt here, docs/deploy.md)")
    p.add_argument("--kd", default="default", help="--qat: KD config (YAML path or shipped name)")
    return p.parse_args(argv)


def default_out(weights: Path, fmt: str, int8: bool) -> Path:
    stem = weights.stem + ("_int8" if int8 else "")
    return weights.with_name(stem + FORMATS[fmt])


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if "--bench" in argv:
        from mot_kd.export.bench import main as bench_main

        return bench_main([a for a in argv if a != "--bench"])
    args = parse_args(argv)
    from mot_kd.models import load_checkpoint
    from mot_kd.models.backends import backend_for
    from mot_kd.models.predict import check_imgsz

    check_format(args.format, args.out)
    if args.format == "openvino":
        from mot_kd.export.openvino_export import require_openvino

        require_openvino()
    if backend_for(args.weights) != "torch":
        raise InputError(f"--weights {args.weights}: export starts from a mot-kd checkpoint (.pt)")
    if args.imgsz is not None:
        try:
            check_imgsz(args.imgsz)
        except InputError as exc:
            raise InputError(f"--{exc}") from None  # imgsz: ... -> --imgsz: ...
    if (args.calib or args.qat) and not args.int8:
        raise InputError("--calib/--qat apply to INT8 only: add --int8")
    if args.int8 and not args.calib:
        raise InputError("--int8: needs calibration frames: --calib DATA_ROOT (MOTChallenge sequence folders)")
    model = load_checkpoint(args.weights)
    imgsz = check_imgsz(args.imgsz or model.meta.get("imgsz") or DEFAULT_IMGSZ)
    out = Path(args.out) if args.out else default_out(Path(args.weights), args.format, args.int8)
    int8 = None
    if args.int8:
        from mot_kd.export.quantize import calibration_frames, check_groups

        keep_fp32 = check_groups(args.keep_fp32)
        qat = None
        if args.qat:
            from mot_kd.export.qat import QATSettings

            qat = QATSettings(args.calib, imgsz, args.qat_steps, args.qat_batch, args.qat_lr, args.kd)
            qat.check()
        int8 = Int8Settings(calibration_frames(args.calib, args.calib_frames, imgsz), keep_fp32,
                            args.calib_method, qat)
    export_model(model, out, args.format, imgsz, args.dynamic, int8)
    logger.info(f"{args.weights} -> {out} ({args.format}, {'int8' if int8 else 'fp32'}, {imgsz[0]}x{imgsz[1]})")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
