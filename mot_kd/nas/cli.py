"""``python -m mot_kd.nas space --space S [--budget-gflops G] [--samples N]``: validate a search space, cost it.

Prints the smallest candidate's params/GFLOPs and N sampled candidates' costs as a table; a budget below the
smallest candidate, an unknown block type or a malformed YAML is a one-line error naming the key (exit 2).
The supernet / search / retrain commands of docs/nas.md are not built yet.
"""
from __future__ import annotations

import argparse
import json
import random
import sys

from mot_kd.errors import cli_entry
from mot_kd.nas.cost import candidate_cost, check_budget
from mot_kd.nas.space import load_space


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mot_kd.nas", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    space = sub.add_parser("space", help="validate a search space, print its smallest and sampled candidates")
    space.add_argument("--space", default="space", help="configs/nas/<name>.yaml or a path (default: space)")
    space.add_argument("--budget-gflops", type=float, default=None)
    space.add_argument("--samples", type=int, default=5)
    space.add_argument("--seed", type=int, default=0)
    space.add_argument("--json", action="store_true", help="print each sampled candidate dict as a JSON line too")
    args = parser.parse_args(argv)
    s = load_space(args.space)
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
