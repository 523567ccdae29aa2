"""Scoring a candidate with inherited weights: BN recalibration, then tracker + evaluator on the tune split.

Why recalibrate: the supernet's batch-norm statistics mix every path that shared a layer, so a path's own
statistics are re-estimated (cumulative average over a few training batches) before it is judged; the
judgement is tracking (IDF1, MOTA on the tune sequences), the signal the student is deployed for.
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import torch
from torch import nn

from mot_kd.nas.supernet import Supernet


@torch.no_grad()
def recalibrate_bn(model: nn.Module, batches: list[torch.Tensor]) -> nn.Module:
    """Reset every BatchNorm's running statistics and re-estimate them on ``batches`` (images); eval mode after."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # cumulative moving average: every batch counts the same
    model.train()
    for images in batches:
        model(images)
    for m, momentum in zip(norms, saved):
        m.momentum = momentum
    return model.eval()


@torch.no_grad()
def cpu_latency_ms(model: nn.Module, imgsz: tuple[int, int], repeats: int = 3) -> float:
    """Median wall time of one (1, 3, H, W) forward on this machine (load-dependent: label it when quoting)."""
    w, h = imgsz
    x = torch.zeros(1, 3, h, w)
    model.eval()(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model(x)
        times.append(time.perf_counter() - start)
    return 1000 * sorted(times)[len(times) // 2]


class TrackingScorer:
    """``scorer(candidate) -> {"IDF1", "MOTA"}``: inherit, recalibrate, track, evaluate ``split`` of ``data_root``."""

    def __init__(self, supernet: Supernet, calib: list[torch.Tensor], data_root: str | Path, split: str = "val_half",
                 sequences: list[str] | None = None, imgsz: tuple[int, int] = (320, 192), detector: str = "all",
                 tracker: str | dict = "default"):
        self.net, self.calib, self.data_root, self.split = supernet, calib, Path(data_root), split
        self.sequences, self.imgsz, self.detector, self.tracker = sequences, tuple(imgsz), detector, tracker

    def __call__(self, candidate: dict) -> dict:
        from eval.model_run import RunSettings, track_and_evaluate

        model = recalibrate_bn(self.net.extract(candidate), self.calib)
        with tempfile.TemporaryDirectory(prefix="nas-score-") as tmp:
            result, _, _ = track_and_evaluate(model, self.data_root, tmp, self.split, self.detector, self.sequences,
                                              RunSettings(self.imgsz, tracker=self.tracker))
        return {"IDF1": float(result.combined["IDF1"]), "MOTA": float(result.combined["MOTA"])}
