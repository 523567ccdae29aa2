"""Quantization-aware fine-tuning with distillation: a fake-quant copy of the model learns from its FP32 self.

Why: when post-training INT8 loses too much, the weights can adapt to the rounding. The student is the fused
model with every convolution's input fake-quantized per tensor (uint8, asymmetric) and its weights per output
channel (int8, symmetric) by ``torch.ao.quantization.FakeQuantize``, the scheme ONNX Runtime's static
quantizer uses; the teacher is the FP32 model, through :class:`mot_kd.kd.KDHooks` with the three MOT losses
(ERC, key-feature, prediction-difference) on the ``--calib`` sequences' ground truth. The fine-tuned weights
are then exported and quantized by the same ORT quantizer as PTQ, so both INT8 paths give the same graph.
"""
from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass
from pathlib import Path

import torch
from loguru import logger
from torch import nn
from torch.ao.quantization import FakeQuantize, MovingAverageMinMaxObserver, MovingAveragePerChannelMinMaxObserver
from tqdm import tqdm

from mot_kd.errors import InputError
from mot_kd.export.fuse import fuse_conv_bn
from mot_kd.models import JDEModel


@dataclass(frozen=True)
class QATSettings:
    """Where the labelled frames are and how long to fine-tune."""

    data_root: str | Path
    imgsz: tuple[int, int]
    steps: int = 100
    batch: int = 4
    lr: float = 1e-6
    kd: str | Path | dict = "default"
    seed: int = 0
    detection_loss: bool = True  # + the JDE detection loss on the gt (box, cls, DFL; no identity classifier)
    split: str = "full"  # frames of data_root to train on (train_half when the bench evaluates val_half)

    def check(self) -> None:
        if self.steps < 1 or self.batch < 1 or not self.lr > 0:
            raise InputError(f"--qat: steps and batch must be >= 1 and lr > 0 (got {self.steps}, {self.batch}, "
                             f"{self.lr})")


class FakeQuantConv(nn.Module):
    """A (fused) ``Conv2d`` whose input and weights pass through INT8 fake quantization."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        self.conv = conv
        self.act_fq = FakeQuantize(observer=MovingAverageMinMaxObserver, quant_min=0, quant_max=255,
                                   dtype=torch.quint8, qscheme=torch.per_tensor_affine)
        self.weight_fq = FakeQuantize(observer=MovingAveragePerChannelMinMaxObserver, quant_min=-128,
                                      quant_max=127, dtype=torch.qint8, qscheme=torch.per_channel_symmetric,
                                      ch_axis=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv._conv_forward(self.act_fq(x), self.weight_fq(self.conv.weight), self.conv.bias)


def fake_quant_copy(model: JDEModel) -> JDEModel:
    """A fused copy of ``model`` with every ``Conv2d`` wrapped in :class:`FakeQuantConv` (module names kept)."""
    student = copy.deepcopy(model).cpu().float()
    frozen = {name for name, p in student.named_parameters() if not p.requires_grad}  # DFL's fixed projection
    fuse_conv_bn(student)  # ultralytics' fusion returns convolutions with gradients off: trainable again here
    for name, p in student.named_parameters():
        p.requires_grad_(name not in frozen)
    for module in list(student.modules()):
        for name, child in list(module.named_children()):
            if type(child) is nn.Conv2d and child.weight.requires_grad:  # DFL stays exact
                setattr(module, name, FakeQuantConv(child))
    return student


def strip_fake_quant(student: JDEModel) -> JDEModel:
    """The fine-tuned FP32 weights as a plain (fused) model, ready for export and ORT quantization."""
    model = copy.deepcopy(student).eval()
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, FakeQuantConv):
                setattr(module, name, child.conv)
    return model


def _dataset(settings: QATSettings):
    from mot_kd.data.dataset import MOTSource, MOTTrainDataset

    source = MOTSource(Path(settings.data_root), split=settings.split, detector="all")
    return MOTTrainDataset.from_sources([source], settings.imgsz, augment=None, seed=settings.seed)


def _batches(dataset, settings: QATSettings):
    from mot_kd.data.dataset import build_loader

    for epoch in itertools.count():
        yield from build_loader(dataset, settings.batch, shuffle=True, seed=settings.seed, epoch=epoch)


def qat_finetune(model: JDEModel, settings: QATSettings, teacher: nn.Module | None = None
                 ) -> tuple[JDEModel, list[float]]:
    """Fine-tune a fake-quant copy of ``model`` with KD from ``teacher`` (default: ``model`` itself in FP32).

    Returns the stripped FP32-weight model and the loss (KD + detection) of every step.
    """
    from mot_kd.kd import KDHooks
    from mot_kd.models import JDELoss

    settings.check()
    if teacher is None:  # the same fused network with fake quantization off: the FP32 model, and KDHooks' adapter
        teacher = fake_quant_copy(model)  # 'auto' sees one architecture, so the feature taps need no adapter
        teacher.apply(torch.ao.quantization.disable_fake_quant)
        teacher.apply(torch.ao.quantization.disable_observer)
    teacher = copy.deepcopy(teacher).cpu().float().eval()
    student = fake_quant_copy(model)
    dataset = _dataset(settings)
    batches = _batches(dataset, settings)
    kd = KDHooks(teacher, student, settings.kd)
    criterion = JDELoss(student, max(dataset.num_ids, 2), id_weight=0.0) if settings.detection_loss else None
    params = [p for p in itertools.chain(student.parameters(), kd.parameters()) if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=0.0)
    student.train()
    history = []
    for step in tqdm(range(settings.steps), desc="QAT+KD", leave=False):
        if step == settings.steps // 2:  # second half: ranges frozen, weights settle on the final grid
            student.apply(torch.ao.quantization.disable_observer)
        images, targets = next(batches)
        outputs = student(images)
        loss, parts = kd(images, targets)
        if criterion is not None:  # JDELoss sums over the batch, KD is a batch mean
            loss = loss + criterion(outputs, targets)[0] / images.shape[0]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 10.0)
        optimizer.step()
        history.append(float(loss.detach()))
    kd.remove()
    logger.info(f"QAT+KD: {settings.steps} steps, loss {history[0]:.4f} -> {history[-1]:.4f} "
                f"({', '.join(f'{k} {float(v):.4f}' for k, v in parts.items())})")
    return strip_fake_quant(student), history

