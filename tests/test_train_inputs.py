"""``python -m mot_kd.train`` bad input in our words, before any data is read or any epoch runs: checkpoint files
that are not mot-kd's (never torch's ``weights_only`` advice), unknown model names, misplaced or misspelt keys.
Run in-process through ``cli_entry`` (exit code and the one stderr line the user sees)."""
from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import pytest
import torch
import yaml
from test_data_support import walking_gt, write_sequence

from mot_kd.errors import InputError, cli_entry
from mot_kd.models.checkpoint import EXPECTED, read_checkpoint
from mot_kd.train.cli import main

train = cli_entry(main)


@pytest.fixture
def data(tmp_path) -> Path:
    for name in ("S1", "S2"):
        write_sequence(tmp_path / "root", name, walking_gt(4), frames=4)
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"root": str(tmp_path / "root"), "train": {"split": "full"}, "val": None}))
    return path


def error_line(capsys, *args) -> str:
    assert train(list(args)) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "weights_only" not in err
    return err.strip().splitlines()[-1]


def foreign_files(tmp_path: Path) -> dict[str, Path]:
    files = {name: tmp_path / f"{name}.pt" for name in ("text", "dict", "module", "state", "empty", "pickle")}
    files["pickle"].write_bytes(pickle.dumps({"weights": [1.0]}))  # a plain pickle, not torch.save's format
    files["text"].write_text("hello, I am not a checkpoint\n")
    torch.save({"model": torch.zeros(2), "epoch": 3}, files["dict"])
    torch.save({"model": torch.nn.Linear(2, 2)}, files["module"])  # loads only with weights_only=False
    torch.save({"job": {}, "student": {}, "epoch": 0}, files["state"])
    files["empty"].write_bytes(b"")
    return files


@pytest.mark.parametrize("kind, message", [
    ("text", "not a mot-kd checkpoint (not a torch file, or a damaged one); expected {expected}"),
    ("empty", "not a mot-kd checkpoint (not a torch file, or a damaged one); expected {expected}"),
    ("dict", "not a mot-kd checkpoint (it holds a dict with keys model, epoch); expected {expected}"),
    ("module", "not a mot-kd checkpoint: it pickles Python objects (torch.nn.modules.linear.Linear), which mot-kd "
               "never loads (a YOLOv5/CSTrack or other project's checkpoint?); expected {expected}"),
    ("pickle", "not a mot-kd checkpoint (not a torch file, or a damaged one); expected {expected}"),
    ("state", "a training state (last.pt), not a model checkpoint: use weights/best.pt or weights/last_student.pt "
              "of that run (or --resume RUN to continue training it)"),
])
def test_model_checkpoint_reader_refuses_foreign_files_in_our_words(tmp_path, kind, message):
    """read_checkpoint serves --teacher-weights, eval.mot17 --weights, trackers.track --weights."""
    path = foreign_files(tmp_path)[kind]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nor does torch's own warning about foreign pickles get through
        with pytest.raises(InputError) as info:
            read_checkpoint(path)
    assert str(info.value) == f"{path}: {message.format(expected=EXPECTED)}"
    assert EXPECTED == ("a model checkpoint written by mot-kd (format 'mot-kd/jde-model/1', e.g. "
                        "runs/NAME/weights/best.pt)")


@pytest.mark.parametrize("kind", ["text", "empty", "dict", "module", "state", "pickle"])
def test_train_weights_refuses_foreign_files_in_one_line(tmp_path, capsys, data, kind):
    """The exact words depend on which checkpoint kinds --weights accepts (mot-kd's, ultralytics' .pt)."""
    path = foreign_files(tmp_path)[kind]
    line = error_line(capsys, "--model", "yolov5n", "--weights", str(path), "--data", str(data), "--out",
                      str(tmp_path / "run"))
    assert line.startswith(f"error: {path}: ")


def test_resume_from_a_foreign_last_pt(tmp_path, capsys):
    last = tmp_path / "run" / "weights" / "last.pt"
    last.parent.mkdir(parents=True)
    torch.save({"job": {}, "student": torch.nn.Linear(2, 2)}, last)  # a module object, not a state dict
    assert error_line(capsys, "--resume", str(tmp_path / "run")) == (
        f"error: {last}: not a mot-kd checkpoint: it pickles Python objects (torch.nn.modules.linear.Linear), which "
        "mot-kd never loads (a YOLOv5/CSTrack or other project's checkpoint?); expected the training state "
        "mot_kd.train writes after every epoch (runs/NAME/weights/last.pt)")


