"""Baseline: FitNet hints, L2 between adapted student and teacher neck features.

Romero et al. 2015, "FitNets: Hints for Thin Deep Nets": a regressor (here the shared 1x1 conv + BN
connector of mot_kd.kd.adapters) maps the student's hint layer to the teacher's channels and the student
minimises the squared error to the teacher's feature, every cell and channel alike:

  L = mean_levels mean_{b,c,h,w} (adapter(S) - T)^2.

What ours (key-feature, losses/key_feature.py) does differently: it weights cells by gt foreground /
background (normalised separately) and by the teacher's spatial and channel attention, so the sea of
background cells in a MOT frame does not dominate, and adds an attention-transfer term.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def fitnet_loss(teachers: list[torch.Tensor], students: list[torch.Tensor]) -> torch.Tensor:
    """Mean over levels of the MSE between adapted student features and (detached) teacher features."""
    return torch.stack([F.mse_loss(s, t.detach()) for t, s in zip(teachers, students)]).mean()
