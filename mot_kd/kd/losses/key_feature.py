"""Key-feature masked intermediate distillation on the neck levels (after FGD / DeFeat).

Why: in MOT frames a few small people sit in a sea of background, so a plain feature MSE is dominated by
background cells and by uninformative channels. Per level, with teacher feature T and adapted student
feature S (both (B, C, H, W)):

* key-feature attention of a feature F at temperature T_a:
  spatial A_s(F) = H*W * softmax_hw(mean_c |F| / T_a), channel A_c(F) = C * softmax_c(mean_hw |F| / T_a);
  the teacher's attention (detached) selects the positions/channels the student must learn.
* per-cell error e[b, h, w] = sum_c A_c(T)[b, c] / C * (T - S)^2[b, c, h, w]
* foreground weights m_fg = gt-box mask (1 / box cells, small people count) * A_s(T), background weights
  m_bg = background mask * A_s(T), each normalised to sum 1 per image: the foreground and background
  terms are weighted means, normalised separately, so neither swamps the other.
* L_fg = mean over images with people of sum_hw m_fg * e, L_bg = mean over images of sum_hw m_bg * e
* attention transfer L_at = mean|A_s(T) - A_s(S)| + mean|A_c(T) - A_c(S)|.

loss = mean over levels of (alpha_fg * L_fg + beta_bg * L_bg + gamma_at * L_at).
"""
from __future__ import annotations

import torch

from mot_kd.kd.masks import box_masks


def attention(feature: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Spatial (B, H, W) and channel (B, C) attention of |feature|, each scaled to mean 1."""
    b, c, h, w = feature.shape
    magnitude = feature.abs()
    spatial = (magnitude.mean(1).view(b, -1) / temperature).softmax(-1).view(b, h, w) * (h * w)
    channel = (magnitude.mean((2, 3)) / temperature).softmax(-1) * c
    return spatial, channel


def _weighted_mean(error: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """Per-image weighted mean of ``error`` (B, H, W), averaged over images whose weights are not all zero."""
    totals = weights.sum((1, 2))
    valid = totals > 0
    if not bool(valid.any()):
        return error.sum() * 0.0
    per_image = (error * weights).sum((1, 2))[valid] / totals[valid]
    return per_image.mean()


def level_loss(teacher: torch.Tensor, student: torch.Tensor, targets: torch.Tensor, temperature: float,
               alpha_fg: float, beta_bg: float, gamma_at: float) -> torch.Tensor:
    """Key-feature loss of one level; ``student`` already has the teacher's channel count."""
    b, c, h, w = teacher.shape
    t_spatial, t_channel = attention(teacher, temperature)
    s_spatial, s_channel = attention(student, temperature)
    error = ((teacher - student) ** 2 * (t_channel / c)[:, :, None, None]).sum(1)  # (B, H, W)
    fg, bg = box_masks(targets, b, h, w)
    loss = alpha_fg * _weighted_mean(error, fg * t_spatial) + beta_bg * _weighted_mean(error, bg * t_spatial)
    if gamma_at > 0:
        loss = loss + gamma_at * ((t_spatial - s_spatial).abs().mean() + (t_channel - s_channel).abs().mean())
    return loss


def key_feature_loss(teachers: list[torch.Tensor], students: list[torch.Tensor], targets: torch.Tensor,
                     temperature: float = 0.5, alpha_fg: float = 1.0, beta_bg: float = 0.5,
                     gamma_at: float = 1.0) -> torch.Tensor:
    """Mean of :func:`level_loss` over levels; teacher tensors are detached here."""
    losses = [level_loss(t.detach(), s, targets, temperature, alpha_fg, beta_bg, gamma_at)
              for t, s in zip(teachers, students)]
    return torch.stack(losses).mean()
