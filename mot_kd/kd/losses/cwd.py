"""Baseline: channel-wise distillation (CWD) of neck features.

Shu et al. 2021, "Channel-wise Knowledge Distillation for Dense Prediction" (ICCV): each channel's
activation map is turned into a distribution over its H*W positions by a softmax at temperature T, and the
student matches the teacher's distribution per channel (mmrazor's ChannelWiseDivergence):

  L = mean_levels T^2 / (B * C) * sum_{b,c} KL(softmax_hw(T_bc / T) || softmax_hw(adapter(S)_bc / T)).

What ours (key-feature) does differently: CWD lets each channel decide where to look (its own softmax),
with no notion of gt foreground, background or small people; ours weights cells by gt masks and the
teacher's attention and matches the feature values themselves.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def level_cwd(teacher: torch.Tensor, student: torch.Tensor, temperature: float) -> torch.Tensor:
    """CWD of one level (B, C, H, W); ``student`` already has the teacher's channels."""
    b, c = teacher.shape[:2]
    t_log = F.log_softmax(teacher.detach().flatten(2) / temperature, dim=-1)
    s_log = F.log_softmax(student.flatten(2) / temperature, dim=-1)
    return temperature ** 2 * (t_log.exp() * (t_log - s_log)).sum() / (b * c)


def cwd_loss(teachers: list[torch.Tensor], students: list[torch.Tensor], temperature: float = 1.0) -> torch.Tensor:
    """Mean of :func:`level_cwd` over levels."""
    return torch.stack([level_cwd(t, s, temperature) for t, s in zip(teachers, students)]).mean()
