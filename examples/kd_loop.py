"""Distillation in your own training loop: KDHooks on a plain PyTorch loop, scaled as ``mot_kd.train`` does.

    python examples/kd_loop.py                      # distil runs/demo/teacher (from `make demo`) into a yolov5n
    python examples/kd_loop.py --teacher yolov5s    # an untrained teacher: shows the mechanics only

The data is MOTChallenge sequences under ``--data`` (default: the demo's synthetic set, generated when
missing). The loop is the minimum that distils at the trainer's strength: JDELoss returns a *sum* over the
batch's images (ultralytics' convention), ``kd()`` a *mean*, so ``kd_loss`` is multiplied by the batch size
before adding it; added unscaled it would distil ~batch-size times weaker than ``python -m mot_kd.train``.
The trainer adds what a real run needs on top (warm-up/cosine lr, accumulation to a nominal batch, EMA,
AMP, validation, resumable checkpoints); use it unless you have your own loop.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from loguru import logger

from mot_kd import KDHooks
from mot_kd.data import MOTSource, MOTTrainDataset, build_loader, generate_dataset
from mot_kd.errors import InputError, cli_entry
from mot_kd.models import JDELoss, build_model, load_checkpoint, save_checkpoint


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python examples/kd_loop.py", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", default="runs/demo/teacher/weights/best.pt",
                   help="teacher checkpoint (.pt), or an architecture name for an untrained teacher")
    p.add_argument("--student", default="yolov5n", help="student architecture (yolov5n/s/m/l/x, yolov5s-ghost)")
    p.add_argument("--kd", default="default", help="KD config: YAML path or shipped name (configs/kd/)")
    p.add_argument("--data", type=Path, default=Path("runs/demo/data"), help="MOTChallenge sequences")
    p.add_argument("--frames", type=int, default=100, help="frames per sequence if --data is generated (4 seqs)")
    p.add_argument("--imgsz", type=int, nargs=2, default=(320, 192), metavar=("W", "H"))
    p.add_argument("--id-dim", type=int, default=128, help="student embedding size")
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--epochs", type=int, default=12, help="12: the demo's KD student schedule (1 for a quick look)")
    p.add_argument("--lr", type=float, default=0.002, help="AdamW learning rate (configs/train/demo.yaml)")
    p.add_argument("--out", type=Path, default=Path("runs/kd_loop/student.pt"), help="the distilled student")
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    return p.parse_args(argv)


def load_teacher(name: str) -> torch.nn.Module:
    if Path(name).suffix == ".pt" or Path(name).is_file():
        if not Path(name).is_file():
            raise InputError(f"--teacher {name}: no such checkpoint; train one first (`make demo`, or python -m "
                             "mot_kd.train --model yolov5s --data demo --hyp demo --out runs/teacher) or pass "
                             "--teacher yolov5s for an untrained teacher")
        return load_checkpoint(name)
    logger.warning(f"--teacher {name}: an untrained teacher; the student learns nothing useful from it")
    return build_model(name)


def distil(args: argparse.Namespace) -> torch.nn.Module:
    """Distil, save the student to ``args.out`` and return it (hooks removed)."""
    torch.manual_seed(0)
    device, (width, height) = torch.device(args.device), args.imgsz
    teacher = load_teacher(args.teacher).to(device)  # a checkpoint, or an untrained architecture
    if not args.data.exists():
        generate_dataset(args.data, seqs=4, frames=args.frames, width=640, height=384, seed=0)
    dataset = MOTTrainDataset.from_sources([MOTSource(args.data, split="train_half", detector="all")],
                                           size=(width, height))
    student = build_model(args.student, id_dim=args.id_dim).to(device).train()
    criterion = JDELoss(student, dataset.num_ids).to(device)  # holds the ID classifier: train it too

    kd = KDHooks(teacher, student, args.kd, sample_input=torch.zeros(1, 3, height, width, device=device))
    params = [*student.parameters(), *criterion.parameters(), *kd.parameters()]  # kd: the adapters
    optimizer = torch.optim.AdamW(params, lr=args.lr)
    for epoch in range(args.epochs):
        for i, (images, targets) in enumerate(build_loader(dataset, args.batch, shuffle=True, seed=0, epoch=epoch)):
            images, targets = images.to(device), targets.to(device)
            out = student(images)                                 # hooks record the student's taps
            loss, parts = criterion(out, targets)                 # a sum over the batch's images
            kd_loss, kd_parts = kd(images, targets, epoch=epoch)  # a batch mean; runs the teacher (eval, no_grad)
            total = loss + kd_loss * images.shape[0]              # same scale as mot_kd.train
            optimizer.zero_grad()
            total.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)
            optimizer.step()
            print(f"epoch {epoch + 1} batch {i + 1}: loss {loss.item():.4g} kd_loss {kd_loss.item():.4g} ("
                  + ", ".join(f"{k} {v.item():.4g}" for k, v in kd_parts.items()) + ")", flush=True)
    kd.remove()                                                   # hooks gone, models untouched
    save_checkpoint(student, args.out, num_ids=dataset.num_ids, meta={"imgsz": [width, height]})
    logger.info(f"wrote {args.out}: python -m eval.mot17 --weights {args.out} --data-root {args.data} "
                "--split val_half")
    return student


def main(argv: list[str] | None = None) -> int:
    distil(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
