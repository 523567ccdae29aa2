"""Head decoders and pred-diff on the decoded form: today's values kept (regression), each family decoded
like its codebase does, channel traps caught with their clear errors, KD-only optimisation converging."""
from __future__ import annotations

import math

import pytest
import torch

from mot_kd.errors import InputError
from mot_kd.kd.decoders import Decoded, build_decoder, check_head
from mot_kd.kd.losses import pred_diff_loss
from mot_kd.kd.settings import load_kd_config

ULTRA = {"box": ["b3", "b4", "b5"], "cls": ["c3", "c4", "c5"]}


def head(**keys) -> dict:
    """A validated head section (defaults of default.yaml, then ``keys``)."""
    return load_kd_config({"head": keys, "losses": {"pred_diff": {"enabled": False}}})["head"]


def dfl_case(seed: int, reg_max: int = 16, nc: int = 1, sizes=((8, 12), (4, 6), (2, 3)), b: int = 2):
    g = torch.Generator().manual_seed(seed)
    tb = [2 * torch.randn(b, 4 * reg_max, *s, generator=g) for s in sizes]
    sb = [2 * torch.randn(b, 4 * reg_max, *s, generator=g) for s in sizes]
    tc = [torch.randn(b, nc, *s, generator=g) - 2 for s in sizes]
    sc = [torch.randn(b, nc, *s, generator=g) - 2 for s in sizes]
    return tb, sb, tc, sc


def ultra_loss(case, reg_max=16, nc=1, **kw):
    tb, sb, tc, sc = case
    decoder = build_decoder(head(reg_max=reg_max, nc=nc))
    teacher = decoder.decode({"box": tb, "cls": tc}, ULTRA, (64, 96))
    return pred_diff_loss(teacher, decoder.decode({"box": sb, "cls": sc}, ULTRA, (64, 96)), **kw)


# ---------------------------------------------------------------- regression: today's ultralytics values
# Captured from the pre-decoder pred_diff_loss(teacher_box, student_box, teacher_cls, student_cls, strides,
# reg_max, ...) on these seeded inputs (commit 4c67180), so the KD bench's results still stand.
def test_ultralytics_family_gives_the_pre_decoder_loss_values():
    loss, weights = ultra_loss(dfl_case(0))
    assert loss.item() == pytest.approx(3.6198902130126953, rel=1e-6)
    assert weights[0, :5].tolist() == pytest.approx([0.010410457849502563, 0.0033239678014069796,
                                                     0.0033427849411964417, 0.005154677666723728,
                                                     0.002856195205822587], rel=1e-5)
    assert (weights * torch.arange(weights.shape[1])).sum().item() == pytest.approx(131.53662109375, rel=1e-6)
    kw = dict(cls_weight=0.5, dfl_weight=1.0, iou_weight=2.0, box_temperature=2.0, w_conf=0.5, w_cls=2.0, w_box=0.25)
    loss, weights = ultra_loss(dfl_case(1), **kw)
    assert loss.item() == pytest.approx(14.91409683227539, rel=1e-6)
    assert (weights * torch.arange(weights.shape[1])).sum().item() == pytest.approx(124.0521240234375, rel=1e-6)
    loss, _ = ultra_loss(dfl_case(2, reg_max=4, nc=3), reg_max=4, nc=3)
    assert loss.item() == pytest.approx(2.8776185512542725, rel=1e-6)


def test_kdhooks_pred_diff_on_our_toy_model_keeps_its_pre_decoder_value():
    from test_kd_toys import ToyTracker, make_targets
    from mot_kd.kd import KDHooks
    torch.manual_seed(0)
    teacher, student = ToyTracker(width=16), ToyTracker(width=8)
    kd = KDHooks(teacher, student, {"head": {"reg_max": 4},
                                    "losses": {"erc": {"enabled": False}, "key_feature": {"enabled": False}}})
    student.train()
    images = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(3))
    student(images)
    loss, _ = kd(images, make_targets())
    assert loss.item() == pytest.approx(0.38351988792419434, rel=1e-6)


# ---------------------------------------------------------------- decoding, family by family
V5_ANCHORS = [[8, 24, 11, 34, 16, 48], [32, 96, 45, 135, 64, 192]]
PRED = {"pred": ["p3", "p4"]}


