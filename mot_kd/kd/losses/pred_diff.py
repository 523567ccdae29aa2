"""Prediction-difference-weighted response distillation on the decoded head (after CrossKD / PGD).

Why: most prediction points are easy background that student and teacher already agree on; distilling them
uniformly wastes the signal. On the family-independent decoded form (mot_kd.kd.decoders: ultralytics DFL,
anchor-based YOLO, CenterNet), every prediction point a (all levels and anchors, same for teacher and
student) gets

* score term  l_cls(a) = sum_l KL_bernoulli(sigmoid(t_l) || sigmoid(s_l)) over the decoded logits
  (= BCE(student logits, teacher probabilities) minus the teacher's entropy, so it is 0 at agreement);
* box terms  l_iou(a) = 1 - CIoU(decoded student box, decoded teacher box) in every family, plus
  (0 where the teacher's box is empty: a CenterNet side distance <= 0) and
  l_dfl(a) = T_b^2 * sum_sides KL(softmax(t_side / T_b) || softmax(s_side / T_b)) over DFL bins where the
  head has them and l_l1(a) = sum |s_raw - t_raw| on regression values where the decoder gives them
  (CenterNet: wh log-scaled, so about its relative error, and the offset in cells);
* a weight from several disagreement dimensions, detached:
  w(a) = w_conf * conf_t(a) + w_cls * max_k |score_s,k - score_t,k| + w_box * conf_t(a) * (1 - IoU(a))
  with conf_t = max_k score_t,k (teacher confidence marks valuable points; score and box differences mark
  points the student gets wrong; box difference only counts where the teacher sees an object), normalised
  to sum 1 per image.

loss = mean over images of sum_a w(a) * (cls_weight * l_cls + dfl_weight * l_dfl + iou_weight * l_iou
+ l1_weight * l_l1). As the student improves, weight moves to the points where it still disagrees.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from ultralytics.utils.metrics import bbox_iou

from mot_kd.errors import InputError
from mot_kd.kd.decoders import Decoded


def bernoulli_kl(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    p = teacher_logits.sigmoid()
    return (F.binary_cross_entropy_with_logits(student_logits, p, reduction="none")
            - F.binary_cross_entropy_with_logits(teacher_logits, p, reduction="none"))


def pred_diff_loss(teacher: Decoded, student: Decoded, cls_weight: float = 1.0, dfl_weight: float = 0.25,
                   iou_weight: float = 1.0, l1_weight: float = 1.0, box_temperature: float = 1.0,
                   w_conf: float = 1.0, w_cls: float = 1.0, w_box: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Weighted head distillation; returns (loss, per-point weights (B, A)) — the weights for inspection."""
    if teacher.boxes.shape != student.boxes.shape or teacher.logits.shape != student.logits.shape:
        raise InputError(f"pred_diff: teacher decodes to {tuple(teacher.boxes.shape)} boxes / "
                         f"{tuple(teacher.logits.shape)} logits, student to {tuple(student.boxes.shape)} / "
                         f"{tuple(student.logits.shape)}; heads must share grid, anchors and classes")
    t_boxes = teacher.boxes.detach()
    l_cls = bernoulli_kl(teacher.logits.detach(), student.logits).sum(-1)  # (B, A)
    has_box = (t_boxes[..., 2:] > t_boxes[..., :2]).all(-1)  # IoU is undefined where the teacher's box is empty
    l_iou = torch.where(has_box, 1.0 - bbox_iou(student.boxes, t_boxes, xywh=False, CIoU=True).squeeze(-1), 0.0)
    per_point = cls_weight * l_cls
    if student.bins is not None:
        t_bins = (teacher.bins.detach() / box_temperature).log_softmax(-1)
        s_bins = (student.bins / box_temperature).log_softmax(-1)
        per_point = per_point + dfl_weight * (box_temperature ** 2 * (t_bins.exp() * (t_bins - s_bins)).sum((-1, -2)))
    per_point = per_point + iou_weight * l_iou
    if student.raw is not None:
        per_point = per_point + l1_weight * (student.raw - teacher.raw.detach()).abs().sum(-1)

    with torch.no_grad():
        t_scores, s_scores = teacher.scores, student.scores
        confidence = t_scores.amax(-1)
        cls_diff = (s_scores - t_scores).abs().amax(-1)
        box_diff = torch.where(has_box, 1.0 - bbox_iou(student.boxes, t_boxes, xywh=False).squeeze(-1), 0.0).clamp(0, 1)
        weights = w_conf * confidence + w_cls * cls_diff + w_box * confidence * box_diff
        weights = weights / weights.sum(-1, keepdim=True).clamp_min(1e-12)
    return (weights * per_point).sum(-1).mean(), weights
