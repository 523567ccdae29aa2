"""Pred-diff under KD-only optimisation, per head family: does the loss alone move a student's decoded
predictions onto its teacher's?

Why a bench: the loss is only useful if minimising it makes the student predict the teacher's boxes and
scores in that family's own parameterisation. Teacher and student are tiny random heads of one family on
fixed random features (output biases set like the codebases' initialisation: few confident points); only the
student head is optimised (Adam), on the pred-diff loss alone. Reported per family, initial -> final: the
loss, the teacher-confidence-weighted IoU of decoded boxes and the mean absolute score gap.
Usage: ``python -m mot_kd.kd.bench_decoders [--steps 200] [--seed 0]``.
"""
from __future__ import annotations

import argparse

import torch
from loguru import logger
from torch import nn
from tqdm import tqdm
from ultralytics.utils.metrics import bbox_iou

from mot_kd.errors import InputError, cli_entry
from mot_kd.kd.decoders import Decoded, build_decoder, check_head
from mot_kd.kd.losses.pred_diff import pred_diff_loss
from mot_kd.kd.settings import load_kd_config

INPUT = (64, 96)
STRIDES = (8, 16, 32)
# name -> head (the family's keys, or a shipped KD preset whose head section is used: its anchors, box, conf),
# tap channels per group and level, strides
CASES = {
    "ultralytics (DFL, ours)": ({"family": "ultralytics", "reg_max": 8},
                                {"box": [32] * 3, "cls": [1] * 3}, STRIDES),
    "yolo_anchor yolov5 (CSTrack)": ("cstrack", {"pred": [18] * 3}, STRIDES),
    "yolo_anchor delta+softmax2 (JDE)": ("jde", {"pred": [24] * 3}, STRIDES),
    "centernet ltrb (FairMOT)": ("fairmot", {"cls": [1], "box": [4], "offset": [2]}, (4,)),
}
KEYS = ("nc", "reg_max", "anchors", "box", "conf", "wh")


def head_config(keys: dict | str) -> dict:
    """A full, validated head section: a shipped preset's, or from the family's keys (the others null, nc 1)."""
    if isinstance(keys, str):
        return load_kd_config(keys)["head"]
    return check_head({**dict.fromkeys(KEYS), "nc": 1, **keys}, "head")


class TinyHead(nn.Module):
    """One 3x3 -> 1x1 conv branch per tap group and level, on given features. Output biases as a trained head
    has them: score channels negative (YOLO/CenterNet initialise them so; few points are confident), CenterNet
    side distances positive (about 2 cells)."""

    def __init__(self, channels: dict[str, list[int]], head: dict, width: int, generator: torch.Generator):
        super().__init__()
        self.branches = nn.ModuleDict({g: nn.ModuleList([nn.Sequential(nn.Conv2d(width, width, 3, padding=1),
                                                                      nn.SiLU(), nn.Conv2d(width, c, 1))
                                                        for c in cs]) for g, cs in channels.items()})
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=generator) * 0.3)
            for group, levels in self.branches.items():
                for branch in levels:
                    _init_bias(branch[-1].bias, group, head)

    def forward(self, features: list[torch.Tensor]) -> dict[str, list[torch.Tensor]]:
        return {g: [b(f) for b, f in zip(levels, features)] for g, levels in self.branches.items()}


def _init_bias(bias: torch.Tensor, group: str, head: dict) -> None:
    if head["family"] == "yolo_anchor":  # per anchor: objectness + class logits, or JDE's foreground logit only
        scores = slice(5, 6) if head["conf"] == "softmax2" else slice(4, None)  # (lowering both leaves p = 0.5)
        bias.view(len(head["anchors"][0]) // 2, -1)[:, scores] -= 3.0
    elif group == "cls":
        bias -= 2.5  # class / heatmap logits
    elif head["family"] == "centernet" and group == "box":
        bias += 2.0


@torch.no_grad()
def _metrics(teacher: Decoded, student: Decoded) -> tuple[float, float]:
    confidence = teacher.scores.amax(-1)
    iou = bbox_iou(student.boxes, teacher.boxes, xywh=False).squeeze(-1).clamp(0, 1)
    return float((confidence * iou).sum() / confidence.sum()), float((student.scores - teacher.scores).abs().mean())


def distil(name: str, steps: int, seed: int = 0, lr: float = 0.01) -> dict[str, float]:
    """KD-only optimisation of a fresh student head towards a fixed teacher head of family case ``name``."""
    keys, channels, strides = CASES[name]
    head = head_config(keys)
    decoder = build_decoder(head)
    g = torch.Generator().manual_seed(seed)
    width = 8
    features = [torch.randn(2, width, INPUT[0] // s, INPUT[1] // s, generator=g) for s in strides]
    teacher, student = TinyHead(channels, head, width, g), TinyHead(channels, head, width, g)
    names = {grp: [f"{grp}{i}" for i in range(len(cs))] for grp, cs in channels.items()}
    with torch.no_grad():
        t_dec = decoder.decode(teacher(features), names, INPUT)
    optimizer = torch.optim.Adam(student.parameters(), lr=lr)
    record = {}
    for step in range(steps + 1):
        s_dec = decoder.decode(student(features), names, INPUT)
        loss, _ = pred_diff_loss(t_dec, s_dec)
        if step in (0, steps):
            iou, gap = _metrics(t_dec, s_dec)
            tag = "initial" if step == 0 else "final"
            record.update({f"loss_{tag}": loss.item(), f"iou_{tag}": iou, f"gap_{tag}": gap})
        if step < steps:
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return record


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mot_kd.kd.bench_decoders", description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200, help="Adam steps on the pred-diff loss alone")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.steps < 1:
        raise InputError(f"--steps: must be >= 1, got {args.steps}")
    torch.set_num_threads(1)
    rows = []
    for name in tqdm(CASES, desc="families"):
        r = distil(name, args.steps, args.seed)
        logger.info(f"{name}: loss {r['loss_initial']:.4f} -> {r['loss_final']:.4f}")
        rows.append(f"| {name} | {r['loss_initial']:.4f} -> {r['loss_final']:.4f} | {r['iou_initial']:.3f} -> "
                    f"{r['iou_final']:.3f} | {r['gap_initial']:.3f} -> {r['gap_final']:.3f} |")
    print(f"pred-diff alone, {args.steps} Adam steps (lr 0.01), seed {args.seed}, input {INPUT[0]}x{INPUT[1]}, batch 2")
    print("| family | loss | conf-weighted IoU (student, teacher boxes) | mean abs score gap |")
    print("| --- | --- | --- | --- |")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
