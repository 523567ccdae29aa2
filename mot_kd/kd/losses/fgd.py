"""Baseline: focal and global distillation (FGD) of neck features, with its learnable global blocks.

Yang et al. 2022, "Focal and Global Knowledge Distillation for Detectors" (CVPR), as in the authors' code
(yzd-v/FGD, ``FeatureLoss``). Per level, teacher T and adapted student S (B, C, H, W):

* attention at temperature T_a: A_s(F) = HW * softmax_hw(mean_c |F| / T_a), A_c(F) = C * softmax_c(mean_hw |F| / T_a);
* focal: M_fg = 1 / (cells of the box) on gt boxes (max over overlaps), M_bg = 1 off boxes normalised to
  sum 1 per image; with the teacher's attention,
  L_fg = sum (M_fg A_s(T) A_c(T) (S - T)^2) / B, L_bg likewise with M_bg;
* attention mask loss L_mask = sum|A_c(T) - A_c(S)| / B + sum|A_s(T) - A_s(S)| / B;
* global: a GcBlock per side (context = softmax_hw(conv_mask(F)) pooling, then 1x1 conv -> LayerNorm -> ReLU
  -> 1x1 conv, added to F), one block for the student and one for the teacher, both learnable (they are KD
  parameters; the teacher's feature is detached but its block trains), L_rela = sum (G_s(S) - G_t(T))^2 / B.

loss = mean_levels (alpha_fg L_fg + beta_bg L_bg + gamma_mask L_mask + lambda_rela L_rela), the paper's
RetinaNet defaults (temperature 0.5, 1e-3, 5e-4, 1e-3, 5e-6). Sums, not means, as in the paper: the terms
grow with C*H*W, so ``weight`` must be balanced per model (python -m mot_kd.kd.bench_gradients).

Differences from the authors' code: the connector is the shared 1x1 conv + BN (theirs: a 1x1 conv with
bias); a box covers the cells its extent touches (floor..ceil, exclusive) as in mot_kd.kd.masks (theirs:
floor..ceil inclusive). The last conv of each GcBlock starts at zero, so at initialisation G(F) = F and an
identical student has zero loss; once the two blocks have trained apart, L_rela of an identical student is
no longer 0 (the global term compares two *different* learnt relations).

What ours (key-feature) does differently: no global relation term and no learnable blocks; foreground and
background terms are weighted means normalised separately, so their balance does not depend on box sizes.
"""
from __future__ import annotations

from loguru import logger
import torch
from torch import nn

from mot_kd.kd.adapters import module_key
from mot_kd.kd.losses.key_feature import attention
from mot_kd.kd.masks import box_masks


class GcBlock(nn.Module):
    """GCNet's global context block as FGD uses it (one per level and side)."""

    def __init__(self, channels: int):
        super().__init__()
        hidden = max(1, channels // 2)
        self.conv_mask = nn.Conv2d(channels, 1, 1)
        self.channel_add = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.LayerNorm([hidden, 1, 1]),
                                         nn.ReLU(inplace=True), nn.Conv2d(hidden, channels, 1))
        nn.init.kaiming_normal_(self.conv_mask.weight, mode="fan_in", nonlinearity="relu")
        nn.init.zeros_(self.conv_mask.bias)
        nn.init.zeros_(self.channel_add[-1].weight)  # FGD's last_zero_init: the block starts as the identity
        nn.init.zeros_(self.channel_add[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c = x.shape[:2]
        weights = self.conv_mask(x).view(b, 1, -1).softmax(-1)  # (B, 1, HW)
        context = torch.bmm(x.view(b, c, -1), weights.transpose(1, 2)).view(b, c, 1, 1)
        return x + self.channel_add(context)


def _block_pair(channels: int, device: torch.device) -> nn.ModuleDict:
    """One tap's learnable global blocks: the student's and the teacher's."""
    return nn.ModuleDict({"student": GcBlock(channels), "teacher": GcBlock(channels)}).to(device)


class FGDLoss(nn.Module):
    """FGD over neck levels; holds the student/teacher GcBlocks, created per tap at first sight of its channels."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleDict()
        self.handed_out = False  # set by KDHooks.parameters(): blocks created later are not in the optimizer

    def ensure(self, tap: str, channels: int, device: torch.device) -> nn.ModuleDict:
        key = module_key(tap)
        if key not in self.blocks:
            self.blocks[key] = _block_pair(channels, device)
            if self.handed_out:
                logger.warning(f"FGD global blocks for '{tap}' created after kd.parameters() was read; they are not "
                               "in your optimizer: call kd.build(sample_images) before creating the optimizer")
        return self.blocks[key]

    def forward(self, taps: list[str], teachers: list[torch.Tensor], students: list[torch.Tensor],
                targets: torch.Tensor, temperature: float = 0.5, alpha_fg: float = 1e-3, beta_bg: float = 5e-4,
                gamma_mask: float = 1e-3, lambda_rela: float = 5e-6) -> torch.Tensor:
        losses = []
        for tap, teacher, student in zip(taps, teachers, students):
            teacher = teacher.detach()
            b, c, h, w = teacher.shape
            t_spatial, t_channel = attention(teacher, temperature)
            s_spatial, s_channel = attention(student, temperature)
            fg, bg = box_masks(targets, b, h, w)
            bg = bg / bg.sum((1, 2), keepdim=True).clamp_min(1.0)
            weight = t_spatial[:, None] * t_channel[:, :, None, None]  # (B, C, H, W)
            error = weight * (student - teacher) ** 2
            l_fg = (error * fg[:, None]).sum() / b
            l_bg = (error * bg[:, None]).sum() / b
            l_mask = ((t_channel - s_channel).abs().sum() + (t_spatial - s_spatial).abs().sum()) / b
            blocks = self.ensure(tap, c, student.device)
            l_rela = ((blocks["student"](student) - blocks["teacher"](teacher)) ** 2).sum() / b
            losses.append(alpha_fg * l_fg + beta_bg * l_bg + gamma_mask * l_mask + lambda_rela * l_rela)
        return torch.stack(losses).mean()

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Create the blocks a checkpoint names (channels from conv_mask's weight) before loading them."""
        start = prefix + "blocks."
        for name, value in state_dict.items():
            if name.startswith(start) and name.endswith(".student.conv_mask.weight"):
                key = name[len(start):-len(".student.conv_mask.weight")]
                if key not in self.blocks:
                    self.blocks[key] = _block_pair(value.shape[1], value.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
