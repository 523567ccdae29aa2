"""KDHooks on small foreign toy models: wiring, freezing, recording rules, removal, adapters, errors."""
from __future__ import annotations

import copy
import gc
import re

import pytest
import torch
from torch import nn

from test_kd_toys import OTHER_TAPS, TOY_CFG, OtherNames, ToyTracker, make_targets
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks

IMAGES = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
TARGETS = make_targets()




def frozen_bn(model: nn.Module) -> nn.Module:
    """Training mode with BN in eval, so a copy of the teacher computes exactly what the teacher computes."""
    model.train()
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    return model


def models(teacher_width=16, student_width=8, teacher_id=32, student_id=16, seed=0):
    torch.manual_seed(seed)
    return ToyTracker(teacher_width, teacher_id), ToyTracker(student_width, student_id).train()


def step(kd, student, images=IMAGES, targets=TARGETS, **kw):
    student(images)
    return kd(images, targets, **kw)


def snapshot(model: nn.Module):
    return ({k: v.clone() for k, v in model.state_dict().items()},
            [(n, m.training, len(m._forward_hooks)) for n, m in model.named_modules()],
            [(n, p.requires_grad) for n, p in model.named_parameters()])


def same(a, b) -> bool:
    return (a[0].keys() == b[0].keys() and all(torch.equal(a[0][k], b[0][k]) for k in a[0])
            and a[1] == b[1] and a[2] == b[2])


def test_identical_student_gives_zero_losses():
    teacher, _ = models()
    student = frozen_bn(copy.deepcopy(teacher))
    kd = KDHooks(teacher, student, TOY_CFG)
    assert list(kd.parameters()) == []  # equal channel counts: identity adapters
    loss, parts = step(kd, student)
    assert set(parts) == {"erc", "key_feature", "pred_diff"}
    for name, value in parts.items():
        assert abs(float(value)) < 1e-5, name
    assert abs(loss.item()) < 1e-5


def test_gradients_reach_student_and_adapters_teacher_untouched():
    teacher, student = models()
    before = snapshot(teacher)
    kd = KDHooks(teacher, student, TOY_CFG)
    adapters = list(kd.parameters())
    assert len(adapters) == 9  # conv + BN weight/bias for neck.p3/p4/p5
    opt = torch.optim.SGD(student.parameters(), lr=0.01)
    opt.add_param_group({"params": adapters})
    start = [p.detach().clone() for p in adapters]
    for _ in range(3):
        opt.zero_grad()
        loss, parts = step(kd, student)
        assert all(v.dtype == torch.float32 and not v.requires_grad for v in parts.values())
        loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in adapters)
        assert student.embedding.weight.grad.abs().sum() > 0 and student.neck["p3"][0].weight.grad.abs().sum() > 0
        assert all(p.grad is None for p in teacher.parameters())
        opt.step()
    assert any(not torch.equal(a, b) for a, b in zip(start, adapters))
    assert all(not p.requires_grad for p in teacher.parameters()) and not teacher.training
    teacher_params = {id(p) for p in teacher.parameters()}
    assert not any(id(p) in teacher_params for g in opt.param_groups for p in g["params"])
    kd.remove()
    assert same(snapshot(teacher), before)


def test_foreign_model_with_configured_names():
    torch.manual_seed(0)
    teacher, student = OtherNames(width=16, id_dim=24), OtherNames(width=8, id_dim=12).train()
    kd = KDHooks(teacher, student, OTHER_TAPS)
    loss, parts = step(kd, student)
    assert torch.isfinite(loss) and all(float(v) > 0 for v in parts.values())
    loss.backward()
    assert student.reid.weight.grad.abs().sum() > 0 and student.det["hm1"].weight.grad.abs().sum() > 0


def test_teacher_with_other_names_via_teacher_taps():
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), OtherNames(width=8, id_dim=12).train()
    cfg = dict(OTHER_TAPS, teacher_taps={"neck": ["neck.p3", "neck.p4"], "embedding": "embedding",
                                         "box": ["head.box.p3", "head.box.p4"], "cls": ["head.cls.p3", "head.cls.p4"]})
    loss, _ = step(KDHooks(teacher, student, cfg), student)
    assert torch.isfinite(loss) and loss.item() > 0


def test_no_recording_in_eval_or_no_grad_and_stale_taps_refused():
    teacher, student = models()
    kd = KDHooks(teacher, student, TOY_CFG)
    with torch.no_grad():
        student(IMAGES)
    assert kd.student_recorder.records == {}
    student.eval()
    student(IMAGES)
    assert kd.student_recorder.records == {}
    with pytest.raises(InputError, match="student taps not recorded"):
        kd(IMAGES, TARGETS)
    student.train()
    step(kd, student)
    with pytest.raises(InputError, match="not recorded"):  # records are used once: no stale reuse
        kd(IMAGES, TARGETS)


