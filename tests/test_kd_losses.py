"""The three MOT distillation losses and the gt masks on hand-made cases: values, directions, invariances."""
from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from mot_kd.errors import InputError
from mot_kd.kd.decoders.ultralytics import UltralyticsDecoder
from mot_kd.kd.losses import erc_loss, key_feature_loss, pred_diff_loss
from mot_kd.kd.masks import box_masks, centre_cells
from mot_kd.kd.settings import load_kd_config




def rows(*boxes):
    """Targets from (batch_idx, identity, cx, cy, w, h) tuples."""
    return torch.tensor([[b, 0, i, cx, cy, w, h] for b, i, cx, cy, w, h in boxes], dtype=torch.float32)


# ---------------------------------------------------------------- masks
def test_box_masks_inverse_area_weights_and_background():
    targets = rows((0, 0, 0.5, 0.5, 0.5, 0.5),      # cells x,y in [1, 3): 4 cells -> 0.25
                   (0, 1, 0.3, 0.3, 0.01, 0.01),    # tiny box: its one cell (1, 1) -> max(1, 0.25) = 1
                   (1, 2, 0.9, 0.1, 0.2, 0.2))      # image 1, x in [3, 4), y in [0, 1) -> 1 cell
    fg, bg = box_masks(targets, batch_size=2, height=4, width=4)
    expected0 = torch.zeros(4, 4)
    expected0[1:3, 1:3] = 0.25
    expected0[1, 1] = 1.0
    assert torch.equal(fg[0], expected0)
    expected1 = torch.zeros(4, 4)
    expected1[0, 3] = 1.0
    assert torch.equal(fg[1], expected1)
    assert torch.equal(bg, (fg == 0).float())
    empty_fg, empty_bg = box_masks(targets[:0], 2, 4, 4)
    assert empty_fg.sum() == 0 and empty_bg.sum() == 32


def test_centre_cells_clamp_to_grid():
    targets = rows((0, 0, 0.5, 0.25, 0.1, 0.1), (1, 1, 1.0, 1.0, 0.1, 0.1))
    batch_idx, cell = centre_cells(targets, height=4, width=8)
    assert batch_idx.tolist() == [0, 1] and cell.tolist() == [1 * 8 + 4, 3 * 8 + 7]


# ---------------------------------------------------------------- ERC
def erc_reference(t_map, s_map, targets, tau):
    """Per-target loop of the documented ERC math (the library version is vectorised)."""
    keep = targets[targets[:, 2] >= 0]
    h, w = t_map.shape[2:]
    env, t_vecs, s_vecs = [], [], []
    for row in keep:
        b, x, y = int(row[0]), min(int(row[3] * w), w - 1), min(int(row[4] * h), h - 1)
        tn, sn = F.normalize(t_map[b].flatten(1), dim=0), F.normalize(s_map[b].flatten(1), dim=0)
        tv, sv = tn[:, y * w + x], sn[:, y * w + x]
        p, q = F.softmax(tv @ tn / tau, 0), F.log_softmax(sv @ sn / tau, 0)
        env.append((p * (p.log() - q)).sum())
        t_vecs.append(tv)
        s_vecs.append(sv)
    tv, sv = torch.stack(t_vecs), torch.stack(s_vecs)
    rel = []
    for i in range(len(keep)):
        others = [j for j in range(len(keep)) if j != i]
        p = F.softmax(tv[i] @ tv[others].T / tau, 0)
        q = F.log_softmax(sv[i] @ sv[others].T / tau, 0)
        rel.append((p * (p.log() - q)).sum())
    return tau ** 2 * (torch.stack(env).mean() + torch.stack(rel).mean())


def erc_case(seed=0):
    g = torch.Generator().manual_seed(seed)
    teacher = torch.randn(2, 32, 6, 8, generator=g)
    student = torch.randn(2, 16, 6, 8, generator=g)
    targets = rows((0, 0, 0.1, 0.2, 0.1, 0.2), (0, 1, 0.6, 0.7, 0.1, 0.2), (0, -1, 0.3, 0.3, 0.1, 0.1),
                   (1, 2, 0.9, 0.9, 0.1, 0.2), (1, 3, 0.4, 0.1, 0.1, 0.2), (1, 4, 0.45, 0.12, 0.1, 0.2))
    return teacher, student, targets


