"""Model card: parameters and GFLOPs at an input size, per model name.

``python -m mot_kd.models.info yolov5s --imgsz 1088 608`` (several names give a table; a mot-kd checkpoint
path, e.g. a pruned model, is read with its own architecture and id_dim). GFLOPs come from
ultralytics-thop on one real forward at that size (2 FLOPs per multiply-add, as ultralytics reports),
including the CCN matrix products that thop counts as functional operations.
"""
from __future__ import annotations

import argparse
import sys

import torch

from mot_kd.errors import cli_entry
from mot_kd.models.checkpoint import load_checkpoint
from mot_kd.models.jde_model import JDEModel, build_model
from mot_kd.models.predict import check_imgsz


def model_card(model: JDEModel, imgsz: tuple[int, int] = (1088, 608)) -> dict:
    """``{"params": int, "gflops": float}`` for one (1, 3, H, W) image of size ``imgsz`` = (W, H)."""
    import thop

    w, h = check_imgsz(imgsz)
    param = next(model.parameters())
    x = torch.zeros(1, 3, h, w, device=param.device, dtype=param.dtype)
    macs, _ = thop.profile(model, inputs=(x,), verbose=False)
    return {"params": sum(p.numel() for p in model.parameters()), "gflops": 2 * macs / 1e9}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mot_kd.models.info", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names (yolov5n..yolov5x, yolov5s-ghost), YAML paths or "
                        "mot-kd checkpoints (.pt)")
    parser.add_argument("--imgsz", nargs=2, type=int, default=(1088, 608), metavar=("W", "H"))
    parser.add_argument("--id-dim", type=int, default=512)
    args = parser.parse_args(argv)
    imgsz = check_imgsz(args.imgsz)
    print(f"| model | params (M) | GFLOPs @ {imgsz[0]}x{imgsz[1]} | id_dim |")
    print("| --- | ---: | ---: | ---: |")
    for name in args.models:
        model = load_checkpoint(name) if name.endswith(".pt") else build_model(name, id_dim=args.id_dim)
        card = model_card(model, imgsz)
        print(f"| {name} | {card['params'] / 1e6:.2f} | {card['gflops']:.1f} | {model.id_dim} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
