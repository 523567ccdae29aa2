"""Student-student mutual learning and MultiStudentKD on toy models: zero and symmetric terms, gradient routing,
one teacher forward per batch, the one-student error."""
from __future__ import annotations

import copy

import pytest
import torch

from test_kd_toys import TOY_CFG, ToyTracker, make_targets
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks, MultiStudentKD
from mot_kd.kd.decoders import build_decoder
from mot_kd.kd.losses.mutual import mutual_losses
from mot_kd.kd.settings import load_kd_config

IMAGES = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
TARGETS = make_targets()
HEAD = load_kd_config(TOY_CFG)["head"]
NAMES = {g: [f"head.{g}.p{i}" for i in (3, 4, 5)] for g in ("box", "cls")}


@torch.no_grad()
def responses(model: ToyTracker):
    out = model(IMAGES)
    return build_decoder(HEAD).decode({"box": out["box"], "cls": out["cls"]}, NAMES, (64, 96)), out["embedding"]


def students(seed=0, id_dims=(16, 8)):
    torch.manual_seed(seed)
    return [ToyTracker(8, id_dims[0]).train(), ToyTracker(4, id_dims[1]).train()]


def test_mutual_terms_are_zero_for_identical_students():
    a = students()[0].eval()
    (da, ea), (db, eb) = responses(a), responses(copy.deepcopy(a))
    for det, ident in mutual_losses([da, db], [ea, eb], TARGETS):
        assert abs(float(det)) < 1e-6 and abs(float(ident)) < 1e-6


def test_mutual_terms_are_symmetric_and_positive_for_different_students():
    a, b = (m.eval() for m in students())
    (da, ea), (db, eb) = responses(a), responses(b)  # different id_dim (16, 8): no adapter needed
    (a_det, a_id), (b_det, b_id) = mutual_losses([da, db], [ea, eb], TARGETS)
    (b_det2, b_id2), (a_det2, a_id2) = mutual_losses([db, da], [eb, ea], TARGETS)
    assert float(a_det) > 0 and float(b_det) > 0 and float(a_id) > 0 and float(b_id) > 0
    for x, y in ((a_det, a_det2), (a_id, a_id2), (b_det, b_det2), (b_id, b_id2)):
        assert float(x) == pytest.approx(float(y), rel=1e-6)
    assert float(a_det) != pytest.approx(float(b_det), rel=1e-3)  # KL(b||a) != KL(a||b): each side its own


def test_each_students_gradient_comes_only_from_its_own_term():
    teacher = ToyTracker(16, 32)
    pair = students()
    kd = MultiStudentKD(teacher, pair, TOY_CFG)
    for s in pair:
        s(IMAGES)
    results = kd(IMAGES, TARGETS)
    assert set(results[0][1]) == {"erc", "key_feature", "pred_diff", "mutual_det", "mutual_id"}
    for i, (loss, parts) in enumerate(results):
        assert float(parts["mutual_det"]) > 0 and float(parts["mutual_id"]) > 0
        grads = torch.autograd.grad(loss, [p for s in pair for p in s.parameters()], allow_unused=True,
                                    retain_graph=True)
        split = len(list(pair[0].parameters()))
        own, other = (grads[:split], grads[split:]) if i == 0 else (grads[split:], grads[:split])
        assert any(g is not None and g.abs().sum() > 0 for g in own)
        assert all(g is None for g in other), f"student {i}'s loss reaches the other student"
    assert all(p.grad is None for p in teacher.parameters())


def test_the_teacher_runs_once_per_batch_for_all_students():
    teacher = ToyTracker(16, 32)
    pair = students() + [ToyTracker(6, 12).train()]
    kd = MultiStudentKD(teacher, pair, TOY_CFG)
    calls = []
    teacher.register_forward_hook(lambda *_: calls.append(1))
    for _ in range(3):
        for s in pair:
            s(IMAGES)
        results = kd(IMAGES, TARGETS)
        assert len(results) == 3
    assert len(calls) == 3


def test_one_student_equals_kdhooks_and_has_no_mutual_term():
    teacher = ToyTracker(16, 32)
    (student,) = students()[:1]
    clone = copy.deepcopy(student)
    multi = MultiStudentKD(teacher, [student], TOY_CFG)
    single = KDHooks(teacher, clone, TOY_CFG)
    single.load_state_dict(multi.members[0].state_dict())
    student(IMAGES), clone(IMAGES)
    (loss, parts), = multi(IMAGES, TARGETS)
    ref, ref_parts = single(IMAGES, TARGETS)
    assert set(parts) == set(ref_parts) and torch.allclose(loss, ref, rtol=1e-6)


def test_mutual_forced_on_with_one_student_is_a_one_line_error():
    with pytest.raises(InputError, match=r"mutual.enabled: true needs at least two students, got 1") as err:
        MultiStudentKD(ToyTracker(16, 32), students()[:1], {**TOY_CFG, "mutual": {"enabled": True}})
    assert "\n" not in str(err.value)


def test_mutual_off_and_scheduled_start():
    teacher = ToyTracker(16, 32)
    pair = students()
    off = MultiStudentKD(teacher, pair, {**TOY_CFG, "mutual": {"enabled": False}})
    for s in pair:
        s(IMAGES)
    assert all("mutual_det" not in parts for _, parts in off(IMAGES, TARGETS))
    off.remove()
    later = MultiStudentKD(teacher, pair, {**TOY_CFG, "mutual": {"start_epoch": 2}})
    for epoch, on in ((0, False), (2, True)):  # scheduled off: zeros, so results.csv keeps its columns
        for s in pair:
            s(IMAGES)
        for _, parts in later(IMAGES, TARGETS, epoch=epoch):
            assert all((float(parts[n]) > 0) is on for n in ("mutual_det", "mutual_id"))


def test_remove_gives_the_teacher_back_as_it_was():
    teacher = ToyTracker(16, 32).train()
    kd = MultiStudentKD(teacher, students(), TOY_CFG)
    assert not teacher.training and not any(p.requires_grad for p in teacher.parameters())
    kd.remove()
    assert teacher.training and all(p.requires_grad for p in teacher.parameters())
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in teacher.modules())


def test_bench_overhead_times_two_students_from_one_teacher_forward(capsys):
    from mot_kd.kd.bench_overhead import main

    assert main(["--teacher", "yolov5n", "--student", "yolov5n", "yolov5n-ghost", "--size", "64", "64", "--batch",
                 "2", "--rounds", "1", "--threads", "1"]) == 0
    out = capsys.readouterr().out
    assert "yolov5n step" in out and "yolov5n-ghost step" in out
    assert float(out.split("t(yolov5n-ghost step) + t(teacher forward)) = ")[-1].split()[0]) > 0