def test_erc_matches_per_target_reference_with_different_id_dims():
    teacher, student, targets = erc_case()
    value = erc_loss(teacher, student, targets, tau=0.2)
    assert torch.allclose(value, erc_reference(teacher, student, targets, 0.2), rtol=1e-5)


def test_erc_people_only_environment_matches_reference_on_people_cells():
    teacher, student, targets = erc_case()
    h, w = teacher.shape[2:]
    _, background = box_masks(targets, 2, h, w)
    people = background == 0
    # reference: env responses over the people cells only (background removed), target term unchanged
    full = erc_loss(teacher, student, targets, tau=0.2, env_weight=0.0)
    keep = targets[targets[:, 2] >= 0]
    env = []
    for row in keep:
        b, x, y = int(row[0]), min(int(row[3] * w), w - 1), min(int(row[4] * h), h - 1)
        tn, sn = F.normalize(teacher[b].flatten(1), dim=0), F.normalize(student[b].flatten(1), dim=0)
        cells = people[b].flatten()
        p = F.softmax(tn[:, y * w + x] @ tn[:, cells] / 0.2, 0)
        q = F.log_softmax(sn[:, y * w + x] @ sn[:, cells] / 0.2, 0)
        env.append((p * (p.log() - q)).sum())
    expected = full + 0.2 ** 2 * torch.stack(env).mean()
    value = erc_loss(teacher, student, targets, tau=0.2, env_background=0.0)
    assert torch.isfinite(value) and torch.allclose(value, expected, rtol=1e-4)
    assert torch.equal(erc_loss(teacher, student, targets, tau=0.2, env_background=1.0),
                       erc_loss(teacher, student, targets, tau=0.2))
    half = erc_loss(teacher, student, targets, tau=0.2, env_background=0.5)
    assert float(half) not in (float(value), float(erc_loss(teacher, student, targets, tau=0.2)))


def test_erc_env_background_outside_unit_interval_is_rejected():
    with pytest.raises(InputError, match="env_background"):
        load_kd_config({"losses": {"erc": {"env_background": 1.5}}})


def test_erc_zero_for_same_responses_and_scale_invariant():
    teacher, _, targets = erc_case()
    assert float(erc_loss(teacher, teacher.clone(), targets)) < 1e-7
    assert float(erc_loss(teacher, 3.0 * teacher, targets)) < 1e-6  # responses use L2-normalised embeddings


def test_erc_shuffled_student_map_costs_more():
    teacher, _, targets = erc_case()
    g = torch.Generator().manual_seed(5)
    close = teacher + 0.1 * torch.randn(teacher.shape, generator=g)
    perm = torch.randperm(48, generator=g)
    shuffled = close.flatten(2)[:, :, perm].view_as(teacher)
    assert float(erc_loss(teacher, shuffled, targets)) > 5 * float(erc_loss(teacher, close, targets))


def test_erc_without_identities_is_zero_and_differentiable():
    teacher, student, targets = erc_case()
    student.requires_grad_(True)
    targets[:, 2] = -1
    value = erc_loss(teacher, student, targets)
    value.backward()
    assert value.item() == 0 and student.grad is not None


# ---------------------------------------------------------------- key feature
def kf_case():
    g = torch.Generator().manual_seed(0)
    teacher = torch.randn(1, 4, 8, 8, generator=g)
    targets = rows((0, 0, 0.25, 0.25, 0.25, 0.25))  # fg = 2x2 cells at rows/cols 1..2
    return teacher, targets


def kf(teacher, student, targets, **kw):
    args = dict(temperature=0.5, alpha_fg=1.0, beta_bg=1.0, gamma_at=0.0) | kw
    return float(key_feature_loss([teacher], [student], targets, **args))


def test_key_feature_zero_when_equal_and_fg_outweighs_bg():
    teacher, targets = kf_case()
    assert kf(teacher, teacher.clone(), targets, gamma_at=1.0) == 0
    noise = torch.zeros_like(teacher)
    fg_student, bg_student = teacher.clone(), teacher.clone()
    fg_student[..., 1:3, 1:3] += 1.0   # the 4 foreground cells
    bg_student[..., 5:7, 5:7] += 1.0   # 4 of the 60 background cells
    assert kf(teacher, fg_student, targets) > 5 * kf(teacher, bg_student, targets)
    assert kf(teacher, teacher + noise, targets) == 0


