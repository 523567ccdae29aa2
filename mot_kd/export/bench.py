"""``python -m mot_kd.export --bench --teacher T.pt --student S.pt --data-root DATA``: deployment, side by side.

One run, the same frames, threads pinned: teacher PyTorch FP32, student PyTorch FP32, student ONNX FP32,
student ONNX INT8 (PTQ), student INT8 (QAT+KD, then the same quantizer) and, when installed, OpenVINO FP32 and
INT8; tracking FPS (model + association, as ``eval.mot17 --weights``) and HOTA/IDF1/MOTA. Calibration and
QAT use the ``train_half`` frames, evaluation the ``val_half`` (by default). Writes ``OUT/deploy_bench.md``,
``.png`` (accuracy vs FPS) and ``.json``. A composition root like ``mot_kd.bench``: it imports ``eval``.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch
from loguru import logger

from eval.model_run import RunSettings, track_and_evaluate
from mot_kd.errors import InputError
from mot_kd.export.pipeline import Int8Settings, export_model
from mot_kd.export.qat import QATSettings
from mot_kd.export.quantize import DEFAULT_FP32, calibration_frames, check_groups
from mot_kd.models import load_checkpoint
from mot_kd.models.backends import load_model
from mot_kd.models.predict import check_imgsz
from mot_kd.utils.io import atomic_write_text


def cpu_name() -> str:
    """The CPU model as ``lscpu`` names it (``/proc/cpuinfo``), else platform's guess."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def parse_args(argv):
    p = argparse.ArgumentParser(prog="python -m mot_kd.export --bench", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="teacher checkpoint (.pt)")
    p.add_argument("--student", required=True, help="student checkpoint (.pt)")
    p.add_argument("--data-root", required=True, help="MOTChallenge sequences (calibration, QAT and evaluation)")
    p.add_argument("--eval-split", default="val_half", help="frames evaluated (default val_half)")
    p.add_argument("--calib-split", default="train_half", help="frames for calibration and QAT (default train_half)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("W", "H"), help="default: the student's training size")
    p.add_argument("--threads", type=int, default=1, help="intra-op threads of every runtime (default 1)")
    p.add_argument("--calib-frames", type=int, default=64)
    p.add_argument("--keep-fp32", nargs="*", default=list(DEFAULT_FP32), metavar="GROUP",
                   help="INT8 layer groups kept in FP32 (default: first)")
    p.add_argument("--qat-steps", type=int, default=100)
    p.add_argument("--qat-batch", type=int, default=4)
    p.add_argument("--qat-lr", type=float, default=1e-6)
    p.add_argument("--conf", type=float, default=0.1)
    p.add_argument("--iou", type=float, default=0.6)
    p.add_argument("--work", default="runs/deploy_bench", help="exported models and result files")
    p.add_argument("--out", default="docs", help="folder for deploy_bench.md/.png/.json")
    return p.parse_args(argv)


def build_variants(args, imgsz) -> list[tuple[str, str]]:
    """Export the student variants into ``args.work``; returns ``[(label, model file)]`` in table order."""
    work = Path(args.work)
    student = load_checkpoint(args.student)
    frames = calibration_frames(args.data_root, args.calib_frames, imgsz, args.calib_split)
    keep = check_groups(args.keep_fp32)
    qat = QATSettings(args.data_root, imgsz, args.qat_steps, args.qat_batch, args.qat_lr, split=args.calib_split)
    files = {"fp32": work / "student_fp32.onnx", "ptq": work / "student_int8_ptq.onnx",
             "qat": work / "student_int8_qat_kd.onnx"}
    export_model(student, files["fp32"], "onnx", imgsz)
    export_model(student, files["ptq"], "onnx", imgsz, int8=Int8Settings(frames, keep))
    export_model(student, files["qat"], "onnx", imgsz, int8=Int8Settings(frames, keep, qat=qat))
    variants = [("teacher PyTorch FP32", args.teacher), ("student PyTorch FP32", args.student),
                ("student ONNX FP32", str(files["fp32"])), ("student ONNX INT8 PTQ", str(files["ptq"])),
                ("student ONNX INT8 QAT+KD", str(files["qat"]))]
    if importlib.util.find_spec("openvino") is not None:
        from mot_kd.export.openvino_export import onnx_to_openvino

        for key, label in (("fp32", "FP32"), ("ptq", "INT8 PTQ")):
            xml = onnx_to_openvino(files[key], work / "openvino" / f"{files[key].stem}.xml")
            variants.append((f"student OpenVINO {label}", str(xml)))
    return variants


def run_variant(label: str, weights: str, args, imgsz) -> dict:
    model = load_model(weights, "cpu", args.threads)
    for _ in range(3):  # warm-up: first-call allocations and kernel selection stay out of the timed frames
        model.predict([np.zeros((imgsz[1], imgsz[0], 3), np.uint8)], imgsz=imgsz, conf=args.conf, iou=args.iou)
    load_before = os.getloadavg()[0]
    settings = RunSettings(tuple(imgsz), args.conf, args.iou)
    results = Path(args.work) / "results" / label.replace(" ", "_").replace("+", "")
    start = time.perf_counter()
    result, _, speed = track_and_evaluate(model, args.data_root, results, args.eval_split, "all", None, settings)
    m = result.combined
    row = {"variant": label, "weights": weights, "fps": speed["fps"], "frames": speed["frames"],
           "ms_per_frame": 1e3 / speed["fps"] if speed["fps"] else None, "HOTA": 100 * m["HOTA"],
           "IDF1": 100 * m["IDF1"], "MOTA": 100 * m["MOTA"], "load": [load_before, os.getloadavg()[0]],
           "wall_s": time.perf_counter() - start, "size_mb": _size_mb(weights)}
    logger.info(f"{label}: {row['fps']:.1f} FPS, HOTA {row['HOTA']:.2f} IDF1 {row['IDF1']:.2f} MOTA {row['MOTA']:.2f}")
    return row


def _size_mb(weights: str) -> float:
    path = Path(weights)
    return sum(p.stat().st_size for p in (path, path.with_suffix(".bin")) if p.is_file()) / 1e6


def goals(rows: list[dict]) -> list[str]:
    """The issue's goals, met or missed by how much, from the measured rows."""
    by = {r["variant"]: r for r in rows}
    pt, teacher, onnx = by["student PyTorch FP32"], by["teacher PyTorch FP32"], by["student ONNX FP32"]
    checks = [("student ONNX FP32 speed over PyTorch FP32", onnx["fps"] / pt["fps"], 1.0, "x")]
    for int8 in (by["student ONNX INT8 PTQ"], by["student ONNX INT8 QAT+KD"]):
        checks += [(f"{int8['variant']} speed-up over student PyTorch FP32", int8["fps"] / pt["fps"], 2.0, "x"),
                   (f"{int8['variant']} IDF1 lost", pt["IDF1"] - int8["IDF1"], 1.0, " points"),
                   (f"{int8['variant']} MOTA lost", pt["MOTA"] - int8["MOTA"], 1.0, " points"),
                   (f"{int8['variant']} speed-up over teacher PyTorch FP32", int8["fps"] / teacher["fps"], 6.0, "x")]
    lines = []
    for name, value, target, unit in checks:
        higher = unit == "x"
        met = value >= target if higher else value <= target
        lines.append(f"- {name}: {value:.2f}{unit} (goal {'>=' if higher else '<='} {target:g}{unit}): "
                     + ("met" if met else f"missed by {abs(value - target):.2f}{unit}"))
    return lines


def write_report(rows: list[dict], info: dict, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    head = ("| variant | FPS | ms/frame | HOTA | IDF1 | MOTA | file MB | load 1-min (start/end) |\n"
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |\n")
    body = "".join(f"| {r['variant']} | {r['fps']:.1f} | {r['ms_per_frame']:.1f} | {r['HOTA']:.2f} | {r['IDF1']:.2f} "
                   f"| {r['MOTA']:.2f} | {r['size_mb']:.1f} | {r['load'][0]:.1f} / {r['load'][1]:.1f} |\n"
                   for r in rows)
    text = (f"# Deploy benchmark\n\n`python -m mot_kd.export --bench {info['argv']}`\n\n"
            f"CPU: {info['cpu']} ({info['cores']} cores), {info['threads']} intra-op thread(s) per runtime "
            f"(torch, ONNX Runtime, OpenVINO); {info['frames']} frames ({info['eval_split']}) at "
            f"{info['imgsz'][0]}x{info['imgsz'][1]}; FPS = frames / (model + association), image decoding "
            f"excluded; measured {info['date']}.\n\n{head}{body}\n## Goals\n\n" + "\n".join(goals(rows)) + "\n")
    atomic_write_text(out / "deploy_bench.md", text)
    atomic_write_text(out / "deploy_bench.json", json.dumps({"info": info, "rows": rows}, indent=2))
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r, marker in zip(rows, "osD^v<>ph"):
        ax.scatter(r["fps"], r["IDF1"], s=50, marker=marker, label=f"{r['variant']} ({r['fps']:.1f} FPS)")
    ax.legend(fontsize=7, loc="lower right")
    ax.set_xlabel(f"tracking FPS ({info['threads']} thread(s), {info['cpu']})")
    ax.set_ylabel("IDF1 (%)")
    ax.set_title("Deployment: accuracy vs speed")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    tmp = out / ".deploy_bench.png.tmp.png"
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, out / "deploy_bench.png")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads < 1:
        raise InputError(f"--threads: expected at least 1, got {args.threads}")
    for name in ("teacher", "student"):
        if not Path(getattr(args, name)).is_file():
            raise InputError(f"--{name} {getattr(args, name)}: no such checkpoint")
    torch.set_num_threads(args.threads)
    imgsz = check_imgsz(args.imgsz or load_checkpoint(args.student).meta.get("imgsz") or (1088, 608))
    variants = build_variants(args, imgsz)
    rows = [run_variant(label, weights, args, imgsz) for label, weights in variants]
    info = {"cpu": cpu_name(), "cores": os.cpu_count(), "threads": args.threads, "imgsz": list(imgsz),
            "eval_split": args.eval_split, "frames": rows[0]["frames"], "date": time.strftime("%Y-%m-%d %H:%M UTC",
                                                                                        time.gmtime()),
            "argv": " ".join(argv or []), "torch": torch.__version__}
    write_report(rows, info, Path(args.out))
    print("\n".join(goals(rows)))
    return 0
