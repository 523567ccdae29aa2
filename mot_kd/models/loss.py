"""JDE training loss: ultralytics' v8 detection loss + a CSTrack/JDE identity classification loss.

Detection: ``v8DetectionLoss`` (task-aligned assigner, BCE class loss, CIoU + DFL box loss), used as is.
Identity: embeddings read at the anchor points the assigner gave each gt box (``id_sampling="assigned"``)
or at each gt box's centre (``"center"``), from the stride-8 embedding map; L2-normalised, scaled by
s = sqrt(2)·ln(nID - 1) (JDE), classified by a bias-free linear layer over the training identities;
cross-entropy ignores unknown identities (-1).

The identity classifier (and, for ``id_weighting="uncertainty"``, the learned task weights) are parameters
of this module: the optimizer must include ``loss.parameters()`` and training resume must save
``loss.state_dict()``; deployable model checkpoints do not carry them.
"""
from __future__ import annotations

import math
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn
from ultralytics.utils.loss import v8DetectionLoss

from mot_kd.errors import InputError
from mot_kd.models.embedding_head import sample_embeddings

ID_WEIGHTINGS = ("fixed", "uncertainty")
ID_SAMPLINGS = ("assigned", "center")


class JDELoss(nn.Module):
    """``loss(outputs, targets) -> (total, parts)``; ``parts`` holds detached ``box``, ``cls``, ``dfl``, ``id``.

    ``targets`` (M, 7): ``[batch_idx, cls, identity, cx, cy, w, h]``, box normalised by the input W/H.
    Like ultralytics/YOLOv5 (whose SGD recipe the trainer follows) ``total`` is multiplied by the batch size;
    ``parts`` are per-batch means before that. ``fixed``: total = B·(box + cls + dfl + id_weight·id).
    ``uncertainty`` (JDE/FairMOT): total = B·0.5·(e^-s_det·det + e^-s_id·id + s_det + s_id), s learned.
    """

    def __init__(self, model: nn.Module, num_ids: int, id_weighting: str = "fixed", id_weight: float = 0.02,
                 id_sampling: str = "assigned", box: float = 7.5, cls: float = 0.5, dfl: float = 1.5,
                 tal_topk: int = 10):
        super().__init__()
        if not isinstance(num_ids, int) or num_ids < 2:
            raise InputError(f"num_ids: the identity loss needs at least 2 training identities, got {num_ids!r}")
        if id_weighting not in ID_WEIGHTINGS:
            raise InputError(f"id_weighting: {id_weighting!r} is not one of {', '.join(ID_WEIGHTINGS)}")
        if id_sampling not in ID_SAMPLINGS:
            raise InputError(f"id_sampling: {id_sampling!r} is not one of {', '.join(ID_SAMPLINGS)}")
        self.num_ids, self.id_weighting, self.id_weight, self.id_sampling = num_ids, id_weighting, id_weight, id_sampling
        self.nc, self.reg_max, self.strides = model.nc, model.reg_max, tuple(model.strides)
        self.hyp = SimpleNamespace(box=box, cls=cls, dfl=dfl)
        self.tal_topk = tal_topk
        self.emb_scale = math.sqrt(2) * math.log(max(num_ids - 1, 2))
        self.classifier = nn.Linear(model.id_dim, num_ids, bias=False)
        if id_weighting == "uncertainty":  # FairMOT's initial values
            self.s_det = nn.Parameter(torch.tensor(-1.85))
            self.s_id = nn.Parameter(torch.tensor(-1.05))
        self._det_loss: v8DetectionLoss | None = None

    def detection_loss(self, device: torch.device) -> v8DetectionLoss:
        """Ultralytics' criterion for our head, (re)built on ``device``; it reads only ``args`` and ``model[-1]``."""
        if self._det_loss is None or self._det_loss.device != device:
            head = SimpleNamespace(stride=torch.tensor(self.strides, dtype=torch.float32, device=device),
                                   nc=self.nc, reg_max=self.reg_max)
            view = SimpleNamespace(args=self.hyp, model=[head], parameters=lambda: iter([torch.empty(0, device=device)]))
            self._det_loss = v8DetectionLoss(view, tal_topk=self.tal_topk)
        return self._det_loss

    def forward(self, outputs: dict, targets: torch.Tensor) -> tuple[torch.Tensor, dict]:
        feats, emb_map = outputs["feats"], outputs["embedding"]
        batch_size, device = feats[0].shape[0], feats[0].device
        targets = _check_targets(targets, batch_size, self.num_ids, self.nc).to(device)
        targets = targets[targets[:, 0].argsort(stable=True)]  # ultralytics pads gts per image in this order
        det = self.detection_loss(device)
        flat = torch.cat([f.flatten(2) for f in feats], 2)
        preds = {"boxes": flat[:, : 4 * self.reg_max], "scores": flat[:, 4 * self.reg_max:], "feats": feats}
        batch = {"batch_idx": targets[:, 0], "cls": targets[:, 1], "bboxes": targets[:, 3:7]}
        (fg_mask, gt_idx, _, anchors, anchor_strides), det_parts, _ = det.get_assigned_targets_and_loss(preds, batch)
        bi, xy, ids = self._id_samples(targets, fg_mask, gt_idx, anchors * anchor_strides, emb_map.shape)
        id_loss = self.identity_loss(emb_map, bi, xy, ids)
        det_sum = det_parts.sum()
        if self.id_weighting == "fixed":
            total = det_sum + self.id_weight * id_loss
        else:
            total = 0.5 * (torch.exp(-self.s_det) * det_sum + torch.exp(-self.s_id) * id_loss + self.s_det + self.s_id)
        parts = {"box": det_parts[0].detach(), "cls": det_parts[1].detach(), "dfl": det_parts[2].detach(),
                 "id": id_loss.detach()}
        return total * batch_size, parts

    def _id_samples(self, targets, fg_mask, gt_idx, anchor_xy, map_shape):
        """(batch_idx, xy pixels, identity) of every embedding sample with a known identity."""
        if self.id_sampling == "center" or len(targets) == 0:
            h, w = map_shape[-2] * self.strides[0], map_shape[-1] * self.strides[0]
            bi, xy, ids = targets[:, 0].long(), targets[:, 3:5] * targets.new_tensor([w, h]), targets[:, 2].long()
        else:
            bi_t = targets[:, 0].long()
            counts = torch.bincount(bi_t, minlength=fg_mask.shape[0])
            within = torch.arange(len(targets), device=targets.device) - (counts.cumsum(0) - counts)[bi_t]
            padded = torch.full((fg_mask.shape[0], int(counts.max())), -1, dtype=torch.long, device=targets.device)
            padded[bi_t, within] = targets[:, 2].long()
            bi, anchor = fg_mask.nonzero(as_tuple=True)
            xy, ids = anchor_xy[anchor], padded[bi, gt_idx[bi, anchor]]
        known = ids >= 0
        return bi[known], xy[known], ids[known]

    def identity_loss(self, emb_map: torch.Tensor, batch_idx: torch.Tensor, xy: torch.Tensor,
                      ids: torch.Tensor) -> torch.Tensor:
        """Mean cross-entropy of the scaled unit embeddings at ``xy`` against ``ids``; 0 (in graph) if none."""
        if len(ids) == 0:
            return emb_map.sum() * 0.0
        emb = F.normalize(sample_embeddings(emb_map, batch_idx, xy, self.strides[0]).float(), dim=1)
        return F.cross_entropy(self.classifier(self.emb_scale * emb), ids)


def _check_targets(targets: torch.Tensor, batch_size: int, num_ids: int, nc: int) -> torch.Tensor:
    if not isinstance(targets, torch.Tensor) or targets.ndim != 2 or targets.shape[1] != 7:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise InputError(f"targets: expected a (M, 7) tensor [batch_idx, cls, id, cx, cy, w, h], got {shape}")
    if len(targets):
        lo, hi = targets.detach().float().aminmax(dim=0)
        if lo[0] < 0 or hi[0] >= batch_size:
            raise InputError(f"targets: batch_idx outside 0..{batch_size - 1}")
        if lo[1] < 0 or hi[1] >= nc:
            raise InputError(f"targets: class id outside 0..{nc - 1} (the model has nc={nc} classes)")
        if hi[2] >= num_ids or lo[2] < -1:
            raise InputError(f"targets: identity outside -1..{num_ids - 1} (num_ids={num_ids})")
    return targets.float()
