"""Channel importances: the seed's BN-scale + independence score, and Torch-Pruning's baselines.

Why independence: a channel whose activations the other channels of its layer already carry (a near copy,
a constant) can go without losing information even when its BN scale is large; a channel nothing else
reproduces should stay. ``independence = 1 - max_j |corr(c, j)|`` over calibration activations (after each
batch norm), and the seed's score ``w * |gamma| / max|gamma| + (1 - w) * independence`` mixes the two with a
weight ``w`` that the pipeline moves between pruning steps towards whichever choice loses less validation
fitness (``mot_kd.prune.pipeline``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch_pruning as tp
from torch import nn

from mot_kd.errors import InputError

KINDS = ("seed", "bn", "l1")


@dataclass
class ChannelStats:
    """Running sums of one batch norm's output over calibration positions: count, sum, sum of outer products."""

    count: int = 0
    total: torch.Tensor | None = None
    outer: torch.Tensor | None = None

    def add(self, x: torch.Tensor) -> None:
        flat = x.detach().transpose(0, 1).reshape(x.shape[1], -1).double()  # (C, B*H*W)
        self.count += flat.shape[1]
        self.total = flat.sum(1) if self.total is None else self.total + flat.sum(1)
        outer = flat @ flat.T
        self.outer = outer if self.outer is None else self.outer + outer

    def independence(self) -> torch.Tensor:
        """Per channel ``1 - max |correlation|`` with the other channels; a constant channel scores 0."""
        mean = self.total / self.count
        cov = self.outer / self.count - torch.outer(mean, mean)
        std = cov.diagonal().clamp(min=0).sqrt()
        alive = std > 1e-6 * max(float(std.max()), 1e-12)
        corr = (cov / torch.outer(std, std).clamp(min=1e-30)).abs().clamp(max=1.0)
        corr[:, ~alive] = 0.0  # nothing is reconstructed from a constant ...
        corr.fill_diagonal_(0.0)
        score = 1.0 - corr.max(1).values
        score[~alive] = 0.0  # ... and a constant channel is reconstructed by any bias
        return score.float()


@dataclass
class Calibration:
    """Independence scores per batch-norm module name, measured on one model's calibration forwards."""

    scores: dict[str, torch.Tensor] = field(default_factory=dict)

    @classmethod
    @torch.no_grad()
    def measure(cls, model: nn.Module, batches) -> "Calibration":
        """Run ``batches`` (image tensors) through ``model`` in eval mode, recording every BatchNorm2d output."""
        stats: dict[str, ChannelStats] = {}
        hooks = [m.register_forward_hook(lambda _m, _i, out, name=name: stats.setdefault(name, ChannelStats()).add(out))
                 for name, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
        was_training = model.training
        model.eval()
        try:
            seen = 0
            for images in batches:
                model(images)
                seen += 1
        finally:
            model.train(was_training)
            for h in hooks:
                h.remove()
        if not seen:
            raise InputError("calibration: no batch to measure channel independence on")
        return cls({name: s.independence() for name, s in stats.items()})


class SeedImportance(tp.importance.Importance):
    """``w * |gamma| / max|gamma| + (1 - w) * independence`` for one Torch-Pruning group.

    Both terms are averaged over the group's batch norms (coupled layers are pruned together) and lie in
    [0, 1]; a group without batch norm is not ranked (None), as with Torch-Pruning's BN-scale importance.
    ``model`` names the modules whose calibration scores are looked up (pruning works on copies).
    """

    def __init__(self, calibration: Calibration, w: float, model: nn.Module):
        if not 0.0 <= w <= 1.0:
            raise InputError(f"importance weight w: must be in [0, 1], got {w}")
        self.calibration, self.w = calibration, float(w)
        self.names = {m: name for name, m in model.named_modules()}
        self.bn_scale = tp.importance.BNScaleImportance(normalizer="max")

    @torch.no_grad()
    def __call__(self, group) -> torch.Tensor | None:
        scale = self.bn_scale(group)
        if scale is None:
            return None
        total, count = torch.zeros_like(scale), torch.zeros_like(scale)
        for i, (dep, idxs) in enumerate(group):
            if dep.pruning_fn != tp.pruner.function.prune_batchnorm_out_channels:
                continue
            name = self.names.get(dep.layer)
            score = self.calibration.scores.get(name)
            if score is None or len(score) != dep.layer.num_features:
                raise InputError(f"calibration: no independence scores for {name} as it is now "
                                 f"({dep.layer.num_features} channels): calibrate the model being pruned")
            root = torch.tensor(group[i].root_idxs)
            total.scatter_add_(0, root, score[idxs].to(total))
            count.scatter_add_(0, root, torch.ones_like(root, dtype=count.dtype))
        return self.w * scale + (1.0 - self.w) * total / count.clamp(min=1)


def importance_for(kind: str, calibration: Calibration | None = None, w: float = 0.5):
    """``model -> Importance`` for ``kind``: seed (needs ``calibration``), bn (network slimming) or l1."""
    if kind == "seed":
        if calibration is None:
            raise InputError("importance seed: needs calibration batches")
        return lambda model: SeedImportance(calibration, w, model)
    if kind == "bn":
        return lambda model: tp.importance.BNScaleImportance()
    if kind == "l1":
        return lambda model: tp.importance.MagnitudeImportance(p=1)
    raise InputError(f"--importance: {kind!r} is not one of {', '.join(KINDS)}")
