"""Tap specs and the recorder on foreign-style models: element/input/call/layout taps record the right tensor,
every silent trap is a clear error, and hooked models deep-copy (EMA) and pickle cleanly."""
from __future__ import annotations

import copy
import importlib
import gc
import io

import pytest
import torch
from torch import nn

from test_kd_toys import TOY_CFG, ToyTracker, make_targets
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks
from mot_kd.kd.recorder import TapRecorder
from mot_kd.kd.settings import load_kd_config
from mot_kd.kd.tapspec import TapSpec, parse_tap, parse_taps

IMAGES = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))


class Fuse(nn.Module):
    """Builds a tensor inside its forward (like CSTrack's CCN): reachable only as ``proj``'s input."""

    def __init__(self, width: int):
        super().__init__()
        self.proj = nn.Conv2d(2 * width, width, 1)

    def forward(self, a, b):
        return self.proj(torch.cat([a, b], 1) * 0.5)


class Heads(nn.Module):
    """A YOLO-Detect-like module: list in, list out."""

    def __init__(self, width: int):
        super().__init__()
        self.m = nn.ModuleList([nn.Conv2d(width, 6, 1), nn.Conv2d(width, 6, 1)])

    def forward(self, feats: list[torch.Tensor]) -> list[torch.Tensor]:
        return [conv(x) for conv, x in zip(self.m, feats)]