def yolo_levels(channels: int, seed: int = 0, b: int = 2):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, channels, 4, 6, generator=g), torch.randn(b, channels, 2, 3, generator=g)]  # 32x48 input


@pytest.mark.parametrize("box, centre, size", [("yolov5", 0.5, 1.0), ("yolov3", 0.5, 1.0), ("delta", 0.0, 1.0)])
def test_yolo_anchor_zero_logits_decode_to_anchor_boxes_at_cells(box, centre, size):
    decoder = build_decoder(head(family="yolo_anchor", anchors=V5_ANCHORS, box=box))
    levels = [torch.zeros(1, 18, 4, 6), torch.zeros(1, 18, 2, 3)]
    out = decoder.decode({"pred": levels}, PRED, (32, 48))
    assert out.boxes.shape == (1, 3 * 24 + 3 * 6, 4) and out.logits.shape == (1, 90, 1) and out.bins is None
    # level 0 (stride 8), anchor 1 (11 x 34), cell x=2, y=1: index = anchor * H*W + y * W + x
    x1, y1, x2, y2 = out.boxes[0, 1 * 24 + 1 * 6 + 2].tolist()
    cx, cy = (2 + centre) * 8, (1 + centre) * 8
    assert (x1, y1, x2, y2) == pytest.approx([cx - 5.5 * size, cy - 17 * size, cx + 5.5 * size, cy + 17 * size])
    assert torch.allclose(out.scores, torch.full_like(out.scores, 0.5))


def test_yolo_anchor_box_parameterisations_match_their_codebases():
    t = torch.tensor([0.3, -0.7, 0.4, -0.2])
    s, cell, anchor = 16.0, torch.tensor([1.0, 0.0]), torch.tensor([45.0, 135.0])
    expected = {  # (centre xy, size wh) in pixels, written as YOLOv5 / darknet / JDE decode them
        "yolov5": ((t[:2].sigmoid() * 2 - 0.5 + cell) * s, (t[2:].sigmoid() * 2) ** 2 * anchor),
        "yolov3": ((t[:2].sigmoid() + cell) * s, t[2:].exp() * anchor),
        "delta": ((cell + t[:2] * anchor / s) * s, anchor * t[2:].exp()),
    }
    for box, (xy, wh) in expected.items():
        levels = [torch.zeros(1, 18, 4, 6), torch.zeros(1, 18, 2, 3)]
        levels[1][0, 6:10, 0, 1] = t  # level 1 (stride 16), anchor 1, cell x=1, y=0
        out = build_decoder(head(family="yolo_anchor", anchors=V5_ANCHORS, box=box)).decode(
            {"pred": levels}, PRED, (32, 48))
        got = out.boxes[0, 72 + 1 * 6 + 0 * 3 + 1]
        assert got.tolist() == pytest.approx(torch.cat([xy - wh / 2, xy + wh / 2]).tolist(), rel=1e-5), box


def test_yolo_anchor_channel_first_and_five_d_layouts_decode_alike():
    decoder = build_decoder(head(family="yolo_anchor", anchors=V5_ANCHORS, nc=2))
    flat = yolo_levels(21)
    five_d = [x.view(x.shape[0], 3, 7, *x.shape[2:]).permute(0, 1, 3, 4, 2) for x in flat]  # YOLOv5 Detect's view
    a = decoder.decode({"pred": flat}, PRED, (32, 48))
    b = decoder.decode({"pred": five_d}, PRED, (32, 48))
    assert torch.equal(a.boxes, b.boxes) and torch.equal(a.scores, b.scores)
    # two classes: objectness and both class logits are distilled, scores are obj * cls
    p = five_d[0][0, 2, 3, 4]
    assert a.logits.shape[-1] == 3 and torch.allclose(a.scores[0, 2 * 24 + 3 * 6 + 4], p[4].sigmoid() * p[5:].sigmoid())


def test_jde_softmax2_confidence_is_one_bernoulli():
    anchors = [[6, 16, 8, 23, 11, 32, 16, 45], [21, 64, 30, 90, 43, 128, 60, 180]]
    decoder = build_decoder(head(family="yolo_anchor", anchors=anchors, box="delta", conf="softmax2"))
    levels = yolo_levels(24)
    out = decoder.decode({"pred": levels}, PRED, (32, 48))
    per_anchor = levels[0].view(2, 4, 6, 4, 6)[1, 3, :, 2, 5]  # image 1, anchor 3, cell x=5, y=2
    assert out.scores[1, 3 * 24 + 2 * 6 + 5, 0] == pytest.approx(float(per_anchor[4:6].softmax(0)[1]), rel=1e-5)
    assert out.logits.shape == (2, 4 * 24 + 4 * 6, 1)


