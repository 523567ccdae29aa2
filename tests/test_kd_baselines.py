"""The field's KD baselines (logit, FitNet, CWD, FGD, embedding) as KDHooks losses: reference values, an identical
student gives 0, gradients reach the student, a few steps pull it toward the teacher, bad config is one line."""
from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F

from kd_foreign_models import CSTrackLike, FairMOTLike, JDELike
from test_kd_hooks import IMAGES, TARGETS, frozen_bn, models, snapshot, same, step
from test_kd_presets import SIZE, images as preset_images, student_step
from test_kd_toys import TOY_CFG
from mot_kd.config import deep_merge, load_yaml
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks
from mot_kd.kd.decoders import Decoded
from mot_kd.kd.losses.cwd import cwd_loss
from mot_kd.kd.losses.embedding import embedding_loss
from mot_kd.kd.losses.fgd import FGDLoss
from mot_kd.kd.losses.fitnet import fitnet_loss
from mot_kd.kd.losses.logit import logit_loss
from mot_kd.kd.masks import box_masks
from mot_kd.kd.settings import BASELINE_LOSSES, load_kd_config

OURS_OFF = {"erc": {"enabled": False}, "key_feature": {"enabled": False}, "pred_diff": {"enabled": False}}


def only(name: str, base: dict = TOY_CFG, **keys) -> dict:
    """``base`` with our three losses off and baseline ``name`` on (extra keys of its section merged)."""
    return deep_merge(base, {"losses": {**OURS_OFF, name: {"enabled": True, **keys}}})


def rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ---------------------------------------------------------------- the losses on hand-made tensors
def test_fitnet_is_the_mean_of_per_level_mse():
    t, s = [rand(2, 4, 3, 5, seed=1), rand(2, 8, 2, 2, seed=2)], [rand(2, 4, 3, 5, seed=3), rand(2, 8, 2, 2, seed=4)]
    expected = (((t[0] - s[0]) ** 2).mean() + ((t[1] - s[1]) ** 2).mean()) / 2
    assert torch.allclose(fitnet_loss(t, s), expected)


def test_cwd_matches_a_per_channel_reference():
    t, s, tau = rand(2, 3, 4, 5, seed=1), rand(2, 3, 4, 5, seed=2), 2.0
    kls = [F.kl_div(F.log_softmax(s[b, c].flatten() / tau, 0), F.softmax(t[b, c].flatten() / tau, 0),
                    reduction="sum") for b in range(2) for c in range(3)]
    assert torch.allclose(cwd_loss([t], [s], temperature=tau), tau ** 2 * torch.stack(kls).mean())
    assert cwd_loss([t], [t + 3.0]) < 1e-6  # a per-channel softmax ignores a constant shift


def test_embedding_loss_cosine_and_l2_at_identity_centres():
    t, s = rand(2, 4, 3, 4, seed=1), rand(2, 4, 3, 4, seed=2)
    targets = torch.tensor([[0, 0, 5, 0.1, 0.1, 0.1, 0.1], [1, 0, 6, 0.9, 0.9, 0.1, 0.1],
                            [1, 0, -1, 0.5, 0.5, 0.1, 0.1]])  # the unknown identity is ignored
    tv, sv = torch.stack([t[0, :, 0, 0], t[1, :, 2, 3]]), torch.stack([s[0, :, 0, 0], s[1, :, 2, 3]])
    cos = (1 - F.cosine_similarity(sv, tv, dim=1)).mean()
    assert torch.allclose(embedding_loss(t, s, targets), cos)
    assert torch.allclose(embedding_loss(t, s, targets, cosine_weight=0.0, l2_weight=2.0), 2 * ((sv - tv) ** 2).mean())
    assert embedding_loss(t, 3.0 * t, targets) < 1e-6  # cosine: scale-free
    assert embedding_loss(t, s, targets[2:]) == 0  # no identity among the targets


def fgd_reference(t, s, targets, temp=0.5, alpha=1e-3, beta=5e-4, gamma=1e-3, lam=5e-6):
    """The authors' FeatureLoss (yzd-v/FGD), written with their sqrt-weighted features; its global term with
    freshly initialised GcBlocks (last conv zero: G(F) = F) is the summed squared error."""
    n, c, h, w = t.shape

    def att(x):
        v = x.abs()
        spatial = (h * w * F.softmax((v.mean(1) / temp).view(n, -1), 1)).view(n, h, w)
        return spatial, c * F.softmax(v.mean((2, 3)) / temp, 1)
    s_t, c_t = att(t)
    s_s, c_s = att(s)
    fg, bg = box_masks(targets, n, h, w)
    bg = bg / bg.sum((1, 2), keepdim=True)
    scale = torch.sqrt(s_t[:, None]) * torch.sqrt(c_t[:, :, None, None])
    fea_t, fea_s = t * scale, s * scale
    fg_loss = F.mse_loss(fea_s * fg[:, None].sqrt(), fea_t * fg[:, None].sqrt(), reduction="sum") / n
    bg_loss = F.mse_loss(fea_s * bg[:, None].sqrt(), fea_t * bg[:, None].sqrt(), reduction="sum") / n
    mask_loss = (c_s - c_t).abs().sum() / n + (s_s - s_t).abs().sum() / n
    rela_loss = F.mse_loss(s, t, reduction="sum") / n
    return alpha * fg_loss + beta * bg_loss + gamma * mask_loss + lam * rela_loss


