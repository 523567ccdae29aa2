"""The timed part of scripts/gpu_check.sh: forward FPS, tracking FPS and AMP+KD training steps, one JSON.

Fresh weights throughout (no downloads): forward and training speed do not depend on the weights; tracking FPS
with fresh weights has few boxes to associate, so it is the model-side bound (pass --weights for a trained one).
"""
from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from mot_kd.utils.io import atomic_write_text


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def forward_fps(model, arch: str, device, imgsz, batch: int, amp: bool, iters: int) -> dict:
    x = torch.rand(batch, 3, imgsz[1], imgsz[0], device=device)
    with torch.no_grad(), torch.autocast(device.type, dtype=torch.float16 if device.type == "cuda" else torch.bfloat16,
                                         enabled=amp):
        for _ in range(2):
            model(x)
        sync(device)
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync(device)
    seconds = (time.perf_counter() - start) / iters
    return {"arch": arch, "imgsz": list(imgsz), "batch": batch, "amp": amp, "ms_per_batch": 1e3 * seconds,
            "images_per_s": batch / seconds}


def tracking_fps(device, imgsz, frames: int, weights: str | None, arch: str) -> dict:
    from mot_kd.data.synthetic import generate_dataset
    from mot_kd.models import build_model
    from mot_kd.models.backends import load_model
    from trackers.runner import run_sequence
    from trackers.track import model_detector

    model = load_model(weights, device) if weights else build_model(arch, id_dim=512).to(device).eval()
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(Path(tmp) / "data", 1, frames, imgsz[0], imgsz[1], seed=0, progress=False)
        summary = run_sequence(model_detector(model, imgsz, 0.1, 0.6), Path(tmp) / "data" / "SYN-01",
                               Path(tmp) / "out.txt")
    return {"model": weights or f"{arch} (fresh weights)", "imgsz": list(imgsz), "frames": summary["frames"],
            "fps": summary["fps"], "detections": summary["detections"]}


def amp_kd_steps(device, imgsz, steps: int, batch: int, teacher_arch: str, student_arch: str) -> dict:
    """``steps`` AMP training steps of a student with JDE loss + KD from a teacher (yolov5l -> yolov5s)."""
    from mot_kd.data.dataset import MOTSource, MOTTrainDataset, build_loader
    from mot_kd.data.synthetic import generate_dataset
    from mot_kd.kd import KDHooks
    from mot_kd.models import JDELoss, build_model

    teacher = build_model(teacher_arch, id_dim=512).to(device)
    student = build_model(student_arch, id_dim=512).to(device).train()
    with tempfile.TemporaryDirectory() as tmp:
        generate_dataset(Path(tmp) / "data", 1, max(batch, 8), imgsz[0], imgsz[1], seed=0, progress=False)
        dataset = MOTTrainDataset.from_sources([MOTSource(Path(tmp) / "data", split="full", detector="all")],
                                               tuple(imgsz))
        criterion = JDELoss(student, max(dataset.num_ids, 2)).to(device)
        kd = KDHooks(teacher, student, "default")
        kd.to(device)
        params = [*student.parameters(), *criterion.parameters(), *kd.parameters()]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        scaler = torch.amp.GradScaler(device.type, enabled=device.type == "cuda")
        batches = [(i.to(device), t.to(device)) for i, t in build_loader(dataset, batch, shuffle=False)]
        losses, start = [], None
        for step in range(steps + 1):  # step 0 is the warm-up, not timed
            if step == 1:
                sync(device)
                start = time.perf_counter()
            images, targets = batches[step % len(batches)]
            with torch.autocast(device.type, dtype=torch.float16, enabled=device.type == "cuda"):
                loss, _ = criterion(student(images), targets)
                kd_loss, _ = kd(images, targets)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss + kd_loss * images.shape[0]).backward()
            scaler.step(optimizer)
            scaler.update()
            losses.append(float(loss.detach()))
        sync(device)
    seconds = (time.perf_counter() - start) / max(steps, 1)
    return {"teacher": teacher_arch, "student": student_arch, "imgsz": list(imgsz), "batch": batch, "steps": steps,
            "ms_per_step": 1e3 * seconds, "loss_first": losses[0], "loss_last": losses[-1],
            "max_memory_gb": torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", required=True)
    p.add_argument("--cpu-smoke", action="store_true", help="CPU, toy sizes: checks the script, not a GPU")
    p.add_argument("--weights", help="a trained model for the tracking FPS (default: fresh yolov5s)")
    p.add_argument("--pytest-rc", default="not run")
    p.add_argument("--pytest-log")
    p.add_argument("--install-s", type=float, default=0.0)
    args = p.parse_args()
    if not args.cpu_smoke and not torch.cuda.is_available():
        raise SystemExit("error: no CUDA device (use --cpu-smoke to check the script on a CPU)")
    device = torch.device("cpu" if args.cpu_smoke else "cuda")
    if args.cpu_smoke:  # the plumbing only: the smallest model everywhere, toy sizes, one iteration
        imgsz, batches, iters, archs = (64, 64), (1, 2), 1, ("yolov5n",)
        frames, steps, batch = 2, 1, 2
    else:
        imgsz, batches, iters, archs = (1088, 608), (1, 16), 20, ("yolov5l", "yolov5s")
        frames, steps, batch = 100, 50, 8
    report = {"device": "cpu" if args.cpu_smoke else torch.cuda.get_device_name(0), "smoke": args.cpu_smoke,
              "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version(),
              "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "install_and_tests_s": args.install_s,
              "pytest_cuda_rc": args.pytest_rc,
              "pytest_cuda_tail": Path(args.pytest_log).read_text()[-600:] if args.pytest_log else None,
              "forward": [], "tracking": None, "train_amp_kd": None}
    from mot_kd.models import build_model

    for arch in archs:
        model = build_model(arch, id_dim=512).to(device).eval()
        for amp in (False, True):
            for b in batches:
                report["forward"].append(forward_fps(model, arch, device, imgsz, b, amp, iters))
                print(json.dumps(report["forward"][-1]), flush=True)
        del model
    report["tracking"] = tracking_fps(device, imgsz, frames, args.weights, archs[-1])
    print(json.dumps(report["tracking"]), flush=True)
    report["train_amp_kd"] = amp_kd_steps(device, imgsz, steps, batch, archs[0], archs[-1])
    print(json.dumps(report["train_amp_kd"]), flush=True)
    atomic_write_text(args.out, json.dumps(report, indent=2, default=lambda v: np.asarray(v).tolist()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
