"""Baseline: plain logit (response) distillation on the decoded head, uniformly weighted.

After Hinton et al. 2015 ("Distilling the Knowledge in a Neural Network", KL to the teacher's softened
outputs) and Chen et al. 2017 ("Learning Efficient Object Detection Models with Knowledge Distillation",
class scores + box regression towards the teacher). Every prediction point a (all levels and anchors of
the decoded form of mot_kd.kd.decoders, so every head family works) counts the same:

  L = cls_weight * mean_a T^2 * sum_l KL_bernoulli(sigmoid(t_l / T) || sigmoid(s_l / T))
      + box_weight * mean_a [teacher box not empty] * (1 - CIoU(box_s, box_t)).

What ours (pred-diff, losses/pred_diff.py) does differently: it weights each point by the teacher's
confidence and the student-teacher disagreement, so the few points that matter are not drowned by the
many easy background points this baseline averages over, and it adds the DFL / raw-regression terms.
"""
from __future__ import annotations

import torch
from ultralytics.utils.metrics import bbox_iou

from mot_kd.errors import InputError
from mot_kd.kd.decoders import Decoded
from mot_kd.kd.losses.pred_diff import bernoulli_kl


def logit_loss(teacher: Decoded, student: Decoded, cls_weight: float = 1.0, box_weight: float = 1.0,
               temperature: float = 1.0) -> torch.Tensor:
    """Uniform KL on the decoded logits + CIoU to the teacher's decoded boxes, mean over images and points."""
    if teacher.boxes.shape != student.boxes.shape or teacher.logits.shape != student.logits.shape:
        raise InputError(f"logit: teacher decodes to {tuple(teacher.boxes.shape)} boxes / "
                         f"{tuple(teacher.logits.shape)} logits, student to {tuple(student.boxes.shape)} / "
                         f"{tuple(student.logits.shape)}; heads must share grid, anchors and classes")
    t_logits, t_boxes = teacher.logits.detach() / temperature, teacher.boxes.detach()
    l_cls = temperature ** 2 * bernoulli_kl(t_logits, student.logits / temperature).sum(-1)  # (B, A)
    has_box = (t_boxes[..., 2:] > t_boxes[..., :2]).all(-1)
    l_box = torch.where(has_box, 1.0 - bbox_iou(student.boxes, t_boxes, xywh=False, CIoU=True).squeeze(-1), 0.0)
    return (cls_weight * l_cls + box_weight * l_box).mean()