class ChannelsLast(nn.Module):
    """An embedding head returning (B, H, W, C), like CSTrack's SAAN output."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x):
        return self.conv(x).permute(0, 2, 3, 1)


class Foreign(nn.Module):
    """Stride-8 stem, a module run twice per forward, a tensor built in a forward, list head, BHWC embedding."""

    def __init__(self, width: int = 8, id_dim: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, 2, 1), nn.Conv2d(width, width, 3, 2, 1),
                                  nn.Conv2d(width, width, 3, 2, 1))
        self.shared = nn.Conv2d(width, width, 3, 1, 1)
        self.fuse = Fuse(width)
        self.down = nn.Conv2d(width, width, 3, 2, 1)
        self.heads = Heads(width)
        self.emb = ChannelsLast(nn.Conv2d(width, id_dim, 1))

    def forward(self, x):
        f = self.stem(x)
        a = self.shared(f)
        b = self.shared(a)
        g = self.fuse(a, b)
        return {"det": self.heads([g, self.down(g)]), "emb": self.emb(g)}


def record(model: nn.Module, taps: list, images=IMAGES):
    specs = [parse_tap(t, "test") for t in taps]
    recorder = TapRecorder(model, specs, "student", training_only=True)
    try:
        out = model.train()(images)
        return out, recorder.take([s.label for s in specs])
    finally:
        recorder.remove()


def test_parse_round_trip_and_config_forms():
    specs = parse_taps(["heads[1]", "m['hm'][0]", {"module": "fuse.proj", "input": 0},
                        {"module": "shared", "call": 1}, {"module": "emb", "layout": "BHWC", "index": [0]}], "t")
    assert [s.label for s in specs] == ["heads[1]", "m['hm'][0]", "fuse.proj@input0", "shared@call1", "emb[0]@BHWC"]
    assert all(parse_tap(s.to_config(), "t") == s for s in specs)
    cfg = load_kd_config({"taps": {"embedding": {"module": "emb", "layout": "BHWC"}, "neck": ["a[0]", "b"]}})
    assert cfg["taps"]["embedding"] == [{"module": "emb", "layout": "BHWC"}] and cfg["taps"]["neck"] == ["a[0]", "b"]
    assert load_kd_config(cfg)["taps"] == cfg["taps"]  # a resolved config loads again unchanged


@pytest.mark.parametrize("value, message", [
    ("m[hm]", r"index \[hm\] must be an integer or a quoted key, e.g. \['hm'\]"),
    ({"module": "m", "cal": 1}, "unknown tap key 'cal'; valid keys: module, index, input, layout, call"),
    ({"module": "m", "call": -1}, r"kd config.taps.neck\[0\].call: expected a non-negative integer"),
    ({"module": "m", "layout": "NHWC"}, "layout: expected one of BCHW, BHWC, got 'NHWC'"),
    ({"module": "m[0]"}, "put element selection in index:"),
    (7, "expected a module name or a mapping"),
])
def test_bad_tap_specs_are_one_line_errors(value, message):
    with pytest.raises(InputError, match=message):
        load_kd_config({"taps": {"neck": [value]}})


def test_index_input_and_call_taps_record_the_right_tensors():
    torch.manual_seed(0)
    model = Foreign()
    out, taps = record(model, ["heads[0]", "heads[1]", {"module": "fuse.proj", "input": 0},
                               {"module": "shared", "call": 0}, {"module": "shared", "call": 1},
                               {"module": "emb", "layout": "BHWC"}])
    assert taps["heads[0]"] is out["det"][0] and taps["heads[1]"] is out["det"][1]
    first, second = taps["shared@call0"], taps["shared@call1"]
    assert not torch.equal(first, second) and torch.equal(second, model.shared(first))
    assert torch.equal(taps["fuse.proj@input0"], torch.cat([first, second], 1) * 0.5)
    assert taps["emb@BHWC"].shape == (2, 64, 8, 12) and torch.equal(taps["emb@BHWC"], out["emb"].permute(0, 3, 1, 2))


def test_double_call_list_output_and_bad_index_are_errors():
    with pytest.raises(InputError, match=r"student tap 'shared': module 'shared' ran 2 times in one forward; say "
                                         r"which call to record with \{module: shared, call: 0..1\}"):
        record(Foreign(), ["shared"])
    with pytest.raises(InputError, match=r"module 'shared' ran 2 time\(s\) in one forward, so call: 2"):
        record(Foreign(), [{"module": "shared", "call": 2}])
    with pytest.raises(InputError, match=r"student tap 'heads': module output is list\[2\]: \[0\] Tensor\(2, 6, "
                                         r"8, 12\), \[1\] Tensor\(2, 6, 4, 6\), not a tensor; select an element, "
                                         r"e.g. 'heads\[0\]'"):
        record(Foreign(), ["heads"])
    with pytest.raises(InputError, match=r"module output is a list of 2; index 2 is out of range"):
        record(Foreign(), ["heads[2]"])
    with pytest.raises(InputError, match=r"'fuse' got 2 positional inputs, no input 3"):
        record(Foreign(), [{"module": "fuse", "input": 3}])


def test_tap_modified_in_place_before_kd_is_an_error():
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, student, TOY_CFG)
    out = student(IMAGES)
    out["cls"][0].sigmoid_()  # FairMOT's criterion does this to its heatmap before the README's kd() call
    with pytest.raises(InputError, match=r"student tap 'head.cls.p3': the recorded tensor was modified in place "
                                         r"\(autograd version 0 -> 1\) after the forward, before kd\(\); call "
                                         r"kd\(images, targets\) before the criterion"):
        kd(IMAGES, make_targets())
    out = student(IMAGES)
    loss, _ = kd(IMAGES, make_targets())  # kd() first, then the criterion may modify what it likes
    out["cls"][0].sigmoid_()
    assert torch.isfinite(loss)


def _bhwc_pair():
    torch.manual_seed(0)
    teacher = ToyTracker(8, 64)
    student = copy.deepcopy(teacher).train()
    for m in student.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.eval()
    student.embedding = ChannelsLast(student.embedding)
    return teacher, student


@pytest.mark.parametrize("declared", [None, "BCHW"])
def test_channels_last_embedding_not_declared_bhwc_is_an_error(declared):
    teacher, student = _bhwc_pair()
    tap = "embedding" if declared is None else {"module": "embedding", "layout": declared}
    cfg = dict(TOY_CFG, taps={"embedding": tap}, teacher_taps={"embedding": "embedding"})
    with pytest.raises(InputError, match=r"student tap 'embedding': output \(1, 8, 8, 64\) on a 64x64 input looks "
                                         r"channels-last \(B, H, W, C\): a stride-8 grid in dims 1-2 and 64 channels "
                                         r"last; declare it with \{module: embedding, layout: BHWC\}"):
        KDHooks(teacher, student, cfg)
    both = dict(cfg, teacher_taps={"embedding": tap})  # equal id dims on both sides: still refused
    teacher.embedding = ChannelsLast(teacher.embedding)
    with pytest.raises(InputError, match="looks channels-last"):
        KDHooks(teacher, student, both)


def test_declared_bhwc_embedding_distils_like_bchw():
    teacher, student = _bhwc_pair()
    cfg = dict(TOY_CFG, taps={"embedding": {"module": "embedding", "layout": "BHWC"}},
               teacher_taps={"embedding": "embedding"})
    kd = KDHooks(teacher, student, cfg)
    student(IMAGES)
    _, parts = kd(IMAGES, make_targets())
    assert abs(float(parts["erc"])) < 1e-5  # the permuted student embedding is the teacher's
    kd.remove()
    with pytest.raises(InputError, match=r"teacher tap 'embedding@BHWC': declared layout BHWC, but its output "
                                         r"\(1, 64, 8, 8\) on a 64x64 input has a stride-8 grid in dims 2-3"):
        KDHooks(teacher, student, dict(cfg, teacher_taps={"embedding": {"module": "embedding", "layout": "BHWC"}}))


def _hooks(model: nn.Module) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


def _saved(model: nn.Module) -> nn.Module:
    buffer = io.BytesIO()
    torch.save(model, buffer)
    buffer.seek(0)
    return torch.load(buffer, weights_only=False)


def test_deepcopy_and_pickle_while_attached_and_after_remove():
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, student, TOY_CFG)
    ema = copy.deepcopy(student)  # an EMA made while KD is attached
    assert _hooks(ema) == _hooks(student) > 0
    ema(IMAGES)
    assert kd.student_recorder.records == {}  # the copy's hooks are inert
    loaded = _saved(ema)  # torch.save(ema) while attached
    assert _hooks(loaded) > 0
    out = loaded(IMAGES)
    assert _hooks(loaded) == 0 and out["embedding"].shape == (2, 16, 8, 12)  # stand-ins drop themselves
    assert _hooks(_saved(student)) > 0 and _hooks(_saved(teacher)) > 0
    student(IMAGES)
    loss, _ = kd(IMAGES, make_targets())
    assert torch.isfinite(loss)
    kd.remove()
    assert _hooks(student) == _hooks(teacher) == _hooks(ema) == 0  # remove() also clears the copy
    assert _hooks(copy.deepcopy(student)) == 0 and _hooks(_saved(ema)) == 0 and _hooks(_saved(student)) == 0


def test_ultralytics_model_ema_while_attached():
    from ultralytics.utils.torch_utils import ModelEMA

    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, student, TOY_CFG)
    ema = ModelEMA(student)
    opt = torch.optim.SGD(student.parameters(), lr=0.1)
    student(IMAGES)
    loss, _ = kd(IMAGES, make_targets())
    loss.backward()
    opt.step()
    ema.update(student)
    assert not torch.equal(ema.ema.embedding.weight, student.embedding.weight)
    assert _hooks(_saved(ema.ema)) > 0  # torch.save(ema.ema) works while attached
    kd.remove()
    assert _hooks(ema.ema) == 0 and _hooks(_saved(ema.ema)) == 0


def test_recorder_alone_reports_every_missing_module():
    with pytest.raises(InputError, match="student taps not found in Foreign: 'nope', 'neither'"):
        TapRecorder(Foreign(), [TapSpec("nope"), TapSpec("stem"), TapSpec("neither")], "student", training_only=True)


def test_copies_are_tracked_once_and_forgotten_when_gone():
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, student, TOY_CFG)
    copies = [copy.deepcopy(student) for _ in range(3)]
    per_copy = _hooks(student)
    assert len(kd.student_recorder._copies) == 3 * per_copy  # each hook of each copy noted once
    del copies
    gc.collect()
    kept = copy.deepcopy(student)  # noting a new copy forgets the ones that are gone
    assert len(kd.student_recorder._copies) == per_copy
    kd.remove()
    assert _hooks(kept) == 0


def test_kd_on_a_module_run_twice_needs_call_and_then_distils():
    torch.manual_seed(0)
    teacher, student = Foreign(width=16), Foreign(width=8)
    features = {"losses": {"erc": {"enabled": False}, "pred_diff": {"enabled": False}}}
    with pytest.raises(InputError, match=r"tap 'shared': module 'shared' ran 2 times in one forward"):
        KDHooks(teacher, student, dict(features, taps={"neck": ["shared"]}))
    assert _hooks(teacher) == _hooks(student) == 0  # a failed construction leaves no hooks
    kd = KDHooks(teacher, student, dict(features, taps={"neck": [{"module": "shared", "call": 1}, "down"]}))
    student.train()(IMAGES)
    loss, parts = kd(IMAGES, make_targets())
    loss.backward()
    assert float(parts["key_feature"]) > 0 and student.shared.weight.grad.abs().sum() > 0


def test_tap_modified_in_place_by_the_models_own_forward_is_an_error():
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16)
    for model in (teacher, student):
        model.neck["p3"][2] = nn.SiLU(inplace=True)  # modifies the BatchNorm output in place
    cfg = dict(TOY_CFG, taps={"neck": ["neck.p3.1", "neck.p4", "neck.p5"]})
    with pytest.raises(InputError, match=r"tap 'neck.p3.1': the recorded tensor was modified in place \(autograd "
                                         r"version 0 -> 1\) later in the model's own forward \(e.g. an inplace ReLU"):
        KDHooks(teacher, student, cfg)
    kd = KDHooks(teacher, student, dict(cfg, taps={"neck": ["neck.p3", "neck.p4", "neck.p5"]}))  # the SiLU's output
    student.train()(IMAGES)
    assert torch.isfinite(kd(IMAGES, make_targets())[0])


def _replicate_on_cpu(model: nn.Module, gpus: int, monkeypatch) -> list[nn.Module]:
    """torch's own DataParallel replicate(), with the CUDA broadcast of parameters replaced by CPU copies."""
    replicate = importlib.import_module("torch.nn.parallel.replicate")
    monkeypatch.setattr(replicate, "_broadcast_coalesced_reshape",
                        lambda tensors, devices, detach=False: [[t * 1 for t in tensors] for _ in devices])
    return replicate.replicate(model, list(range(gpus)))