def _live_tensors() -> int:
    gc.collect()
    return sum(1 for o in gc.get_objects() if issubclass(type(o), torch.Tensor))


def test_no_growth_over_200_steps():
    teacher, student = models(teacher_width=8, student_width=4, teacher_id=8, student_id=8)
    kd = KDHooks(teacher, student, TOY_CFG)
    opt = torch.optim.SGD(list(student.parameters()) + list(kd.parameters()), lr=1e-3)
    images, targets = IMAGES[:1, :, :64, :64], TARGETS[TARGETS[:, 0] == 0]
    counts = []
    for i in range(200):
        opt.zero_grad()
        loss, _ = step(kd, student, images, targets)
        loss.backward()
        opt.step()
        if i in (20, 199):
            counts.append(_live_tensors())
        student(images)  # a training forward whose records are never consumed: overwritten next step
        assert len(kd.student_recorder.records) <= 10 and kd.teacher_recorder.records == {}
    assert counts[1] <= counts[0]


def test_remove_restores_both_models_exactly():
    teacher, student = models()
    teacher.train()
    frozen = teacher.stem[0][0].weight
    frozen.requires_grad_(False)
    t_before, s_before = snapshot(teacher), snapshot(student)
    kd = KDHooks(teacher, student, TOY_CFG)
    assert len(student.neck["p3"]._forward_hooks) == 1
    loss, _ = step(kd, student)
    loss.backward()
    student.zero_grad(set_to_none=True)
    kd.remove()
    assert same(snapshot(teacher), t_before)
    s_after = snapshot(student)
    assert s_after[1] == s_before[1] and s_after[2] == s_before[2]  # hooks gone, modes and flags kept
    assert not frozen.requires_grad and teacher.training
    assert kd.student_recorder.records == {}


def test_dry_run_keeps_student_state():
    teacher, student = models()
    before = snapshot(student)
    KDHooks(teacher, student, TOY_CFG).remove()
    assert same(snapshot(student), before)  # BN running stats untouched by the dry run


def test_id_dim_512_teacher_128_student():
    teacher, student = models(teacher_id=512, student_id=128)
    kd = KDHooks(teacher, student, dict(TOY_CFG, losses={"key_feature": {"enabled": False},
                                                         "pred_diff": {"enabled": False}}))
    loss, parts = step(kd, student)
    assert set(parts) == {"erc"} and loss.item() > 0
    loss.backward()
    assert student.embedding.weight.grad.abs().sum() > 0


def test_autocast_losses_are_fp32_and_finite():
    teacher, student = models()
    kd = KDHooks(teacher, student, TOY_CFG)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = student(IMAGES)
        assert out["embedding"].dtype == torch.bfloat16
        loss, parts = kd(IMAGES, TARGETS)
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in parts.values())
    loss.backward()