@pytest.mark.parametrize("wh, values, expected", [
    ("ltrb", [1.0, 2.0, 3.0, 4.0], [0.5 - 1, 0.25 - 2, 0.5 + 3, 0.25 + 4]),
    ("size", [2.0, 4.0], [0.5 - 1, 0.25 - 2, 0.5 + 1, 0.25 + 2]),
])
def test_centernet_decodes_fairmot_boxes_in_input_pixels(wh, values, expected):
    decoder = build_decoder(head(family="centernet", wh=wh))
    hm, size, offset = torch.zeros(1, 1, 8, 12), torch.zeros(1, len(values), 8, 12), torch.zeros(1, 2, 8, 12)
    size[0, :, 3, 5] = torch.tensor(values)
    offset[0, :, 3, 5] = torch.tensor([0.5, 0.25])
    names = {"cls": ["hm"], "box": ["wh"], "offset": ["reg"]}
    out = decoder.decode({"cls": [hm], "box": [size], "offset": [offset]}, names, (32, 48))  # stride 4
    cell = torch.tensor([5.0, 3.0, 5.0, 3.0])
    assert out.boxes[0, 3 * 12 + 5].tolist() == pytest.approx(((cell + torch.tensor(expected)) * 4).tolist())
    assert out.raw.shape == (1, 96, len(values) + 2) and out.bins is None


def test_centernet_l1_reads_wh_as_relative_error_at_any_size():
    """The L1 term sees log-scaled wh: a 10% larger student box costs about 4 * log(1.1) at 4 or 40 cells (raw
    cells would cost 4 * 0.1 * size, 16 at 40 cells, drowning pred-diff's KL and IoU terms); the offset is raw."""
    decoder = build_decoder(head(family="centernet", wh="ltrb"))
    names = {"cls": ["hm"], "box": ["wh"], "offset": ["reg"]}

    def raw(side: float, off: float) -> torch.Tensor:
        hm, wh, offset = torch.zeros(1, 1, 8, 12), torch.full((1, 4, 8, 12), side), torch.full((1, 2, 8, 12), off)
        return decoder.decode({"cls": [hm], "box": [wh], "offset": [offset]}, names, (32, 48)).raw[0, 0]

    for size in (4.0, 40.0, 400.0):
        l1 = (raw(1.1 * size, 0.5) - raw(size, 0.5)).abs().sum().item()
        assert 0.75 * 4 * math.log(1.1) < l1 < 4 * math.log(1.1)
    assert raw(-2.0, 0.25).tolist() == pytest.approx([-math.log(3.0)] * 4 + [0.25, 0.25])  # sign kept: pulls up

# ---------------------------------------------------------------- the silent traps are errors now
def test_a_cstrack_head_under_the_dfl_family_names_yolo_anchor_not_reg_max():
    decoder = build_decoder(head(reg_max=16))
    levels = yolo_levels(18)
    with pytest.raises(InputError) as err:
        decoder.decode({"box": levels, "cls": levels}, {"box": ["model.28.m.0", "model.28.m.1"], "cls": ["c", "d"]},
                       (32, 48))
    message = str(err.value)
    assert "'model.28.m.0': 18 box channels" in message and "18 = 3 anchors * (5 + 1)" in message
    assert "head.family yolo_anchor" in message and "set reg_max" not in message


