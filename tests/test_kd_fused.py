"""Fused-model (hybrid) distillation: the teacher stays bit-identical, a student built from the teacher's own
modules with identity adapters reproduces the teacher, gradients reach only the student modules before the fuse
point and the adapters, fuse points that cannot be re-entered are one-line errors; our models out of the box."""
from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from test_kd_hooks import frozen_bn
from test_kd_toys import TOY_CFG, ToyTracker, make_targets
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks
from mot_kd.models import build_model

IMAGES = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(4))
TARGETS = make_targets()
ONLY_FUSED = {**TOY_CFG, "fused": {"enabled": True}, "losses": {n: {"enabled": False}
                                                                  for n in ("erc", "key_feature", "pred_diff")}}


def test_hybrid_of_the_teachers_own_modules_is_the_teacher():
    torch.manual_seed(0)
    teacher = ToyTracker(16, 32)
    student = frozen_bn(copy.deepcopy(teacher))  # every student module replaced by the teacher's
    kd = KDHooks(teacher, student, ONLY_FUSED)
    assert list(kd.parameters()) == []  # same architecture, same channels: identity adapters
    with torch.no_grad():
        own = teacher(IMAGES)
    student(IMAGES)
    student_taps = kd.student_recorder.take(kd._flat(kd.student_taps))
    teacher_taps = kd.run_teacher(IMAGES)
    hybrid = kd.hybrid.run(IMAGES, "neck", [student_taps[n] for n in kd.student_taps["neck"]],
                           [teacher_taps[n] for n in kd.teacher_taps["neck"]])
    for level, name in enumerate(kd.teacher_taps["cls"]):
        assert torch.allclose(hybrid[name], own["cls"][level], atol=1e-6)
    assert torch.allclose(hybrid["embedding"], own["embedding"], atol=1e-6)
    student(IMAGES)
    loss, parts = kd(IMAGES, TARGETS)
    assert set(parts) == {"fused"} and abs(float(parts["fused"])) < 1e-5


def test_training_the_hybrid_leaves_the_teacher_bit_identical_and_moves_only_modules_before_the_fuse_point():
    torch.manual_seed(1)
    teacher, student = ToyTracker(16, 32).train(), ToyTracker(8, 16).train()
    before = {k: v.clone() for k, v in teacher.state_dict().items()}  # weights and BN running stats
    kd = KDHooks(teacher, student, ONLY_FUSED)
    adapters = list(kd.parameters())
    assert adapters  # 8 -> 16 channels: conv + BN adapters
    optimizer = torch.optim.SGD(list(student.parameters()) + adapters, lr=0.05)
    losses = []
    for _ in range(5):
        optimizer.zero_grad()
        student(IMAGES)
        loss, _ = kd(IMAGES, TARGETS)
        loss.backward()
        losses.append(float(loss.detach()))
        assert all(p.grad is None for p in teacher.parameters())
        assert student.neck["p5"][0].weight.grad.abs().sum() > 0 and student.stem[0][0].weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in student.head.parameters())  # after the fuse point: the teacher's head
        assert student.embedding.weight.grad is None
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters if p.dim() == 4)
        optimizer.step()
    assert losses[-1] < losses[0]
    kd.remove()
    after = teacher.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


class SideTracker(ToyTracker):
    """A module that runs in the forward but feeds nothing the head or embedding read."""

    def __init__(self, width, id_dim):
        super().__init__(width, id_dim)
        self.side = nn.Conv2d(3, width, 1)

    def forward(self, x):
        self.side(x)
        return super().forward(x)


@pytest.mark.parametrize("cfg, message", [
    ({"fused": {"enabled": True, "points": ["backbone"]}, "taps": {"backbone": ["side"]}},
     r"fuse point 'backbone' cannot be re-entered: the teacher's head/embedding taps do not depend on 'side'"),
    ({"fused": {"enabled": True, "points": ["backbone"]}, "taps": {"backbone": ["side"]}, "build_input_size": None},
     r"fuse point 'backbone' cannot be re-entered"),  # no dry run: checked at the first kd() call
    ({"fused": {"enabled": True}, "taps": {"neck": ["neck.p3[0]", "neck.p4", "neck.p5"]}},
     r"tap 'neck.p3\[0\]' cannot be re-entered: a fuse point must be a module's whole"),
    ({"fused": {"enabled": True, "points": ["cls"]}}, r"'cls' is not a feature tap group"),
    ({"fused": {"enabled": True, "points": "neck"}}, r"fused.points: expected a non-empty list"),
])
def test_fuse_points_that_cannot_be_re_entered_are_one_line_errors(cfg, message):
    torch.manual_seed(2)
    student = SideTracker(8, 16).train()
    with pytest.raises(InputError, match=message) as err:
        kd = KDHooks(SideTracker(16, 32), student, {**TOY_CFG, **cfg})
        student(IMAGES)
        kd(IMAGES, TARGETS)
    assert "\n" not in str(err.value)


def test_fused_off_by_schedule_keeps_its_adapters_in_the_graph():
    torch.manual_seed(3)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, student, {**TOY_CFG, "fused": {"enabled": True, "start_epoch": 1}})
    student(IMAGES)
    loss, parts = kd(IMAGES, TARGETS, epoch=0)
    assert float(parts["fused"]) == 0 and float(parts["pred_diff"]) > 0
    loss.backward()
    assert all(p.grad is not None for p in kd.hybrid.parameters())  # zero grads, but DDP sees them used


def test_our_ghost_student_fuses_into_a_yolov5_teacher_at_backbone_and_neck():
    torch.manual_seed(4)
    teacher, student = build_model("yolov5n", id_dim=16), build_model("yolov5n-ghost", id_dim=8).train()
    kd = KDHooks(teacher, student, {"fused": {"enabled": True, "points": ["backbone", "neck"]}})
    images = torch.rand(2, 3, 64, 96)
    student(images)
    loss, parts = kd(images, TARGETS)
    assert float(parts["fused"]) > 0
    loss.backward()
    assert student.backbone.layers[0].conv.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in teacher.parameters())


def test_shipped_fused_config_turns_on_both_fuse_points():
    from mot_kd.kd.settings import load_kd_config

    cfg = load_kd_config("fused")
    assert cfg["fused"]["enabled"] and cfg["fused"]["points"] == ["backbone", "neck"]
