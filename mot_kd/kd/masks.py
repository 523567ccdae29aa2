"""Ground-truth foreground/background masks and target cells on a feature grid, fully vectorised.

Targets follow docs/ARCHITECTURE.md: rows ``[batch_idx, cls, identity, cx, cy, w, h]`` with boxes normalised
to [0, 1] by the input size, so the same targets serve every pyramid level.
"""
from __future__ import annotations

import torch

from mot_kd.errors import InputError


def check_targets(targets: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Validate the (M, 7) target layout; returns float32 targets."""
    if not isinstance(targets, torch.Tensor) or targets.dim() != 2 or targets.shape[1] != 7:
        shape = tuple(targets.shape) if isinstance(targets, torch.Tensor) else type(targets).__name__
        raise InputError(f"targets: expected a (M, 7) tensor [batch_idx, cls, identity, cx, cy, w, h], got {shape}"
                         f"{_converter_hint(targets)}")
    targets = targets.detach().float()
    if len(targets):
        bi = targets[:, 0]
        if bi.min() < 0 or bi.max() >= batch_size or not torch.equal(bi, bi.round()):
            raise InputError(f"targets: batch_idx must be integers in [0, {batch_size - 1}] for a batch of "
                             f"{batch_size} images")
    return targets


def _converter_hint(targets) -> str:
    """Point a foreign codebase's targets to their converter (mot_kd.kd.targets)."""
    if isinstance(targets, dict):
        return "; a FairMOT batch converts with mot_kd.kd.targets.from_fairmot(batch)"
    if isinstance(targets, torch.Tensor) and targets.dim() == 2 and targets.shape[1] == 6:
        return "; CSTrack/SOTS (M, 6) targets convert with mot_kd.kd.targets.from_cstrack(targets)"
    if isinstance(targets, torch.Tensor) and targets.dim() == 3 and targets.shape[2] == 6:
        return "; JDE's padded (B, N, 6) targets convert with mot_kd.kd.targets.from_jde(targets, targets_len)"
    return ""


def box_masks(targets: torch.Tensor, batch_size: int, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Foreground weights and background mask on a ``height x width`` grid.

    Foreground: every cell a gt box touches gets ``1 / (cells covered by that box)`` (maximum over
    overlapping boxes), so a small person weighs as much as a big one. Background: 1 where no box touches.
    Returns ``(fg, bg)``, both (B, H, W) float32 on the targets' device.
    """
    device = targets.device
    fg = torch.zeros(batch_size, height, width, device=device)
    if len(targets) == 0:
        return fg, torch.ones_like(fg)
    cx, cy, w, h = targets[:, 3:7].clamp(0, 1).unbind(1)
    x1 = ((cx - w / 2).clamp(0, 1) * width).floor()
    y1 = ((cy - h / 2).clamp(0, 1) * height).floor()
    x2 = torch.maximum(((cx + w / 2).clamp(0, 1) * width).ceil(), x1 + 1).clamp(max=width)
    y2 = torch.maximum(((cy + h / 2).clamp(0, 1) * height).ceil(), y1 + 1).clamp(max=height)
    x1, y1 = x1.clamp(max=width - 1), y1.clamp(max=height - 1)
    xs = torch.arange(width, device=device, dtype=torch.float32)
    ys = torch.arange(height, device=device, dtype=torch.float32)
    inside_x = (xs[None] >= x1[:, None]) & (xs[None] < x2[:, None])  # (M, W)
    inside_y = (ys[None] >= y1[:, None]) & (ys[None] < y2[:, None])  # (M, H)
    inside = inside_y[:, :, None] & inside_x[:, None, :]  # (M, H, W)
    weight = 1.0 / ((x2 - x1) * (y2 - y1))  # (M,)
    per_box = (inside.float() * weight[:, None, None]).view(len(targets), -1)
    index = targets[:, 0].long()[:, None].expand_as(per_box)
    fg.view(batch_size, -1).scatter_reduce_(0, index, per_box, "amax", include_self=True)
    return fg, (fg == 0).float()


def centre_cells(targets: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(batch_idx, flat cell index y*W + x) of each target's centre on a ``height x width`` grid."""
    gx = (targets[:, 3] * width).long().clamp(0, width - 1)
    gy = (targets[:, 4] * height).long().clamp(0, height - 1)
    return targets[:, 0].long(), gy * width + gx
