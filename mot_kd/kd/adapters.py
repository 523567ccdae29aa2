"""Lazily built connectors that map student feature channels to teacher channels (1x1 conv + BN).

Why lazy: KDHooks knows only module names, not channel counts; the first recorded pair of tensors tells us
both. ``load_state_dict`` rebuilds missing connectors from the saved weight shapes, so a checkpoint can be
restored before any forward pass. Why ``auto`` needs more than equal channel counts: equal widths of two
different architectures (a ghost student, a C3 teacher) do not make their channels correspond, so the
identity is used only where the tap is computed by the same architecture (:func:`architecture`).
"""
from __future__ import annotations

import re

from loguru import logger
import torch
from torch import nn

from mot_kd.errors import InputError


def module_key(tap: str) -> str:
    """ModuleDict keys may not contain dots; a tap spec's label ('m[0]@call1') becomes a plain identifier."""
    return re.sub(r"\W", "_", tap.replace(".", "__"))


def _class_path(module: nn.Module) -> str:
    return f"{type(module).__module__}.{type(module).__qualname__}"


def architecture(model: nn.Module, module: nn.Module) -> tuple:
    """What computes ``module``'s tensor, as far as registration order tells: class path and own parameter
    shapes of every module of ``model`` (DDP/DataParallel unwrapped) up to the end of ``module``'s subtree."""
    while isinstance(model, (nn.DataParallel, nn.parallel.DistributedDataParallel)):
        model = model.module
    inside = {id(m) for m in module.modules()}
    signature, reached = [], False
    for m in model.modules():
        if reached and id(m) not in inside:
            break
        reached = reached or id(m) in inside
        signature.append((_class_path(m), tuple(tuple(p.shape) for p in m.parameters(recurse=False))))
    return tuple(signature)


def make_connector(in_channels: int, out_channels: int) -> nn.Sequential:
    """1x1 conv (no bias; BN carries it) followed by BatchNorm, as in FGD/mmrazor connectors."""
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, bias=False), nn.BatchNorm2d(out_channels))


class LazyConnectors(nn.Module):
    """One connector per tap, created from the first seen (student, teacher) channel counts.

    ``mode='auto'`` uses the identity for the taps in ``identity_taps`` (computed by the same architecture
    in teacher and student, so a student identical to its teacher has zero feature loss) when their channel
    counts match; ``mode='always'`` always builds conv + BN.
    """

    def __init__(self, mode: str = "auto", identity_taps=()):
        super().__init__()
        self.mode = mode
        self.identity_taps = set(identity_taps)
        self.adapters = nn.ModuleDict()
        self.handed_out = False  # set by KDHooks.parameters(); adapters created later are warned about

    def needs_adapter(self, tap: str, in_channels: int, out_channels: int) -> bool:
        return self.mode == "always" or in_channels != out_channels or tap not in self.identity_taps

    def ensure(self, tap: str, in_channels: int, out_channels: int, device: torch.device) -> nn.Module | None:
        """The connector for ``tap`` (created on first use), or None when the identity is used."""
        if not self.needs_adapter(tap, in_channels, out_channels):
            return None
        key = module_key(tap)
        if key not in self.adapters:
            self.adapters[key] = make_connector(in_channels, out_channels).to(device).train(self.training)
            if self.handed_out:
                logger.warning(f"KD adapter for '{tap}' created after kd.parameters() was read; it is not in "
                               "your optimizer: call kd.build(sample_images) before creating the optimizer")
        conv = self.adapters[key][0]
        if (conv.in_channels, conv.out_channels) != (in_channels, out_channels):
            raise InputError(f"tap '{tap}': adapter built for {conv.in_channels}->{conv.out_channels} channels "
                             f"but got {in_channels}->{out_channels}")
        return self.adapters[key]

    def forward(self, tap: str, student_feature: torch.Tensor, out_channels: int) -> torch.Tensor:
        """Map ``student_feature`` (B, C_s, H, W) to ``out_channels``; moves a connector to the feature's device."""
        adapter = self.ensure(tap, student_feature.shape[1], out_channels, student_feature.device)
        if adapter is None:
            return student_feature
        if adapter[0].weight.device != student_feature.device:
            adapter.to(student_feature.device)
        return adapter(student_feature)

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        """Create connectors named in the checkpoint before loading them (so loading works before build)."""
        weight_prefix = prefix + "adapters."
        for name, value in state_dict.items():
            if name.startswith(weight_prefix) and name.endswith(".0.weight"):
                key = name[len(weight_prefix):-len(".0.weight")]
                if key not in self.adapters:
                    out_channels, in_channels = value.shape[:2]
                    self.adapters[key] = make_connector(in_channels, out_channels).to(value.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)