def test_reg_max_that_only_makes_channels_divide_is_still_caught():
    with pytest.raises(InputError, match="24 = 4 anchors \\* \\(4 box \\+ 2 conf\\) is JDE's head"):
        build_decoder(head()).decode({"box": yolo_levels(24), "cls": yolo_levels(1)},
                                     {"box": ["a", "b"], "cls": ["c", "d"]}, (32, 48))
    # JDE's 24-channel conv with reg_max 6: the class tap has no nc-channel tensor to name
    jde = yolo_levels(24)
    with pytest.raises(InputError, match="24 class channels, expected head.nc = 1"):
        build_decoder(head(reg_max=6)).decode({"box": jde, "cls": jde}, {"box": ["a", "b"], "cls": ["a", "b"]},
                                              (32, 48))
    # FairMOT's 4-channel wh as DFL with reg_max 1: a constant box term, refused in the config
    with pytest.raises(InputError, match=r"head.reg_max: expected an integer >= 2, got 1"):
        head(reg_max=1)
    # a 5-D YOLO level (CSTrack Detect's view) is never read as DFL logits
    five_d = [torch.zeros(2, 3, 4, 6, 12), torch.zeros(2, 3, 2, 3, 12)]
    with pytest.raises(InputError, match="5-D .* head.family yolo_anchor"):
        build_decoder(head(reg_max=3)).decode({"box": five_d, "cls": five_d}, {"box": ["a", "b"], "cls": ["c", "d"]},
                                              (32, 48))


def test_yolo_anchor_channel_count_is_checked_against_anchors_nc_and_conf():
    with pytest.raises(InputError, match=r"'p3': 18 channels, expected na \* \(4 \+ 3\) = 3 \* 7 = 21"):
        build_decoder(head(family="yolo_anchor", anchors=V5_ANCHORS, nc=2)).decode(
            {"pred": yolo_levels(18)}, PRED, (32, 48))
    with pytest.raises(InputError, match=r"shape \(2, 3, 4, 6, 6\), expected \(B, 4, H, W, 6\)"):
        build_decoder(head(family="yolo_anchor", anchors=[[1, 2] * 4] * 2)).decode(
            {"pred": [torch.zeros(2, 3, 4, 6, 6)] * 2}, PRED, (32, 48))
    with pytest.raises(InputError, match="taps.pred lists 1 levels but head.anchors 2"):
        build_decoder(head(family="yolo_anchor", anchors=V5_ANCHORS)).decode(
            {"pred": yolo_levels(18)[:1]}, {"pred": ["p3"]}, (32, 48))


def test_centernet_wh_layout_and_levels_are_checked():
    hm, wh2, off = torch.zeros(1, 1, 8, 12), torch.zeros(1, 2, 8, 12), torch.zeros(1, 2, 8, 12)
    names = {"cls": ["hm"], "box": ["wh"], "offset": ["reg"]}
    with pytest.raises(InputError, match="'wh': 2 wh channels, expected 4 for head.wh ltrb"):
        build_decoder(head(family="centernet")).decode({"cls": [hm], "box": [wh2], "offset": [off]}, names, (32, 48))
    with pytest.raises(InputError, match="'reg' \\(4, 6\\): not on the heatmap's grid"):
        build_decoder(head(family="centernet", wh="size")).decode(
            {"cls": [hm], "box": [wh2], "offset": [torch.zeros(1, 2, 4, 6)]}, names, (32, 48))


def test_head_config_errors_name_the_key():
    with pytest.raises(InputError, match=r"head.family: unknown head family 'centernt' \(did you mean 'centernet'\?\); "
                                         "families: ultralytics, yolo_anchor, centernet"):
        head(family="centernt")
    with pytest.raises(InputError, match="head.anchors: used by head family yolo_anchor only, not centernet"):
        head(family="centernet", anchors=V5_ANCHORS)
    with pytest.raises(InputError, match="head.anchors: required by head family yolo_anchor"):
        head(family="yolo_anchor")
    with pytest.raises(InputError, match=r"head.anchors\[1\]: expected an even-length list"):
        head(family="yolo_anchor", anchors=[[8, 24], [32, 96, 45]])
    with pytest.raises(InputError, match="head.box: expected one of yolov5, yolov3, delta, got 'exp'"):
        head(family="yolo_anchor", anchors=V5_ANCHORS, box="exp")
    with pytest.raises(InputError, match="softmax2 .* nc must be 1"):
        head(family="yolo_anchor", anchors=V5_ANCHORS, conf="softmax2", nc=2)
    with pytest.raises(InputError, match=r"'reg_max' is now head.reg_max"):
        load_kd_config({"reg_max": 4})
    with pytest.raises(InputError, match="taps.pred: head family yolo_anchor decodes taps pred; set pred"):
        load_kd_config({"head": {"family": "yolo_anchor", "anchors": V5_ANCHORS}})
    with pytest.raises(InputError, match="taps.pred lists 1 levels but head.anchors 2"):
        load_kd_config({"head": {"family": "yolo_anchor", "anchors": V5_ANCHORS}, "taps": {"pred": ["m.0"]}})
    assert check_head(head(family="yolo_anchor", anchors=V5_ANCHORS), "h")["box"] == "yolov5"


