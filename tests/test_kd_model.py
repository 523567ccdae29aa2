"""KDHooks on mot_kd's own joint detector-embedder with the default tap names, as the trainer uses it."""
from __future__ import annotations

import torch

from mot_kd.kd import KDHooks
from mot_kd.models import JDELoss, build_model
from test_kd_toys import make_targets




def test_real_models_default_taps_with_detection_loss():
    torch.manual_seed(0)
    teacher = build_model("yolov5s", id_dim=512)
    student = build_model("yolov5n", id_dim=128).train()
    teacher_state = {k: v.clone() for k, v in teacher.state_dict().items()}
    criterion = JDELoss(student, num_ids=6)
    kd = KDHooks(teacher, student)  # default config: mot_kd tap names, reg_max 16
    optimizer = torch.optim.SGD(list(student.parameters()) + list(criterion.parameters()), lr=0.01)
    optimizer.add_param_group({"params": kd.parameters()})
    assert len(optimizer.param_groups[1]["params"]) == 9  # s->n channel counts differ on every level
    images, targets = torch.rand(2, 3, 96, 128), make_targets(batch=2, per_image=3)
    for _ in range(2):
        optimizer.zero_grad()
        out = student(images)
        loss, _ = criterion(out, targets)
        kd_loss, parts = kd(images, targets)
        assert set(parts) == {"erc", "key_feature", "pred_diff"}
        assert all(torch.isfinite(v) and v.item() > 0 for v in parts.values())
        (loss + kd_loss).backward()
        optimizer.step()
    grads = {n: p.grad for n, p in student.named_parameters() if p.requires_grad}
    assert all(g is not None for g in grads.values())
    assert all(torch.equal(v, teacher_state[k]) for k, v in teacher.state_dict().items())
    assert not any(k.startswith(("teacher", "_models")) for k in student.state_dict())
    kd.remove()
    assert all(len(m._forward_hooks) == 0 for m in list(student.modules()) + list(teacher.modules()))


def test_bench_overhead_runs_and_reports_a_ratio(capsys):
    from mot_kd.kd.bench_overhead import main

    assert main(["--teacher", "yolov5n", "--student", "yolov5n", "--size", "64", "64", "--batch", "2",
                 "--rounds", "1", "--threads", "1"]) == 0
    ratio = float(capsys.readouterr().out.split("forward)) = ")[-1].split()[0])
    assert ratio > 0
