"""``python -m mot_kd.nas space|supernet|search|retrain``: the one-shot architecture search (docs/nas.md).

space: validate a search space and cost it; supernet: train the weight-sharing supernet with KD from a
teacher (resumable); search: evolutionary search under a GFLOPs / latency budget, scored by tracking on the
data config's val (tune) sequences; retrain: the chosen candidate from scratch with KD through mot_kd.train.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from mot_kd.errors import InputError, cli_entry
from mot_kd.nas.cost import candidate_cost, check_budget
from mot_kd.nas.space import load_space
from mot_kd.nas.steps import load_preset, retrain, run_search, run_supernet


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m mot_kd.nas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    space = sub.add_parser("space", help="validate a search space, print its smallest and sampled candidates")
    space.add_argument("--space", default="space", help="configs/nas/<name>.yaml or a path (default: space)")
    space.add_argument("--budget-gflops", type=float, default=None)
    space.add_argument("--samples", type=int, default=5)
    space.add_argument("--seed", type=int, default=0)
    space.add_argument("--json", action="store_true", help="print each sampled candidate dict as a JSON line too")
    for name in ("supernet", "search"):
        p = sub.add_parser(name)
        p.add_argument("--preset", default="smoke", help="configs/nas/presets/<name>.yaml or a path (smoke, cpu)")
        p.add_argument("--out", required=True, help="run folder")
        p.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                       help="override a preset value, e.g. supernet.steps=10 (JSON values)")
        p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: on 2 shared cores more "
                       "threads were ~10x slower per step here, docs/nas.md)")
    sub.choices["supernet"].add_argument("--teacher", required=True, help="trained teacher checkpoint (best.pt)")
    sub.choices["supernet"].add_argument("--resume", action="store_true", help="continue OUT/weights/last.pt")
    sub.choices["search"].add_argument("--supernet", required=True, help="supernet run folder (its weights/last.pt)")
    again = sub.add_parser("retrain", help="train the chosen candidate from scratch with KD (mot_kd.train)")
    again.add_argument("--candidate", required=True, help="a candidate JSON (search's OUT/best.json)")
    again.add_argument("--out", required=True)
    again.add_argument("train_args", nargs=argparse.REMAINDER,
                    help="after '--': mot_kd.train arguments (--teacher, --data, --epochs, ...)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "space":
        return _space(args)
    if args.command == "retrain":
        extra = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
        return retrain(args.candidate, args.out, extra)
    if args.threads < 1:
        raise InputError(f"--threads: expected >= 1, got {args.threads}")
    torch.set_num_threads(args.threads)
    preset = load_preset(args.preset, args.set)
    if args.command == "supernet":
        run_supernet(preset, args.teacher, Path(args.out), args.resume)
    else:
        best = run_search(preset, Path(args.supernet), Path(args.out))
        print(json.dumps(best))
    return 0


def _space(args: argparse.Namespace) -> int:
    s = load_space(args.space)
    if args.samples < 0:
        raise InputError(f"--samples: expected >= 0, got {args.samples}")
    smallest = check_budget(s, args.budget_gflops)
    w, h = s.imgsz
    print(f"| candidate | params (M) | GFLOPs @ {w}x{h} |")
    print("| --- | ---: | ---: |")
    print(f"| smallest | {smallest['params'] / 1e6:.3f} | {smallest['gflops']:.3f} |")
    rng = random.Random(args.seed)
    for i in range(args.samples):
        cand = s.sample(rng)
        cost = candidate_cost(cand, s.imgsz)
        print(f"| sample {i} | {cost['params'] / 1e6:.3f} | {cost['gflops']:.3f} |", flush=True)
        if args.json:
            print(json.dumps(cand))
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