def test_key_feature_follows_teacher_channel_attention():
    teacher, targets = kf_case()
    teacher[:, 0] *= 6.0  # channel 0 carries most of the teacher's activation
    strong, weak = teacher.clone(), teacher.clone()
    strong[:, 0] += 0.5
    weak[:, 3] += 0.5
    assert kf(teacher, strong, targets) > 2 * kf(teacher, weak, targets)


def test_key_feature_attention_transfer_term():
    teacher, targets = kf_case()
    scaled = teacher * 2.0  # same positions/channels ranked, sharper attention
    only_at = kf(teacher, scaled, targets, alpha_fg=0.0, beta_bg=0.0, gamma_at=1.0)
    assert only_at > 0
    assert kf(teacher, teacher, targets, alpha_fg=0.0, beta_bg=0.0, gamma_at=1.0) == 0


# ---------------------------------------------------------------- prediction difference
def head_case(reg_max=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    box = [torch.randn(2, 4 * reg_max, 4, 4, generator=g), torch.randn(2, 4 * reg_max, 2, 2, generator=g)]
    cls = [torch.randn(2, 1, 4, 4, generator=g) - 3, torch.randn(2, 1, 2, 2, generator=g) - 3]
    return box, cls


def pd(t_box, s_box, t_cls, s_cls, **kw):
    decoder, names = UltralyticsDecoder({"reg_max": 4, "nc": 1}), {"box": ["b3", "b4"], "cls": ["c3", "c4"]}
    teacher = decoder.decode({"box": t_box, "cls": t_cls}, names, (32, 32))  # strides 8 and 16
    return pred_diff_loss(teacher, decoder.decode({"box": s_box, "cls": s_cls}, names, (32, 32)), **kw)


def test_pred_diff_zero_when_equal_and_weights_normalised():
    box, cls = head_case()
    loss, weights = pd(box, [b.clone() for b in box], cls, [c.clone() for c in cls])
    assert abs(float(loss)) < 1e-5
    assert weights.shape == (2, 20) and torch.allclose(weights.sum(1), torch.ones(2))


def test_pred_diff_weights_follow_disagreement():
    box, cls = head_case()
    s_cls = [c.clone() for c in cls]
    s_cls[0][0, 0, 1, 2] += 6.0  # a false positive of the student at one P3 point of image 0
    _, weights = pd(box, box, cls, s_cls)
    assert int(weights[0].argmax()) == 1 * 4 + 2
    _, same_weights = pd(box, box, cls, cls)
    assert float(weights[0, 6]) > 3 * float(same_weights[0, 6])


def test_pred_diff_box_shift_at_confident_point_costs_more():
    box, cls = head_case()
    cls[0][1, 0, 3, 3] = 5.0  # the teacher is confident at one point of image 1
    shifted_conf, shifted_bg = [b.clone() for b in box], [b.clone() for b in box]
    shifted_conf[0][1, 3, 3, 3] += 4.0    # left side: move mass to the last DFL bin at the confident point
    shifted_bg[0][1, 3, 0, 0] += 4.0      # same change at a background point
    base, _ = pd(box, box, cls, cls)
    conf, weights = pd(box, shifted_conf, cls, cls)
    bg, _ = pd(box, shifted_bg, cls, cls)
    assert float(conf) > 3 * float(bg) > 0 and float(base) < 1e-5
    assert int(weights[1].argmax()) == 15
    only_iou, _ = pd(box, shifted_conf, cls, cls, cls_weight=0.0, dfl_weight=0.0)
    only_dfl, _ = pd(box, shifted_conf, cls, cls, cls_weight=0.0, iou_weight=0.0)
    assert float(only_iou) > 0 and float(only_dfl) > 0


def test_pred_diff_gradients_only_to_student():
    box, cls = head_case()
    s_box = [b.clone().requires_grad_(True) for b in box]
    s_cls = [(c + 0.5).requires_grad_(True) for c in cls]
    t_box = [b.clone().requires_grad_(True) for b in box]
    loss, weights = pd(t_box, s_box, cls, s_cls)
    loss.backward()
    assert not weights.requires_grad
    assert all(b.grad is None for b in t_box) and all(c.grad.abs().sum() > 0 for c in s_cls)
