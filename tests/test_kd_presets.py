"""The shipped presets for CSTrack, FairMOT and JDE on faithful stand-ins of those codebases (tests/
kd_foreign_models.py): they name real modules, distil in loops written like theirs with one target
conversion as the only glue, and pred-diff alone pulls each student's decoded head onto its teacher's."""
from __future__ import annotations

import copy

import pytest
import torch

from kd_foreign_models import CSTrackLike, CSTrackLoss, FairMOTLike, JDELike, MotLoss
from test_kd_targets import fairmot_batch, ours
from mot_kd.config import deep_merge, load_yaml
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks
from mot_kd.kd.targets import from_cstrack, from_fairmot, from_jde

SIZE = (64, 96)
PRED_DIFF_ONLY = {"losses": {"erc": {"enabled": False}, "key_feature": {"enabled": False}}}


def images(seed: int) -> torch.Tensor:
    return torch.rand(2, 3, *SIZE, generator=torch.Generator().manual_seed(seed))


def cstrack_targets() -> torch.Tensor:
    t = ours()
    return torch.cat([t[:, :1], torch.where(t[:, 2:3] >= 0, t[:, 2:3] + 1, 0), t[:, 3:]], 1)  # SOTS collate


def jde_targets() -> tuple[torch.Tensor, torch.Tensor]:
    t = ours()
    padded = torch.zeros(2, 3, 6)
    padded[0, :2], padded[1, :1] = t[:2, [1, 2, 3, 4, 5, 6]], t[2:, [1, 2, 3, 4, 5, 6]]
    return padded, torch.tensor([[2.0], [1.0]])


