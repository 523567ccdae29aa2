"""bench_gradients: each KD loss's value and gradient reach, measured on tiny mot_kd models."""
from __future__ import annotations

import pytest
import torch

from mot_kd.kd import KDHooks
from mot_kd.kd.bench_gradients import GROUPS, format_table, measure, single_loss_config
from mot_kd.kd.settings import load_kd_config
from mot_kd.models import JDELoss, build_model


@pytest.fixture(scope="module")
def case():
    torch.manual_seed(0)
    teacher, student = build_model("yolov5n", id_dim=16), build_model("yolov5n", id_dim=8).train()
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    targets = torch.tensor([[0, 0, 0, 0.3, 0.5, 0.2, 0.6], [0, 0, 1, 0.7, 0.5, 0.2, 0.5],
                            [1, 0, 2, 0.5, 0.4, 0.3, 0.6], [1, 0, -1, 0.2, 0.6, 0.1, 0.3]])
    criterion = JDELoss(student, num_ids=3)
    return teacher, student, criterion, [(images, targets)]


def test_single_loss_config_keeps_weights_and_enables_one():
    cfg = load_kd_config({"losses": {"erc": {"weight": 3.0}}})
    one = single_loss_config(cfg, "erc")
    assert [n for n, v in one["losses"].items() if v["enabled"]] == ["erc"]
    assert one["losses"]["erc"]["weight"] == 3.0 and cfg["losses"]["key_feature"]["enabled"]


def test_each_loss_reaches_only_its_parts_and_values_add_up(case):
    teacher, student, criterion, batches = case
    rows = measure(teacher, student, criterion, load_kd_config("default"), batches)
    assert set(rows) == {"task", "task_det", "task_id", "kd_erc", "kd_key_feature", "kd_pred_diff"}
    assert rows["task"]["cos_task"] == pytest.approx(1.0)
    assert rows["kd_pred_diff"]["cos_pred_diff"] == pytest.approx(1.0) and abs(rows["kd_erc"]["cos_pred_diff"]) < 1
    assert rows["task"]["value"] == pytest.approx(rows["task_det"]["value"] + rows["task_id"]["value"], rel=1e-5)
    assert rows["task_det"]["embedding"] == 0 and rows["task_id"]["head"] == 0 and rows["task_id"]["embedding"] > 0
    assert rows["kd_erc"]["head"] == 0 and rows["kd_erc"]["embedding"] > 0 and rows["kd_erc"]["backbone"] > 0
    assert rows["kd_key_feature"]["decouple"] == rows["kd_key_feature"]["head"] == 0
    assert rows["kd_key_feature"]["neck"] > 0
    assert rows["kd_pred_diff"]["embedding"] == 0 and rows["kd_pred_diff"]["head"] > 0
    # the per-loss values are the parts the trainer adds (weighted, times the batch size)
    kd = KDHooks(teacher, student, "default")
    images, targets = batches[0]
    student(images)
    total, _ = kd(images, targets)
    kd.remove()
    kd_sum = sum(rows[f"kd_{n}"]["value"] for n in ("erc", "key_feature", "pred_diff"))
    assert kd_sum == pytest.approx(float(total.detach()) * images.shape[0], rel=1e-4)
    table = format_table(rows)
    assert table.count("\n") == len(rows) + 1 and all(f"|g| {g}" in table for g in GROUPS)
    assert "cos(trunk, pred-diff)" in table


def test_hooks_are_removed_after_measuring(case):
    teacher, student, criterion, batches = case
    measure(teacher, student, criterion, load_kd_config("erc_only"), batches)
    assert not any(m._forward_hooks for m in student.modules())
    assert not any(m._forward_hooks for m in teacher.modules())
