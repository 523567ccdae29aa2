"""The family-independent decoded head form and the helpers every head decoder shares.

Why one form: the prediction-difference loss must not know whether a head is anchor-free DFL, anchor-based
YOLO or CenterNet; each decoder turns its raw taps into the same per-point quantities, so the loss (and its
thesis weighting) is written once and every family distils its boxes as boxes.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from mot_kd.errors import InputError


@dataclass(frozen=True)
class Decoded:
    """Per prediction point a (all levels and anchors flattened, the same order for teacher and student).

    ``logits`` (B, A, L): independent Bernoulli logits distilled by KL (class logits; YOLO: objectness and,
    with several classes, class logits; JDE: the 2-way softmax as one logit). ``scores`` (B, A, K): detection
    score per class in [0, 1] (confidence and class difference of the point weights). ``boxes`` (B, A, 4):
    xyxy in input pixels. ``bins`` (B, A, 4, R): DFL box logits, only for heads that have them. ``raw``
    (B, A, k): regression values distilled by L1 (CenterNet: log-scaled wh and offset), else None.
    """

    logits: torch.Tensor
    scores: torch.Tensor
    boxes: torch.Tensor
    bins: torch.Tensor | None = None
    raw: torch.Tensor | None = None


def level_stride(image_size: tuple[int, int], hw: tuple[int, int], tap: str) -> float:
    """Stride of a feature level from the input size; the grid must be the input divided by one stride."""
    (h, w), (fh, fw) = tuple(image_size), tuple(hw)
    if fh < 1 or fw < 1 or h % fh or w % fw or h // fh != w // fw:
        raise InputError(f"tap '{tap}': feature size {fh}x{fw} is not the input size {h}x{w} divided by one stride")
    return float(h // fh)


def flatten_levels(levels: list[torch.Tensor]) -> torch.Tensor:
    """(B, C, H, W) per level -> (B, sum H*W, C)."""
    return torch.cat([x.flatten(2) for x in levels], 2).transpose(1, 2)


def expect_4d(x: torch.Tensor, tap: str, what: str) -> None:
    if x.dim() != 4:
        hint = (" (a 5-D (B, na, H, W, 5+nc) tensor is an anchor-based YOLO head: head.family yolo_anchor)"
                if x.dim() == 5 else "")
        raise InputError(f"tap '{tap}': expected {what} as (B, C, H, W), got {tuple(x.shape)}{hint}")


def check_levels(taps: dict[str, list[torch.Tensor]], names: dict[str, list[str]], groups: tuple[str, ...],
                 family: str) -> None:
    """Every group the family decodes is present, with one name per recorded tensor."""
    for group in groups:
        if not taps.get(group):
            raise InputError(f"head family {family} decodes taps.{group}, which is not set in the KD config")
        if len(taps[group]) != len(names[group]):
            raise InputError(f"taps.{group}: {len(names[group])} names but {len(taps[group])} tensors")


def check_pair(teacher: Decoded, student: Decoded, family: str) -> None:
    """Teacher and student must decode to the same prediction points and score widths."""
    for field in ("logits", "scores", "boxes", "bins", "raw"):
        t, s = getattr(teacher, field), getattr(student, field)
        if (t is None) != (s is None) or (t is not None and t.shape[1:] != s.shape[1:]):
            raise InputError(f"head family {family}: student decodes to {field} {_shape(s)}, teacher to {_shape(t)}; "
                             "teacher and student heads must share grid, anchors and classes")


def _shape(x: torch.Tensor | None):
    return None if x is None else tuple(x.shape)
