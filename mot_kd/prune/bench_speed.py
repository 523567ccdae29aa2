"""Does pruning buy real speed? Forward FPS of pruned copies against the unpruned model, next to their FLOPs.

``python -m mot_kd.prune.bench_speed --model yolov5s --targets 0.5 0.25 --imgsz 320 192 --rounds 20`` prunes
copies (BN-scale importance; speed depends on the widths, not on which channels go) and times one forward
of each per round, interleaved so machine load hits all alike (``mot_kd.models.bench_forward``). ``speed /
FLOPs`` is the measured speed-up over the FLOPs reduction factor (1.0: time falls exactly with FLOPs).
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys

import torch
from loguru import logger

from mot_kd.errors import InputError, cli_entry
from mot_kd.models import build_model, load_checkpoint
from mot_kd.models.bench_forward import time_models
from mot_kd.models.predict import check_imgsz
from mot_kd.prune.importance import importance_for
from mot_kd.prune.pipeline import check_target
from mot_kd.prune.structure import gflops, prune_to_gflops


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mot_kd.prune.bench_speed", description=__doc__.splitlines()[0])
    p.add_argument("--model", default="yolov5s", help="architecture to build (random weights), or use --weights")
    p.add_argument("--weights", help="a mot-kd checkpoint instead of --model")
    p.add_argument("--targets", type=float, nargs="+", default=[0.5, 0.25], help="FLOPs fractions to prune to")
    p.add_argument("--compare", nargs="*", default=["yolov5n"], help="unpruned architectures timed alongside")
    p.add_argument("--imgsz", nargs=2, type=int, default=(320, 192), metavar=("W", "H"))
    p.add_argument("--rounds", type=int, default=20)
    p.add_argument("--id-dim", type=int, default=512)
    p.add_argument("--device", default="cpu")
    p.add_argument("--round-to", type=int, help="keep pruned channel counts multiples of this (e.g. 8)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest on a loaded 2-core box)")
    args = p.parse_args(argv)
    if args.rounds < 1 or args.threads < 1:
        raise InputError(f"--rounds and --threads: must be >= 1, got {args.rounds} and {args.threads}")
    torch.set_num_threads(args.threads)
    targets = [check_target(t) for t in args.targets]
    imgsz = check_imgsz(args.imgsz)
    name = args.weights or args.model
    original = load_checkpoint(args.weights) if args.weights else build_model(args.model, id_dim=args.id_dim)
    base = gflops(original, imgsz)
    models = {name: original.eval()}
    for t in targets:
        pruned, _ = prune_to_gflops(original, importance_for("bn"), t * base, imgsz, f"--targets {t}",
                                    round_to=args.round_to)
        models[f"{name} pruned to {t:g}"] = pruned.eval()
    for other in args.compare:
        models[other] = build_model(other, id_dim=original.id_dim).eval()
    models = {k: m.to(args.device) for k, m in models.items()}
    logger.info(f"{len(models)} models at {imgsz[0]}x{imgsz[1]}, {args.rounds} rounds on {args.device} "
                f"({torch.get_num_threads()} threads), load average before {os.getloadavg()[0]:.2f}")
    times = time_models(models, torch.rand(1, 3, imgsz[1], imgsz[0], device=args.device), args.rounds, args.device)
    logger.info(f"load average after {os.getloadavg()[0]:.2f}")
    reference = times[name]
    print(f"| model | GFLOPs @ {imgsz[0]}x{imgsz[1]} | median ms | FPS | FLOPs reduction | speed-up | speed / FLOPs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for label, values in times.items():
        cost = gflops(models[label], imgsz)
        speedup = statistics.median(r / v for v, r in zip(values, reference))  # per round: robust to drifting load
        reduction = base / cost
        print(f"| {label} | {cost:.3f} | {statistics.median(values) * 1e3:.1f} | {1 / statistics.median(values):.1f} "
              f"| {reduction:.2f}x | {speedup:.2f}x | {speedup / reduction:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