@pytest.mark.parametrize("wrapped", [False, True])
def test_dataparallel_replicas_are_a_clear_error(monkeypatch, wrapped):
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, nn.DataParallel(student) if wrapped else student, TOY_CFG)
    replicas = _replicate_on_cpu(student, 3, monkeypatch)
    assert all(r._forward_pre_hooks is student._forward_pre_hooks for r in replicas)  # shared, as on GPUs
    for replica, part in zip(replicas, IMAGES.repeat(3, 1, 1, 1).chunk(3)):  # parallel_apply's forwards
        replica(part)
    with pytest.raises(InputError, match=r"^student taps: nn.DataParallel over 3 GPUs runs replicas KD cannot see; "
                                         r"use DistributedDataParallel or one GPU$"):
        kd(IMAGES, make_targets())
    student(IMAGES)  # one GPU: the module itself runs, and distils
    assert torch.isfinite(kd(IMAGES, make_targets())[0])


def test_deepcopy_of_a_copy_loses_its_hooks_on_remove():
    torch.manual_seed(0)
    teacher, student = ToyTracker(16, 32), ToyTracker(8, 16).train()
    kd = KDHooks(teacher, student, TOY_CFG)
    ema = copy.deepcopy(student)
    saved = copy.deepcopy(ema)  # ultralytics saves deepcopy(ema.ema)
    again = copy.deepcopy(saved)
    assert _hooks(saved) == _hooks(again) == _hooks(student) > 0
    kd.remove()
    assert _hooks(student) == _hooks(ema) == _hooks(saved) == _hooks(again) == 0
