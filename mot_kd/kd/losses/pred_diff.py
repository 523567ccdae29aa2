"""Prediction-difference-weighted response distillation on the detection head (after CrossKD / PGD).

Why: most anchor points are easy background that student and teacher already agree on; distilling them
uniformly wastes the signal. Every anchor point a (all levels, same grid for teacher and student) gets

* classification term  l_cls(a) = sum_c KL_bernoulli(sigmoid(t_c) || sigmoid(s_c))
  (= BCE(student logits, teacher probabilities) minus the teacher's entropy, so it is 0 at agreement);
* box terms  l_dfl(a) = T_b^2 * sum_sides KL(softmax(t_side / T_b) || softmax(s_side / T_b)) over the
  reg_max DFL bins, and l_iou(a) = 1 - CIoU(decoded student box, decoded teacher box);
* a weight from several disagreement dimensions, detached:
  w(a) = w_conf * conf_t(a) + w_cls * max_c |sigmoid(s_c) - sigmoid(t_c)| + w_box * conf_t(a) * (1 - IoU(a))
  (teacher confidence marks valuable points; class-score and box differences mark points the student gets
  wrong; box difference only counts where the teacher sees an object), normalised to sum 1 per image.

loss = mean over images of sum_a w(a) * (cls_weight * l_cls + dfl_weight * l_dfl + iou_weight * l_iou).
As the student improves, weight moves to the points where it still disagrees.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from ultralytics.utils.metrics import bbox_iou
from ultralytics.utils.tal import dist2bbox, make_anchors


def _flatten(levels: list[torch.Tensor]) -> torch.Tensor:
    """(B, C, H, W) per level -> (B, sum H*W, C)."""
    return torch.cat([x.flatten(2) for x in levels], 2).transpose(1, 2)


def _decode(box_logits: torch.Tensor, anchors: torch.Tensor, strides: torch.Tensor, reg_max: int) -> torch.Tensor:
    """DFL logits (B, A, 4*reg_max) -> xyxy boxes in input pixels (B, A, 4), ultralytics conventions."""
    b, a, _ = box_logits.shape
    bins = torch.arange(reg_max, device=box_logits.device, dtype=box_logits.dtype)
    dist = (box_logits.view(b, a, 4, reg_max).softmax(-1) * bins).sum(-1)
    return dist2bbox(dist, anchors, xywh=False) * strides


def _bernoulli_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    p = teacher_logits.sigmoid()
    return (F.binary_cross_entropy_with_logits(student_logits, p, reduction="none")
            - F.binary_cross_entropy_with_logits(teacher_logits, p, reduction="none"))


def pred_diff_loss(teacher_box: list[torch.Tensor], student_box: list[torch.Tensor],
                   teacher_cls: list[torch.Tensor], student_cls: list[torch.Tensor], strides: list[float],
                   reg_max: int = 16, cls_weight: float = 1.0, dfl_weight: float = 0.25, iou_weight: float = 1.0,
                   box_temperature: float = 1.0, w_conf: float = 1.0, w_cls: float = 1.0,
                   w_box: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted head distillation; returns (loss, per-point weights (B, A)) — the weights for inspection."""
    anchors, stride_tensor = make_anchors(student_cls, strides)
    t_box, s_box = _flatten(teacher_box).detach(), _flatten(student_box)
    t_cls, s_cls = _flatten(teacher_cls).detach(), _flatten(student_cls)
    b, a, _ = s_box.shape

    l_cls = _bernoulli_kl(t_cls, s_cls).sum(-1)  # (B, A)
    t_xyxy = _decode(t_box, anchors, stride_tensor, reg_max)
    s_xyxy = _decode(s_box, anchors, stride_tensor, reg_max)
    ciou = bbox_iou(s_xyxy, t_xyxy, xywh=False, CIoU=True).squeeze(-1)  # (B, A)
    l_iou = 1.0 - ciou
    t_bins = (t_box.view(b, a, 4, reg_max) / box_temperature).log_softmax(-1)
    s_bins = (s_box.view(b, a, 4, reg_max) / box_temperature).log_softmax(-1)
    l_dfl = box_temperature ** 2 * (t_bins.exp() * (t_bins - s_bins)).sum((-1, -2))

    with torch.no_grad():
        t_prob, s_prob = t_cls.sigmoid(), s_cls.sigmoid()
        confidence = t_prob.amax(-1)
        cls_diff = (s_prob - t_prob).abs().amax(-1)
        box_diff = (1.0 - bbox_iou(s_xyxy, t_xyxy, xywh=False).squeeze(-1)).clamp(0, 1)
        weights = w_conf * confidence + w_cls * cls_diff + w_box * confidence * box_diff
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)

    per_point = cls_weight * l_cls + dfl_weight * l_dfl + iou_weight * l_iou
    return (weights * per_point).sum(-1).mean(), weights
