"""``python -m mot_kd.prune``: channel pruning of a trained model with distillation recovery (docs/prune.md).

``python -m mot_kd.prune --weights best.pt --data D.yaml --target-flops 0.5 [--steps K] [--sparsity-epochs N]
[--importance seed|bn|l1] [--kd default] --out runs/prune_x`` writes ``pruned.pt`` (the distilled model),
``pruned_no_kd.pt``, ``summary.md``/``summary.json`` and the training runs of every stage.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mot_kd.config import resolve_config
from mot_kd.errors import InputError, cli_entry
from mot_kd.kd.settings import load_kd_config
from mot_kd.models import read_checkpoint
from mot_kd.prune.importance import KINDS
from mot_kd.prune.pipeline import PruneJob, check_target, run_prune
from mot_kd.train.cli import check_validation_settings
from mot_kd.train.settings import resolve_settings


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mot_kd.prune", description=__doc__.splitlines()[0])
    p.add_argument("--weights", required=True, help="the trained mot-kd checkpoint to prune (also the KD teacher)")
    p.add_argument("--data", required=True, help="data config (YAML or shipped name) for fine-tunes and validation")
    p.add_argument("--target-flops", type=float, required=True, help="fraction of the original FLOPs to keep (0-1)")
    p.add_argument("--steps", type=int, default=1, help="pruning steps to the target, each followed by a fine-tune")
    p.add_argument("--importance", choices=KINDS, default="seed", help="seed: w*BN scale + (1-w)*independence; "
                   "bn: BN scale (network slimming); l1: filter L1 norm")
    p.add_argument("--w", type=float, default=0.5, help="seed importance: initial weight of the BN-scale term")
    p.add_argument("--w-step", type=float, default=0.25, help="seed importance: w moves by this much per step")
    p.add_argument("--calib-batches", type=int, default=4, help="training batches for the independence statistics")
    p.add_argument("--round-to", type=int, help="keep pruned channel counts multiples of this (e.g. 8)")
    p.add_argument("--sparsity-epochs", type=int, default=0, help="epochs of L1-on-BN-scale training before pruning")
    p.add_argument("--sparsity", type=float, default=1e-3, help="strength of the L1 penalty on BN scales")
    p.add_argument("--epochs", type=int, default=1, help="fine-tune epochs after each intermediate step")
    p.add_argument("--kd-epochs", type=int, default=2, help="epochs of the last fine-tune (run with and without KD)")
    p.add_argument("--kd", default="default", help="KD config of the last fine-tune (YAML path or configs/kd/ name)")
    p.add_argument("--hyp", help="trainer hyper-parameter YAML merged over configs/train/default.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a hyper-parameter")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("W", "H"), help="default: the checkpoint's training size")
    p.add_argument("--batch", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--device", default="cpu", help="cpu, 0 (cuda:0) or auto")
    p.add_argument("--out", required=True, help="output folder (replaced only when the job has finished)")
    p.add_argument("--exist-ok", action="store_true", help="allow --out to exist (it is replaced at the end)")
    return p.parse_args(argv)


def job_from_args(args: argparse.Namespace) -> PruneJob:
    """Every input checked before any pruning or training starts."""
    check_target(args.target_flops)
    for flag in ("steps", "epochs", "kd_epochs", "calib_batches"):
        if getattr(args, flag) < 1:
            raise InputError(f"--{flag.replace('_', '-')}: must be >= 1, got {getattr(args, flag)}")
    if args.round_to is not None and args.round_to < 1:
        raise InputError(f"--round-to: must be >= 1, got {args.round_to}")
    if args.sparsity_epochs < 0 or args.sparsity < 0:
        raise InputError("--sparsity-epochs and --sparsity: must be >= 0")
    if not 0.0 <= args.w <= 1.0 or not 0.0 < args.w_step <= 1.0:
        raise InputError(f"--w {args.w} / --w-step {args.w_step}: w must be in [0, 1], the step in (0, 1]")
    meta = read_checkpoint(args.weights)["meta"]  # a file that is not a mot-kd checkpoint stops here
    out = Path(args.out)
    if out.exists() and any(out.iterdir()) and not args.exist_ok:
        raise InputError(f"--out {out}: exists and is not empty; pass --exist-ok to replace it")
    flags = {"imgsz": list(args.imgsz or meta.get("imgsz") or []) or None, "batch": args.batch, "seed": args.seed}
    settings = resolve_settings(args.hyp, flags, args.set)
    check_validation_settings(settings)
    kd = str(resolve_config(args.kd, "kd").resolve())
    load_kd_config(kd)
    data = str(resolve_config(args.data, "data").resolve())
    return PruneJob(weights=Path(args.weights).resolve(), data=data, target=args.target_flops, out=out,
                    settings=settings, steps=args.steps, importance=args.importance, w=args.w, w_step=args.w_step,
                    sparsity_epochs=args.sparsity_epochs, sparsity=args.sparsity, epochs=args.epochs,
                    kd_epochs=args.kd_epochs, kd=kd, calib_batches=args.calib_batches, round_to=args.round_to,
                    device=args.device)


def main(argv: list[str] | None = None) -> int:
    rows = run_prune(job_from_args(parse_args(argv)))
    print((Path(rows[-1]["path"]).parent / "summary.md").read_text(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