@pytest.mark.parametrize("args, message", [
    (["--model", "yolov5q"], "model 'yolov5q': not a model YAML file nor a shipped model (did you mean 'yolov5x'?); "
                             "shipped: yolov5, yolov5-ghost (scales n/s/m/l/x, e.g. yolov5s, yolov5s-ghost)"),
    (["--model", "yolov5s_ghost"], "model 'yolov5s_ghost': not a model YAML file nor a shipped model (did you mean "
                                   "'yolov5s-ghost'?); shipped: yolov5, yolov5-ghost (scales n/s/m/l/x, e.g. "
                                   "yolov5s, yolov5s-ghost)"),
    (["--teacher", "yolo5s", "--student", "yolov5n"], "model 'yolo5s': not a model YAML file nor a shipped model "
                                                      "(did you mean 'yolov5s'?); shipped: yolov5, yolov5-ghost "
                                                      "(scales n/s/m/l/x, e.g. yolov5s, yolov5s-ghost)"),
])
def test_model_names_are_checked_before_any_data_is_read(tmp_path, capsys, args, message):
    missing = tmp_path / "missing.yaml"  # reading the data config would be an error of its own
    assert error_line(capsys, *args, "--data", str(missing), "--out", str(tmp_path / "run")) == f"error: {message}"


def test_keys_in_the_wrong_place_or_misspelt(tmp_path, capsys, data):
    base = ["--model", "yolov5n", "--data", str(data), "--out", str(tmp_path / "run")]
    assert error_line(capsys, *base, "--set", "benchmark=MOT15") == (
        "error: unknown hyper-parameter 'benchmark': it is a data-config key; set `benchmark: ...` in the --data YAML")
    assert error_line(capsys, *base, "--set", "val_intreval=2") == (
        "error: unknown hyper-parameter 'val_intreval' (did you mean 'val_interval'?)")
    assert error_line(capsys, *base, "--set", "augment={flipp: 0.5}") == (
        "error: augment: unknown key 'flipp' (did you mean 'flip'?)")
    data.write_text(yaml.safe_dump({"root": str(tmp_path / "root"), "train": {"sequnces": ["S1"]}}))
    assert error_line(capsys, *base) == f"error: {data}: train: unknown key 'sequnces' (did you mean 'sequences'?)"
    data.write_text(yaml.safe_dump({"root": str(tmp_path / "root"), "train": {"seqs": ["S3"]}, "val": None}))
    assert error_line(capsys, *base) == f"error: {data}: train: unknown sequence 'S3'; available: S1, S2"
    assert not (tmp_path / "run").exists()


def test_weights_checkpoint_is_read_once(tmp_path, data, monkeypatch):
    """--weights of mot-kd's own format: checked up front and loaded with one torch.load (was three)."""
    from mot_kd.models import build_model, save_checkpoint
    from mot_kd.models.pretrained import checkpoint_kind
    from mot_kd.train.cli import initial_model, job_from_args, parse_args

    torch.manual_seed(0)
    saved = build_model("yolov5n", id_dim=16)
    path = save_checkpoint(saved, tmp_path / "best.pt")
    loads = []
    real_load = torch.load
    monkeypatch.setattr(torch, "load", lambda *a, **k: loads.append(a[0]) or real_load(*a, **k))
    job = job_from_args(parse_args(["--model", "yolov5n", "--weights", str(path), "--data", str(data), "--out",
                                    str(tmp_path / "run"), "--set", "id_dim=16"]))
    model = initial_model(job)
    assert loads == [path] and torch.equal(model.head.detect.cv2[0][0].conv.weight,
                                           saved.head.detect.cv2[0][0].conv.weight)
    foreign = foreign_files(tmp_path)
    assert checkpoint_kind(path) == "mot-kd" and loads == [path]  # told apart without unpickling
    for kind in ("dict", "state"):  # tensors and builtins, but not our format: the reader's own error
        with pytest.raises(InputError, match="not a mot-kd checkpoint|a training state"):
            checkpoint_kind(foreign[kind])


@pytest.mark.parametrize("args", [["--student", "yolov5n", "yolov5s"], ["--model", "yolov5s", "--student", "yolov5n"]])
def test_student_without_teacher_is_an_error_not_a_plain_training(tmp_path, capsys, args):
    assert error_line(capsys, *args, "--data", "synthetic", "--out", str(tmp_path / "run")) == \
        "error: --student needs --teacher (distillation); to train one model without a teacher use --model ARCH"
    assert not (tmp_path / "run").exists()