# ---------------------------------------------------------------- the loss on every family
FAMILY_CASES = ["ultralytics (DFL, ours)", "yolo_anchor yolov5 (CSTrack)", "yolo_anchor delta+softmax2 (JDE)",
                "centernet ltrb (FairMOT)"]


@pytest.mark.parametrize("name", FAMILY_CASES)
def test_kd_only_optimisation_moves_decoded_student_onto_teacher(name):
    from mot_kd.kd.bench_decoders import distil
    r = distil(name, steps=40)
    assert r["loss_final"] < 0.6 * r["loss_initial"]
    assert r["iou_final"] > r["iou_initial"] + 0.05
    assert r["gap_final"] < 0.6 * r["gap_initial"]


@pytest.mark.parametrize("name", FAMILY_CASES)
def test_identical_student_gives_zero_and_gradients_reach_the_student_head(name):
    from mot_kd.kd.bench_decoders import CASES, INPUT, TinyHead, head_config
    keys, channels, strides = CASES[name]
    cfg = head_config(keys)
    decoder, g = build_decoder(cfg), torch.Generator().manual_seed(1)
    features = [torch.randn(2, 8, INPUT[0] // s, INPUT[1] // s, generator=g) for s in strides]
    teacher, student = TinyHead(channels, cfg, 8, g), TinyHead(channels, cfg, 8, g)
    names = {grp: [f"{grp}{i}" for i in range(len(cs))] for grp, cs in channels.items()}
    with torch.no_grad():
        t_dec = decoder.decode(teacher(features), names, INPUT)
    same, _ = pred_diff_loss(t_dec, decoder.decode(teacher(features), names, INPUT))
    assert abs(same.item()) < 1e-5
    loss, weights = pred_diff_loss(t_dec, decoder.decode(student(features), names, INPUT))
    loss.backward()
    assert math.isfinite(loss.item()) and loss.item() > 0 and not weights.requires_grad
    assert torch.allclose(weights.sum(1), torch.ones(2))
    for group in channels:
        assert all(b[-1].weight.grad.abs().sum() > 0 for b in student.branches[group]), group


@pytest.mark.parametrize("name", ["yolo_anchor yolov5 (CSTrack)", "yolo_anchor delta+softmax2 (JDE)"])
def test_bench_heads_are_the_presets_with_few_confident_points(name):
    """The bench's anchor heads use the shipped presets' head sections, and their initial biases make few points
    confident (for JDE only the foreground logit is lowered: lowering both would leave every score at 0.5)."""
    from mot_kd.kd.bench_decoders import CASES, INPUT, TinyHead, head_config
    preset, channels, strides = CASES[name]
    cfg = head_config(preset)
    assert cfg == load_kd_config(preset)["head"]
    g = torch.Generator().manual_seed(0)
    features = [torch.randn(2, 8, INPUT[0] // s, INPUT[1] // s, generator=g) for s in strides]
    with torch.no_grad():
        scores = build_decoder(cfg).decode(TinyHead(channels, cfg, 8, g)(features),
                                           {"pred": [f"pred{i}" for i in range(3)]}, INPUT).scores
    assert scores.median() < 0.15 and (scores > 0.5).float().mean() < 0.1

def test_mismatched_teacher_and_student_decodings_are_an_error():
    small = Decoded(torch.zeros(1, 4, 1), torch.zeros(1, 4, 1), torch.zeros(1, 4, 4))
    big = Decoded(torch.zeros(1, 5, 1), torch.zeros(1, 5, 1), torch.zeros(1, 5, 4))
    with pytest.raises(InputError, match="heads must share grid, anchors and classes"):
        pred_diff_loss(small, big)


def test_bench_decoders_prints_the_table_per_family(capsys):
    from mot_kd.errors import cli_entry
    from mot_kd.kd.bench_decoders import main
    assert cli_entry(main)(["--steps", "2"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "->" in line]
    assert [r.split(" | ")[0][2:] for r in rows] == FAMILY_CASES
    assert cli_entry(main)(["--steps", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --steps: must be >= 1, got 0"
