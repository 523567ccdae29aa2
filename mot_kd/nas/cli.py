"""``python -m mot_kd.nas space|supernet|search|retrain|pick|correlate``: the one-shot architecture search.

space: validate a search space and cost it; supernet: train the weight-sharing supernet with KD from a
teacher (resumable); search: evolutionary search under a GFLOPs / latency budget, scored by tracking on the
data config's val (tune) sequences; retrain: the chosen candidate from scratch with KD through mot_kd.train;
pick: candidates spread over the search's scores, as files a KD bench preset's ``models:`` lists; correlate:
rank correlation of inherited and retrained (KD bench) scores. See docs/nas.md.
"""
from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import torch

from mot_kd.errors import InputError, cli_entry
from mot_kd.nas.compare import correlate, format_correlation, pick, read_search, write_correlation, write_picks
from mot_kd.nas.cost import candidate_cost, check_budget
from mot_kd.nas.files import read_candidate
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
    chooser = sub.add_parser("pick", help="export candidates spread over a search's inherited scores")
    chooser.add_argument("--search", required=True, help="search folder (its search.jsonl)")
    chooser.add_argument("--n", type=int, default=5, help="how many candidates (default 5)")
    chooser.add_argument("--metric", default="IDF1", help="score to spread over: IDF1 (default) or MOTA")
    chooser.add_argument("--exclude", nargs="*", default=[], help="candidate files not to pick (e.g. best.json)")
    chooser.add_argument("--out", required=True, help="folder for pick_1.json .. (lowest score first)")
    corr = sub.add_parser("correlate", help="rank correlation of inherited vs retrained (KD bench) scores")
    corr.add_argument("--search", required=True, help="search folder (its search.jsonl)")
    corr.add_argument("--bench", required=True, help="KD bench --out whose models: students are candidates")
    corr.add_argument("--names", nargs="*", help="the bench's students to use (default: every candidate there)")
    corr.add_argument("--configuration", default="all", help="the bench configuration retrained (default all)")
    corr.add_argument("--out", help="JSON to write (default BENCH/nas_correlation.json, and a .md beside it)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.command == "space":
        return _space(args)
    if args.command == "retrain":
        extra = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
        return retrain(args.candidate, args.out, extra)
    if args.command == "pick":
        exclude = {path: read_candidate(path, "--exclude") for path in args.exclude}
        for path in write_picks(pick(read_search(args.search), args.n, args.metric, exclude), args.out):
            record = json.loads(path.read_text())
            print(f"{path}: IDF1 {100 * record['IDF1']:.1f}, MOTA {100 * record['MOTA']:.1f}, "
                  f"{record['gflops']:.2f} GFLOPs")
        return 0
    if args.command == "correlate":
        result = correlate(args.search, args.bench, args.names, args.configuration)
        path = write_correlation(result, args.out or Path(args.bench) / "nas_correlation.json")
        print(format_correlation(result) + f"\nwrote {path} and {path.with_suffix('.md')}")
        return 0
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
