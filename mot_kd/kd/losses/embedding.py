"""Baseline: direct embedding distillation at the targets' centres.

The generic feature-mimicking recipe applied to the ID embedding (as in FitNet-style ReID distillation):
at the centre cell of every gt target with an identity, the adapted student embedding copies the teacher's,
by cosine distance and/or squared error:

  L = cosine_weight * mean_i (1 - cos(s_i, t_i)) + l2_weight * mean_i mean_d (s_i,d - t_i,d)^2,

with s_i = adapter(S)[b_i, :, c_i] (1x1 conv + BN to the teacher's id_dim; the identity for the same
architecture) and t_i = T[b_i, :, c_i].

What ours (ERC, losses/erc.py) does differently: ERC matches how each target's embedding *responds* to its
image and to the other targets (distributions over positions / targets), which is what association uses,
needs no adapter between different id_dims and ignores the embedding's scale and basis.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from mot_kd.kd.masks import centre_cells


def embedding_loss(teacher_emb: torch.Tensor, student_emb: torch.Tensor, targets: torch.Tensor,
                   cosine_weight: float = 1.0, l2_weight: float = 0.0) -> torch.Tensor:
    """Loss for a teacher map (B, D, H, W) and an adapted student map of the same shape; 0 without identities."""
    with_id = targets[targets[:, 2] >= 0]
    if len(with_id) == 0:
        return student_emb.sum() * 0.0
    batch_idx, cell = centre_cells(with_id, *student_emb.shape[2:])
    t = teacher_emb.detach().flatten(2)[batch_idx, :, cell]  # (M, D)
    s = student_emb.flatten(2)[batch_idx, :, cell]
    loss = cosine_weight * (1.0 - F.cosine_similarity(s, t, dim=1)).mean()
    if l2_weight > 0:
        loss = loss + l2_weight * F.mse_loss(s, t)
    return loss
