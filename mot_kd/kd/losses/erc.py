"""ERC: ID-feature distillation by environmental response consistency.

Why responses and not raw embeddings: what the tracker needs from an ID embedding is how a target relates to
everything around it (its own cells vs. background vs. other people). Responses are distributions, so the
teacher and student may have different ``id_dim`` and no adapter is needed.

For each gt target i with identity >= 0 (centre cell c_i of image b_i), with L2-normalised embeddings
t_i = T[b_i, :, c_i], s_i = S[b_i, :, c_i] and normalised maps T, S:

* environment response: p_i = softmax_p(<t_i, T[b_i, :, p]> / tau) over all H*W positions p (same for q_i
  with the student);
* target response: softmax_j(<t_i, t_j> / tau) over the other identity targets j != i in the batch.

loss = tau^2 * ( env_weight * mean_i KL(p_i || q_i) + target_weight * mean_i KL(p'_i || q'_i) ).

``env_background`` < 1 scales the prior mass of background cells (no gt box of any person) in both
environment responses by that factor (0: the environment is the image's people only). Why: the ID loss
never trains the teacher's embeddings on background, so their similarities to a target are arbitrary, yet
they hold about a third of the response mass; matching them spends the student's small embedding head on
noise and pulls its target embeddings away from what the ID loss asks.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from mot_kd.kd.masks import box_masks, centre_cells


def _per_image_rows(batch_idx: torch.Tensor, batch_size: int) -> tuple[torch.Tensor, int]:
    """Rank of each target within its image (for a padded (B, K, ...) layout) and K = max targets per image."""
    counts = torch.bincount(batch_idx, minlength=batch_size)
    order = torch.argsort(batch_idx, stable=True)
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.empty_like(batch_idx)
    rank[order] = torch.arange(len(batch_idx), device=batch_idx.device) - starts[batch_idx[order]]
    return rank, int(counts.max())


def _environment_logits(emb: torch.Tensor, batch_idx: torch.Tensor, cell: torch.Tensor, rank: torch.Tensor,
                        k: int, tau: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Cosine-similarity logits (M, H*W) of each target's embedding with its image's map, and the embeddings."""
    b, d = emb.shape[:2]
    flat = F.normalize(emb.flatten(2), dim=1)  # (B, D, HW)
    vectors = flat[batch_idx, :, cell]  # (M, D)
    padded = vectors.new_zeros(b, k, d)
    padded[batch_idx, rank] = vectors
    sims = torch.bmm(padded, flat)  # (B, K, HW): one matmul per image, no per-target loop
    return sims[batch_idx, rank] / tau, vectors


def _kl_rows(teacher_logits: torch.Tensor, student_logits: torch.Tensor) -> torch.Tensor:
    """KL(softmax(teacher) || softmax(student)) per row."""
    t_log = F.log_softmax(teacher_logits, dim=-1)
    s_log = F.log_softmax(student_logits, dim=-1)
    return (t_log.exp() * (t_log - s_log)).sum(-1)


def _background_prior(targets: torch.Tensor, batch_idx: torch.Tensor, batch_size: int, height: int, width: int,
                      env_background: float) -> torch.Tensor | None:
    """Log-prior (M, H*W) added to environment logits: log(env_background) on background cells, 0 on people."""
    if env_background >= 1.0:
        return None
    _, background = box_masks(targets, batch_size, height, width)
    log_w = math.log(env_background) if env_background > 0 else -1e4  # finite: KL stays NaN-free
    return background.view(batch_size, -1)[batch_idx] * log_w


def erc_loss(teacher_emb: torch.Tensor, student_emb: torch.Tensor, targets: torch.Tensor, tau: float = 0.1,
             env_weight: float = 1.0, target_weight: float = 1.0, env_background: float = 1.0) -> torch.Tensor:
    """ERC loss for teacher/student embedding maps (B, D_t, H, W) and (B, D_s, H, W); 0 when no identities."""
    with_id = targets[targets[:, 2] >= 0]
    if len(with_id) == 0:
        return student_emb.sum() * 0.0
    height, width = student_emb.shape[2:]
    batch_idx, cell = centre_cells(with_id, height, width)
    rank, k = _per_image_rows(batch_idx, student_emb.shape[0])
    with torch.no_grad():
        t_env, t_vec = _environment_logits(teacher_emb, batch_idx, cell, rank, k, tau)
    s_env, s_vec = _environment_logits(student_emb, batch_idx, cell, rank, k, tau)
    prior = _background_prior(targets, batch_idx, student_emb.shape[0], height, width, env_background)
    if prior is not None:
        t_env, s_env = t_env + prior, s_env + prior
    loss = env_weight * _kl_rows(t_env, s_env).mean()
    if target_weight > 0 and len(with_id) > 1:
        others = ~torch.eye(len(with_id), dtype=torch.bool, device=s_vec.device)
        t_rel = (t_vec @ t_vec.T / tau)[others].view(len(with_id), -1)
        s_rel = (s_vec @ s_vec.T / tau)[others].view(len(with_id), -1)
        loss = loss + target_weight * _kl_rows(t_rel, s_rel).mean()
    return tau ** 2 * loss
