"""Sparsity training and fine-tunes of pruned models, run by the project's trainer (``mot_kd.train``).

Why not a second loop: data order, EMA, validation, checkpoints and KD wiring are the trainer's; a pruned
model is just a checkpoint it starts from (``weights``), and distillation is its ``--teacher`` path. The only
addition is network slimming's sparsity penalty, ``lambda * sign(gamma)`` added to every batch-norm scale's
gradient (the subgradient of ``lambda * |gamma|``), installed as gradient hooks on the built student.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from mot_kd.train.cli import run


def add_bn_sparsity(model: nn.Module, strength: float) -> None:
    """Gradient hooks adding ``strength * sign(gamma)`` to each BatchNorm2d weight's gradient."""
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d) and m.weight is not None:
            m.weight.register_hook(lambda grad, w=m.weight: grad + strength * torch.sign(w.detach()))


@dataclass(frozen=True)
class FineTune:
    """What every training run of one prune job shares: architecture label, data config, settings, device."""

    arch: str
    data: str
    settings: dict
    device: str

    def __call__(self, weights: Path, out: Path, epochs: int, teacher: Path | None = None, kd: str | None = None,
                 sparsity: float = 0.0) -> Path:
        """Train from ``weights`` for ``epochs`` into ``out``; distil from ``teacher`` with ``kd`` when given.

        Returns the run's best checkpoint (by the validation metric; the last epoch without validation data).
        """
        job = {"arch": self.arch, "weights": str(weights), "data": self.data,
               "settings": {**self.settings, "epochs": epochs}, "out": str(out),
               "teacher": str(teacher) if teacher else None, "kd": kd if teacher else None}
        run(job, self.device, prepare=(lambda student: add_bn_sparsity(student, sparsity)) if sparsity else None)
        return out / "weights" / "best.pt"