def test_fgd_matches_the_authors_loss_and_its_global_blocks_start_as_the_identity():
    t, s = rand(2, 6, 4, 5, seed=1), rand(2, 6, 4, 5, seed=2)
    fgd = FGDLoss()
    fgd.ensure("p3", 6, t.device)
    assert torch.allclose(fgd(["p3"], [t], [s], TARGETS), fgd_reference(t, s, TARGETS))
    assert fgd(["p3"], [t], [t.clone()], TARGETS) == 0
    blocks = fgd.blocks["p3"]
    torch.nn.init.normal_(blocks["student"].channel_add[-1].weight)  # blocks trained apart: the global term
    assert fgd(["p3"], [t], [t.clone()], TARGETS, alpha_fg=0, beta_bg=0, gamma_mask=0, lambda_rela=1) > 0


def decoded(seed, points=6, boxes=None):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(1, points, 1, generator=g)
    xy = torch.rand(1, points, 2, generator=g) * 20
    box = torch.cat((xy, xy + 5 + 10 * torch.rand(1, points, 2, generator=g)), -1) if boxes is None else boxes
    return Decoded(logits=logits, scores=logits.sigmoid(), boxes=box)


def test_logit_loss_weights_every_point_alike():
    t, s = decoded(0), decoded(1)
    p = t.logits.sigmoid()
    kl = (F.binary_cross_entropy_with_logits(s.logits, p, reduction="none")
          - F.binary_cross_entropy_with_logits(t.logits, p, reduction="none")).sum(-1)
    assert torch.allclose(logit_loss(t, s, box_weight=0.0), kl.mean())
    same_boxes = Decoded(logits=s.logits, scores=s.scores, boxes=t.boxes)
    assert torch.allclose(logit_loss(t, same_boxes), kl.mean(), atol=1e-6)  # CIoU of equal boxes: 1
    assert logit_loss(t, t) < 1e-6
    with pytest.raises(InputError, match="logit: teacher decodes to .* heads must share grid"):
        logit_loss(t, decoded(1, points=5))


# ---------------------------------------------------------------- through KDHooks, every baseline
@pytest.mark.parametrize("name", BASELINE_LOSSES)
def test_identical_student_gives_zero(name):
    teacher, _ = models()
    student = frozen_bn(copy.deepcopy(teacher))
    kd = KDHooks(teacher, student, only(name))
    loss, parts = step(kd, student)
    assert set(parts) == {name} and abs(loss.item()) < 1e-6
    if name == "fgd":
        assert len(list(kd.parameters())) > 0  # its global blocks, even with identity adapters


@pytest.mark.parametrize("name", BASELINE_LOSSES)
def test_gradients_reach_the_student_and_steps_pull_it_toward_the_teacher(name):
    teacher, student = models(seed=3)
    before = snapshot(teacher)
    kd = KDHooks(teacher, student, only(name))
    params = list(student.parameters()) + list(kd.parameters())
    opt = torch.optim.Adam(params, lr=1e-2)
    values = []
    for i in range(25):
        loss, parts = step(kd, student)
        assert float(parts[name]) > 0
        opt.zero_grad()
        loss.backward()
        if i == 0:
            assert sum(float(p.grad.abs().sum()) for p in student.parameters() if p.grad is not None) > 0
        opt.step()
        values.append(loss.item())
    assert sum(values[-3:]) / 3 < 0.8 * sum(values[:3]) / 3, values
    kd.remove()
    assert same(snapshot(teacher), before)


