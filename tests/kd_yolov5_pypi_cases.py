"""Upstream anchor-based YOLOv5 (the `yolov5` PyPI package: DetectionModel + ComputeLoss) under KDHooks.

Run by tests/test_kd_yolov5_pypi.py in a child process with the package folder `make test` installs beside the
env (.venv/yolov5-pkgs) last on sys.path: importing yolov5 changes process-wide state (OMP_NUM_THREADS and other
environment variables, OpenCV's thread count, numpy/torch print options, warning filters), which must not leak
into the other tests. By hand: ``python -c "import sys; sys.path.append('.venv/yolov5-pkgs'); import pytest;
pytest.main(['tests/kd_yolov5_pypi_cases.py'])"``.
"""
from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml
import yolov5
from yolov5.models.yolo import DetectionModel
from yolov5.utils.loss import ComputeLoss

from mot_kd.errors import InputError
from mot_kd.kd import KDHooks

ROOT = Path(yolov5.__file__).parent
BASE = yaml.safe_load((ROOT / "models" / "yolov5s.yaml").read_text())
PRED = ["model.24.m.0", "model.24.m.1", "model.24.m.2"]
ONLY_PD = {"erc": {"enabled": False}, "key_feature": {"enabled": False}}


def model(width: float) -> DetectionModel:
    m = DetectionModel(copy.deepcopy(dict(BASE, depth_multiple=0.33, width_multiple=width)), ch=3, nc=1)
    m.hyp = yaml.safe_load((ROOT / "data" / "hyps" / "hyp.scratch-low.yaml").read_text())
    return m


def cfg(pred=PRED, losses=ONLY_PD) -> dict:
    return {"taps": {"pred": pred, "neck": ["model.17", "model.20", "model.23"]},
            "head": {"family": "yolo_anchor", "anchors": BASE["anchors"], "box": "yolov5"}, "losses": losses}


def test_upstream_yolov5_distils_with_the_yolo_anchor_family():
    torch.manual_seed(0)
    teacher, student = model(0.25), model(0.125).train()
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(0))
    assert [tuple(p.shape) for p in student(x)] == [(2, 3, 8, 12, 6), (2, 3, 4, 6, 6), (2, 3, 2, 3, 6)]
    targets = torch.tensor([[0, 0, -1, 0.3, 0.4, 0.1, 0.3], [1, 0, -1, 0.5, 0.5, 0.2, 0.4]])
    kd = KDHooks(teacher, student, cfg(), sample_input=torch.zeros(1, 3, 64, 96))
    optimizer, values = torch.optim.Adam(student.parameters(), lr=3e-3), []
    for _ in range(15):
        student(x)
        loss, _ = kd(x, targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 0.5 * values[0]
    kd.remove()


def test_upstream_yolov5_loop_with_compute_loss_and_the_dfl_trap():
    torch.manual_seed(1)
    teacher, student = model(0.25), model(0.125).train()
    compute_loss = ComputeLoss(student)
    kd = KDHooks(teacher, student, cfg(losses={"erc": {"enabled": False}}), sample_input=torch.zeros(1, 3, 64, 96))
    optimizer = torch.optim.SGD([*student.parameters(), *kd.parameters()], lr=1e-3, momentum=0.9)
    y5 = torch.tensor([[0, 0, 0.3, 0.4, 0.1, 0.3], [1, 0, 0.5, 0.5, 0.2, 0.4]])  # [image, class, x, y, w, h]
    ours = torch.cat([y5[:, :2], -torch.ones(2, 1), y5[:, 2:]], 1)
    for step in range(2):
        x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(step))
        loss, _ = compute_loss(student(x), y5)  # ultralytics' YOLOv5 loss: x batch size
        kd_loss, parts = kd(x, ours)
        optimizer.zero_grad()
        (loss + kd_loss * x.shape[0]).backward()
        optimizer.step()
        assert torch.isfinite(loss + kd_loss) and all(float(v) > 0 for v in parts.values())
    kd.remove()
    with pytest.raises(InputError, match="18 = 3 anchors \\* \\(5 \\+ 1\\) is a YOLO anchor head"):
        KDHooks(teacher, student, {"taps": {"box": PRED, "cls": PRED}, "losses": ONLY_PD},
                sample_input=torch.zeros(1, 3, 64, 96))