def test_optimising_kd_alone_lowers_it():
    teacher, student = models(seed=3)
    kd = KDHooks(teacher, student, TOY_CFG)
    opt = torch.optim.Adam(list(student.parameters()) + list(kd.parameters()), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss, _ = step(kd, student)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.7 * sum(losses[:5]) / 5


def test_missing_taps_listed_at_once_with_candidates_by_output():
    teacher, student = models(teacher_id=64)
    cfg = {"taps": {"neck": ["neck.p3", "fpn.2", "neck.p5"]}, "head": {"reg_max": 4},
           "teacher_taps": {"embedding": "reid", "neck": ["neck.p3", "neck.p9", "neck.p5"]}}
    with pytest.raises(InputError) as caught:
        KDHooks(teacher, student, cfg)
    message = str(caught.value)
    assert "\n" not in message
    assert re.match(r"taps not found: student neck tap 'fpn.2', teacher embedding tap 'reid', "
                    r"teacher neck tap 'neck.p9' \(did you mean 'neck.p[345]'\?\); ", message)
    assert ("student neck candidates by output on a 64x64 input: neck.p3 Tensor(1, 8, 8, 8) s8, "
            "neck.p4 Tensor(1, 16, 4, 4) s16, neck.p5 Tensor(1, 16, 2, 2) s32; ") in message
    assert "teacher embedding candidates by output on a 64x64 input: embedding Tensor(1, 64, 8, 8) s8" in message
    assert message.endswith("every module's output: python -m mot_kd.kd.taps --factory module:function")
    with pytest.raises(InputError, match=r"student 'fpn.2' closest names: .*; teacher 'reid' closest names: "):
        KDHooks(teacher, student, dict(cfg, build_input_size=None))  # no dry run: suggestions by name
    assert all(len(m._forward_hooks) == 0 for m in student.modules())  # failed build leaves no hooks


def test_mismatched_strides_and_channels_are_clear_errors():
    teacher, student = models()
    t_before, s_before = snapshot(teacher), snapshot(student)
    cfg = {"teacher_taps": {"neck": ["neck.p4", "neck.p4", "neck.p5"]}, "head": {"reg_max": 4}}
    with pytest.raises(InputError, match=r"'neck.p3' \(student \(8, 8\)\) and 'neck.p4' \(teacher \(4, 4\)\): spatial"):
        KDHooks(teacher, student, cfg)
    assert same(snapshot(teacher), t_before) and same(snapshot(student), s_before)  # failed build undone
    with pytest.raises(InputError, match="4 \\* reg_max = 64"):
        KDHooks(teacher, student)  # toys use reg_max 4, default config says 16
    torch.manual_seed(0)
    with pytest.raises(InputError, match="teacher tap 'head.cls.p3': 2 class channels, expected head.nc = 1"):
        KDHooks(ToyTracker(nc=2), ToyTracker(nc=1), TOY_CFG)
    with pytest.raises(InputError, match=r"dry run on a \(1, 4, 64, 64\) input failed \(.*sample_input="):
        KDHooks(teacher, student, TOY_CFG, sample_input=torch.zeros(1, 4, 64, 64))  # wrong channel count


def test_bad_arguments():
    teacher, student = models()
    with pytest.raises(InputError, match="same object"):
        KDHooks(teacher, teacher)
    with pytest.raises(InputError, match="unknown key 'tua' \\(did you mean 'tau'"):
        KDHooks(teacher, student, {"losses": {"erc": {"tua": 1}}})
    with pytest.raises(InputError, match="no such kd config"):
        KDHooks(teacher, student, "no_such_config")
    kd = KDHooks(teacher, student, TOY_CFG)
    student(IMAGES)
    with pytest.raises(InputError, match=r"targets: expected a \(M, 7\)"):
        kd(IMAGES, TARGETS[:, :6])
    student(IMAGES)
    with pytest.raises(InputError, match="batch_idx"):
        kd(IMAGES, TARGETS + torch.tensor([5.0, 0, 0, 0, 0, 0, 0]))


def test_schedule_and_weights():
    teacher, student = models()
    cfg = dict(TOY_CFG, losses={"erc": {"start_epoch": 2, "warmup_epochs": 2},
                                "key_feature": {"stop_epoch": 3, "weight": 2.0}})
    kd = KDHooks(teacher, student, cfg)
    _, full = step(kd, student)
    _, early = step(kd, student, epoch=0)
    _, ramp = step(kd, student, epoch=3)
    _, late = step(kd, student, epoch=5)
    assert float(early["erc"]) == 0 and float(late["key_feature"]) == 0
    student(IMAGES)
    idle, _ = kd(IMAGES, TARGETS, epoch=5)
    idle.backward()  # adapters still get (zero) gradients while key_feature is off: DDP-safe
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in kd.connectors.parameters())
    assert torch.allclose(ramp["erc"], 0.5 * full["erc"], rtol=1e-5)
    assert torch.allclose(late["erc"], full["erc"]) and torch.allclose(early["key_feature"], full["key_feature"])
    plain = KDHooks(teacher, student, TOY_CFG)
    plain.load_state_dict(kd.state_dict())  # same adapters
    _, base = step(plain, student)
    assert torch.allclose(full["key_feature"], 2 * base["key_feature"], rtol=1e-5)


def test_state_dict_round_trip_before_first_call():
    teacher, student = models()
    kd = KDHooks(teacher, student, TOY_CFG)
    state = kd.state_dict()
    assert any(k.endswith("neck__p4.0.weight") for k in state)
    lazy = KDHooks(teacher, student, dict(TOY_CFG, build_input_size=None))
    assert list(lazy.parameters()) == []
    lazy.load_state_dict(state)  # builds the adapters from the checkpoint's shapes
    assert all(torch.equal(state[k], v) for k, v in lazy.state_dict().items())
    lazy_loss, _ = step(lazy, student)
    kd_loss, _ = step(kd, student)
    assert torch.allclose(lazy_loss, kd_loss)