@pytest.mark.parametrize("name", ["cstrack", "fairmot", "jde"])
def test_logit_kd_runs_on_every_head_family(name):
    torch.manual_seed(1)
    make = {"cstrack": lambda w: CSTrackLike(width=w), "fairmot": lambda w: FairMOTLike(width=2 * w),
            "jde": lambda w: JDELike(width=w // 2)}[name]
    teacher, student = make(8), make(4).train()
    kd = KDHooks(teacher, student, only("logit", load_yaml(name, "kd")), sample_input=torch.zeros(1, 3, *SIZE))
    optimizer = torch.optim.Adam(student.parameters(), lr=3e-3)
    values = []
    for _ in range(10):
        loss, _ = kd(preset_images(0), student_step(name, student, seed=0))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        values.append(loss.item())
    assert values[-1] < 0.8 * values[0], values


def test_fgd_blocks_and_baseline_adapters_round_trip_through_state_dict():
    teacher, student = models()
    cfg = deep_merge(only("fgd"), {"losses": {"fitnet": {"enabled": True}, "embedding": {"enabled": True}}})
    kd = KDHooks(teacher, student, cfg)
    state = kd.state_dict()
    assert any(k.startswith("fgd.blocks.") for k in state)
    assert any(k.startswith("baseline_connectors.fitnet.") for k in state)
    fresh = KDHooks(teacher, models()[1], {**cfg, "build_input_size": None})
    fresh.load_state_dict(state)  # blocks and adapters re-created from the weight shapes before any forward
    assert fresh.state_dict().keys() == state.keys()
    assert all(torch.equal(fresh.state_dict()[k], v) for k, v in state.items())


def test_baselines_are_off_by_default_and_scheduled_like_ours():
    losses = load_kd_config(None)["losses"]
    assert not any(losses[n]["enabled"] for n in BASELINE_LOSSES)
    teacher, student = models()
    kd = KDHooks(teacher, student, only("cwd", start_epoch=2))
    loss, parts = step(kd, student, epoch=1)
    assert loss.item() == 0 and float(parts["cwd"]) == 0
    loss, parts = step(kd, student, epoch=2)
    assert float(parts["cwd"]) > 0


@pytest.mark.parametrize("cfg, message", [
    ({"losses": {"cwd": {"temperature": 0}}}, "kd config.losses.cwd.temperature: must be > 0, got 0"),
    ({"losses": {"fgd": {"alpha": 1.0}}}, "kd config.losses.fgd: unknown key 'alpha' (did you mean 'alpha_fg'?)"),
    ({"losses": {"embedding": {"cosine_weight": "yes"}}},
     "kd config.losses.embedding.cosine_weight: expected a number, got 'yes'"),
    ({"losses": {"fitnet": {"enabled": "on"}}}, "kd config.losses.fitnet.enabled: expected true/false, got 'on'"),
    ({"losses": {"logit": {"box_weight": -1}}}, "kd config.losses.logit.box_weight: must be >= 0, got -1"),
    ({"losses": {"fitnett": {"enabled": True}}}, "kd config.losses: unknown key 'fitnett' (did you mean 'fitnet'?)"),
])
def test_bad_config_is_one_line(cfg, message):
    with pytest.raises(InputError) as info:
        load_kd_config(cfg)
    assert str(info.value) == message and "\n" not in str(info.value)


@pytest.mark.parametrize("name", ["logit", "fitnet", "cwd", "fgd", "embedding", "best_baselines"])
def test_shipped_baseline_configs(name):
    cfg = load_kd_config(name)
    on = {n for n, v in cfg["losses"].items() if v["enabled"]}
    assert on == ({"fgd", "logit", "embedding"} if name == "best_baselines" else {name})
    teacher, student = models()
    loss, parts = step(KDHooks(teacher, student, deep_merge(TOY_CFG, load_yaml(name, "kd"))), student)
    assert set(parts) == on and torch.isfinite(loss) and loss.item() > 0


# ---------------------------------------------------------------- the bench's baseline configurations
def test_equal_schedule_preset_plans_ours_ablations_and_every_baseline(tmp_path):
    from mot_kd.bench.presets import load_preset
    from mot_kd.bench.report import schedule_statement
    from mot_kd.bench.runner import plan_runs

    preset = load_preset("cpu_equal")
    assert preset.teacher["epochs"] == preset.student_epochs and len(preset.seeds) >= 3
    assert preset.teacher["model"] == "yolov5s" and list(preset.students) == ["yolov5n"]
    assert schedule_statement(preset).startswith("equal schedule: teacher and students train 4 epochs")
    assert schedule_statement(load_preset("cpu")).startswith("short student schedule: the teacher trains 20 epochs")
    on = {}
    for spec in plan_runs(preset, tmp_path, None)[1:]:
        on[spec.configuration] = None if spec.kd is None else {n for n, v in spec.kd["losses"].items() if v["enabled"]}
        if spec.kd is not None:  # one set of KD values for every configuration: the tuned point of cpu's --tune
            assert [spec.kd["losses"][n]["weight"] for n in ("erc", "key_feature", "pred_diff")] == [2.0, 0.5, 3.0]
    ours = {"erc", "key_feature", "pred_diff"}
    assert on == {"none": None, "all": ours, **{f"no_{n}": ours - {n} for n in ours},
                  **{n: {n} for n in BASELINE_LOSSES}, "best_baselines": {"fgd", "logit", "embedding"}}