MODELS = {"cstrack": lambda w: CSTrackLike(width=w), "fairmot": lambda w: FairMOTLike(width=2 * w),
          "jde": lambda w: JDELike(width=w // 2)}
HEAD_CONVS = {"cstrack": lambda m: [m.model[28].m[i] for i in range(3)],
              "fairmot": lambda m: [m.hm[-1], m.wh[-1], m.reg[-1]],
              "jde": lambda m: [m.module_list[i][0] for i in (81, 96, 111)]}


def student_step(name: str, model, seed: int) -> torch.Tensor:
    """One training forward as the codebase runs it; returns the KD targets converted from its batch."""
    x = images(seed)
    if name == "jde":
        model(x, *jde_targets())
        return from_jde(*jde_targets())
    model(x)
    if name == "cstrack":
        return from_cstrack(cstrack_targets())
    return from_fairmot(fairmot_batch(ours(), 2, 16, 24, ltrb=True))


@pytest.mark.parametrize("name", list(MODELS))
def test_preset_on_an_identical_student_gives_zero_and_all_losses_run(name):
    torch.manual_seed(0)
    teacher = MODELS[name](8)
    student = copy.deepcopy(teacher).train()
    for module in student.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.eval()  # frozen BN: the student computes exactly what the teacher does
    kd = KDHooks(teacher, student, name, sample_input=torch.zeros(1, 3, *SIZE))
    assert list(kd.parameters()) == []  # same architecture, same channels: identity adapters
    loss, parts = kd(images(0), student_step(name, student, 0))
    assert set(parts) == {"erc", "key_feature", "pred_diff"} and all(abs(float(v)) < 1e-5 for v in parts.values())
    other = KDHooks(MODELS[name](8), MODELS[name](4).train(), name, sample_input=torch.zeros(1, 3, *SIZE))
    targets = student_step(name, other.student, 0)
    loss, parts = other(images(0), targets)
    assert torch.isfinite(loss) and all(float(v) > 0 for v in parts.values())


@pytest.mark.parametrize("name", list(MODELS))
def test_pred_diff_alone_pulls_the_student_head_onto_the_teacher(name):
    torch.manual_seed(1)
    teacher, student = MODELS[name](8), MODELS[name](4).train()
    cfg = deep_merge(load_yaml(name, "kd"), PRED_DIFF_ONLY)
    kd = KDHooks(teacher, student, cfg, sample_input=torch.zeros(1, 3, *SIZE))
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    values = []
    for step in range(12):
        targets = student_step(name, student, seed=0)
        loss, _ = kd(images(0), targets)
        optimizer.zero_grad()
        loss.backward()
        if step == 0:
            assert all(c.weight.grad is not None and c.weight.grad.abs().sum() > 0 for c in HEAD_CONVS[name](student))
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 0.7 * values[0]


def test_cstrack_loop_with_the_preset():
    """SOTS' train loop: loss, items = JDELoss(output, targets, model) (already x batch size); kd after it."""
    torch.manual_seed(2)
    teacher, student = CSTrackLike(width=8), CSTrackLike(width=4).train()
    criterion = CSTrackLoss(num_ids=10, id_dim=16)
    kd = KDHooks(teacher, student, "cstrack", sample_input=torch.zeros(1, 3, *SIZE))
    optimizer = torch.optim.SGD(list(student.parameters()) + list(criterion.parameters()) + list(kd.parameters()),
                                lr=1e-3, momentum=0.9)
    before = [p.detach().clone() for p in student.parameters()]
    for step in range(3):
        x, targets = images(step), cstrack_targets()
        output = student(x)
        loss, _ = criterion(output, targets, student)
        kd_loss, parts = kd(x, from_cstrack(targets))
        optimizer.zero_grad()
        (loss + kd_loss * x.shape[0]).backward()  # kd_loss is a per-batch mean; JDELoss returns loss * bs
        optimizer.step()
        assert torch.isfinite(loss + kd_loss) and all(float(v) > 0 for v in parts.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, student.parameters()))
    kd.remove()


def test_fairmot_loop_with_the_preset_calls_kd_before_motloss():
    """FairMOT's ModelWithLoss: outputs = model(batch['input']); loss, stats = MotLoss(outputs, batch)."""
    torch.manual_seed(3)
    teacher, student = FairMOTLike(width=16), FairMOTLike(width=8).train()
    criterion = MotLoss(num_ids=10, id_dim=16)
    kd = KDHooks(teacher, student, "fairmot", sample_input=torch.zeros(1, 3, *SIZE))
    optimizer = torch.optim.Adam(list(student.parameters()) + list(criterion.parameters()) + list(kd.parameters()),
                                 lr=1e-4)
    for step in range(3):
        batch = {"input": images(step), **fairmot_batch(ours(), 2, 16, 24, ltrb=True)}
        outputs = student(batch["input"])
        kd_loss, parts = kd(batch["input"], from_fairmot(batch))  # before MotLoss: it sigmoid_()s hm in place
        loss, stats = criterion(outputs, batch)
        optimizer.zero_grad()
        (loss + kd_loss).backward()
        optimizer.step()
        assert torch.isfinite(loss + kd_loss) and all(float(v) > 0 for v in parts.values())
    batch = {"input": images(9), **fairmot_batch(ours(), 2, 16, 24, ltrb=True)}
    outputs = student(batch["input"])
    criterion(outputs, batch)  # the README's old order: criterion first
    with pytest.raises(InputError, match="modified in place"):
        kd(batch["input"], from_fairmot(batch))
    kd.remove()


def test_jde_loop_with_the_preset():
    """JDE's train.py: loss = model(imgs, targets, targets_len) (the loss lives in YOLOLayer)."""
    torch.manual_seed(4)
    teacher, student = JDELike(width=4), JDELike(width=2).train()
    kd = KDHooks(teacher, student, "jde", sample_input=torch.zeros(1, 3, *SIZE))
    optimizer = torch.optim.SGD(list(student.parameters()) + list(kd.parameters()), lr=1e-4, momentum=0.9)
    for step in range(3):
        x, (targets, targets_len) = images(step), jde_targets()
        loss = student(x, targets, targets_len).mean()
        kd_loss, parts = kd(x, from_jde(targets, targets_len))
        optimizer.zero_grad()
        (loss + kd_loss).backward()
        optimizer.step()
        assert torch.isfinite(loss + kd_loss) and all(float(v) > 0 for v in parts.values())
    kd.remove()


def test_a_preset_on_the_wrong_codebase_is_a_clear_error():
    with pytest.raises(InputError, match="model.28.m.0"):
        KDHooks(FairMOTLike(width=16), FairMOTLike(width=8), "cstrack", sample_input=torch.zeros(1, 3, *SIZE))
