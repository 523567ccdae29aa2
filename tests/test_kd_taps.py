"""The tap finder (python -m mot_kd.kd.taps): rows, strides and candidate marks on a foreign-style model, CLI errors."""
from __future__ import annotations

import pytest
import torch

from test_kd_recorder import Foreign
from mot_kd.kd.taps import describe_taps, main


def _line(out: str, tap: str) -> list[str]:
    rows = [line.split() for line in out.splitlines() if line.startswith(tap + " ")]
    assert len(rows) == 1, tap
    return rows[0]


def test_cli_lists_every_output_with_index_input_call_and_layout_hints(capsys):
    assert main(["--factory", "test_kd_recorder:Foreign", "--input", "64", "96"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("taps of Foreign on a 64x96 input (training mode), execution order")
    assert _line(out, "stem.2") == ["stem.2", "Conv2d", "Tensor(2,", "8,", "8,", "12)", "8"]
    assert _line(out, "shared")[-6:] == ["runs", "2x", "per", "forward:", "add", "call:", "0..1"][-6:]
    assert "{module: fuse.proj, input: 0}  Conv2d        Tensor(2, 16, 8, 12)  8" in out  # built inside Fuse
    assert _line(out, "fuse")[-1] == "neck" and _line(out, "down")[-1] == "neck"  # what the heads take in
    assert _line(out, "heads") == ["heads", "Heads", "list[2]"]
    assert _line(out, "heads[0]") == ["heads[0]", "Heads", "Tensor(2,", "6,", "8,", "12)", "8", "head"]
    assert _line(out, "heads[1]")[-2:] == ["16", "head"]
    assert _line(out, "emb")[-5:] == ["8", "(BHWC)", "embedding", "(layout:", "BHWC)"]
    assert "heads.m.0" in out and "head" not in _line(out, "heads.m.0")  # the same tensor is marked once


def test_describe_taps_restores_modes_and_statistics():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3, 2, 1), torch.nn.BatchNorm2d(8)).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    rows = describe_taps(model, (32, 32), training=True)
    assert [(r.tap, r.stride, r.final) for r in rows] == [("0", 2, False), ("1", 2, True)]
    assert not model.training and all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(len(m._forward_hooks) == len(m._forward_pre_hooks) == 0 for m in model.modules())


@pytest.mark.parametrize("factory, message", [
    ("test_kd_toys", "--factory 'test_kd_toys': expected module:function, e.g. mot_kd.models:build_model"),
    ("no_such_module:f", "--factory 'no_such_module:f': cannot import no_such_module"),
    ("test_kd_toys:nothing", "--factory 'test_kd_toys:nothing': test_kd_toys has no attribute 'nothing'"),
    ("test_kd_toys:TOY_CFG", "--factory 'test_kd_toys:TOY_CFG': TOY_CFG is not callable"),
    ("test_kd_toys:make_targets", "make_targets() returned Tensor, not a torch.nn.Module"),
])
def test_bad_factory_is_one_line_exit_2(capsys, factory, message):
    assert main(["--factory", factory]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


def test_failing_forward_is_one_line_exit_2(capsys):
    assert main(["--factory", "test_kd_recorder:Foreign", "--input", "0", "32"]) == 2
    assert capsys.readouterr().err == "error: --input 0 32: expected positive H W\n"
    assert main(["--factory", "test_kd_taps:four_channel_model", "--input", "8", "8"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --factory test_kd_taps:four_channel_model: the model's forward on a (2, 3, 8, 8) "
                          "input failed (RuntimeError: ") and err.endswith("try another --input or --eval\n")
    assert err.count("\n") == 1


def four_channel_model() -> torch.nn.Module:
    return torch.nn.Conv2d(4, 8, 1)


def test_marks_on_ultralytics_yolov5u_built_from_its_yaml():
    from ultralytics.nn.tasks import DetectionModel

    rows = describe_taps(DetectionModel("yolov5nu.yaml", nc=1, verbose=False), (128, 160))
    marked = {mark: [r.tap for r in rows if mark in r.marks] for mark in ("neck", "head")}
    assert marked["neck"] == ["model.17", "model.20", "model.23"]  # the PAN outputs its Detect takes in
    assert marked["head"] == [f"model.24.{branch}.{level}" for branch in ("cv2", "cv3") for level in range(3)]
    assert [r.stride for r in rows if "neck" in r.marks] == [8, 16, 32]