def test_lazy_adapters_created_at_first_call_and_by_build():
    teacher, student = models()
    kd = KDHooks(teacher, student, dict(TOY_CFG, build_input_size=None))
    assert list(kd.parameters()) == []
    step(kd, student)
    assert len(list(kd.parameters())) == 9
    other = KDHooks(teacher, student, dict(TOY_CFG, build_input_size=None), sample_input=IMAGES[:1])
    assert len(list(other.parameters())) == 9


def test_shipped_configs_and_package_export():
    from mot_kd import KDHooks as exported
    from mot_kd.config import CONFIG_ROOT
    from mot_kd.kd.settings import load_kd_config

    assert exported is KDHooks
    expected = {"default": {"erc", "key_feature", "pred_diff"}, "erc_only": {"erc"},
                "key_feature_only": {"key_feature"}, "pred_diff_only": {"pred_diff"},
                "features_only": {"erc", "key_feature"}, "no_erc": {"key_feature", "pred_diff"},
                "no_key_feature": {"erc", "pred_diff"}, "no_pred_diff": {"erc", "key_feature"},
                **dict.fromkeys(("cstrack", "fairmot", "jde"), {"erc", "key_feature", "pred_diff"}),  # presets
                **{n: {n} for n in ("logit", "fitnet", "cwd", "fgd", "embedding")},  # baselines
                "best_baselines": {"fgd", "logit", "embedding"},
                "fused": {"erc", "key_feature", "pred_diff"}}  # + fused-model distillation (tests/test_kd_fused.py)
    shipped = {p.stem for p in (CONFIG_ROOT / "kd").glob("*.yaml")}
    assert shipped == set(expected), "a shipped KD config is not covered here"
    for name, losses in expected.items():
        cfg = load_kd_config(name)
        assert {n for n, c in cfg["losses"].items() if c["enabled"]} == losses
    teacher, student = models()
    kd = KDHooks(teacher, student, dict(TOY_CFG, losses={"erc": {"enabled": False}}))
    assert "embedding" not in kd.student_taps and len(student.embedding._forward_hooks) == 0


def test_taps_found_under_a_ddp_style_wrapper():
    class Wrapper(nn.Module):  # same naming as DistributedDataParallel / DataParallel: .module
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            return self.module(x)

    teacher, student = models()
    wrapped = Wrapper(student).train()
    kd = KDHooks(teacher, wrapped, TOY_CFG)
    loss, _ = step(kd, wrapped)
    assert torch.isfinite(loss) and len(student.neck["p3"]._forward_hooks) == 1


def test_deepcopy_of_hooked_student_does_not_record():
    teacher, student = models()
    kd = KDHooks(teacher, student, TOY_CFG)
    ema = copy.deepcopy(student).train()  # e.g. an EMA copy made after KDHooks: it carries the hooks along
    ema(IMAGES)
    assert kd.student_recorder.records == {}
    loss, _ = step(kd, student)
    assert torch.isfinite(loss)


def test_adapter_auto_identity_only_for_the_same_architecture():
    features = dict(TOY_CFG, losses={"erc": {"enabled": False}, "pred_diff": {"enabled": False}})
    teacher, _ = models(teacher_width=8)
    same = frozen_bn(copy.deepcopy(teacher))
    assert list(KDHooks(teacher, same, features).parameters()) == []  # same architecture: identity, zero loss
    other = copy.deepcopy(teacher)  # equal widths everywhere, another block in the stem (a ghost-like student)
    other.stem[0] = nn.Sequential(nn.Conv2d(3, 8, 1), nn.Conv2d(8, 8, 3, 2, 1, groups=8))
    kd = KDHooks(teacher, other.train(), features)
    assert sorted(kd.connectors.adapters) == ["neck__p3", "neck__p4", "neck__p5"]
    assert len(list(KDHooks(teacher, same, dict(features, adapter="always")).parameters())) == 9


def test_neck_taps_as_specs_get_adapters_that_round_trip():
    teacher, student = models()
    taps = {"neck": [{"module": "neck.p4", "input": 0}, "neck.p4", "neck.p5"]}  # neck.p4 input = neck.p3 output
    cfg = dict(TOY_CFG, taps=taps, losses={"erc": {"enabled": False}, "pred_diff": {"enabled": False}})
    kd = KDHooks(teacher, student, cfg)
    assert sorted(kd.connectors.adapters) == ["neck__p4", "neck__p4_input0", "neck__p5"]
    _, parts = step(kd, student)
    assert float(parts["key_feature"]) > 0
    lazy = KDHooks(teacher, student, dict(cfg, build_input_size=None))
    lazy.load_state_dict(kd.state_dict())
    assert torch.allclose(step(lazy, student)[0], step(kd, student)[0])
