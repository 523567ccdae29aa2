"""The deployable copy of a model: Conv+BN fused, adaptive pooling as fixed matrices, outputs the tracker needs.

Why fuse before export: each BatchNorm folded into its convolution's weights and bias is one memory pass
less per layer, and it is what INT8 quantization needs (the quantized weights are the fused ones). The
fusion is ultralytics' (``fuse_conv_and_bn`` + ``Conv.forward_fuse``), applied to a copy so the caller's
model keeps training unchanged.
"""
from __future__ import annotations

import copy
import math

import torch
from torch import nn
from ultralytics.utils.torch_utils import fuse_conv_and_bn

from mot_kd.models import JDEModel


class FixedAdaptivePool(nn.Module):
    """``AdaptiveAvgPool2d(size)`` as two averaging matrices: ONNX has no adaptive pooling whose output size does
    not divide the input (the decoupling module pools a 6-row P5 map to 8 rows at 320x192)."""

    def __init__(self, output_size: int):
        super().__init__()
        self.output_size = int(output_size)

    def _matrix(self, length: int, like: torch.Tensor) -> torch.Tensor:
        rows = torch.zeros(self.output_size, length, dtype=like.dtype, device=like.device)
        for i in range(self.output_size):  # PyTorch's bins: [floor(i L / n), ceil((i + 1) L / n))
            start, end = (i * length) // self.output_size, math.ceil((i + 1) * length / self.output_size)
            rows[i, start:end] = 1.0 / (end - start)
        return rows

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = int(x.shape[-2]), int(x.shape[-1])  # fixed at export: only the batch axis may be dynamic
        return self._matrix(h, x) @ x @ self._matrix(w, x).T


class DeployModel(nn.Module):
    """``forward(images) -> (dets (B, 4 + nc, A) xywh input pixels + class probabilities, embedding map)``.

    The outputs are what :func:`mot_kd.models.predict.postprocess` takes: decoded boxes and scores before NMS
    (the NMS and the per-box embedding lookup stay on the host, shared by every backend).
    """

    def __init__(self, model: JDEModel):
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        out = self.model(images)
        box, cls = self.model.split_feats(out["feats"])
        return self.model.head.decode(box, cls), out["embedding"]


def fuse_conv_bn(model: nn.Module) -> int:
    """Fold every ultralytics ``Conv``'s BatchNorm into its convolution in place; returns how many were fused."""
    fused = 0
    for module in model.modules():
        if hasattr(module, "forward_fuse") and isinstance(getattr(module, "bn", None), nn.BatchNorm2d):
            module.conv = fuse_conv_and_bn(module.conv, module.bn)
            delattr(module, "bn")
            module.forward = module.forward_fuse
            fused += 1
    return fused


def deploy_copy(model: JDEModel) -> DeployModel:
    """A fused, export-ready copy in eval mode on the CPU (the original is left as it was)."""
    model = copy.deepcopy(model).cpu().float().eval()
    fuse_conv_bn(model)
    for name, module in list(model.named_modules()):
        for child_name, child in list(module.named_children()):
            if isinstance(child, nn.AdaptiveAvgPool2d):
                size = child.output_size
                if isinstance(size, (tuple, list)):
                    size = size[0] if len(set(size)) == 1 else None
                if size is None:
                    raise ValueError(f"{name}.{child_name}: only square adaptive pooling is exportable")
                setattr(module, child_name, FixedAdaptivePool(size))
    leftover = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    if leftover:
        raise ValueError(f"BatchNorm layers outside a fusable Conv: {', '.join(leftover[:5])}")
    return DeployModel(model).eval()
