"""examples/kd_loop.py runs and distils; README/docs show its lines verbatim; every documented import resolves."""
from __future__ import annotations

import importlib
import importlib.util
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mot_kd.data.synthetic import generate_dataset
from mot_kd.errors import cli_entry
from mot_kd.models import read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "kd_loop.py"
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
LINE = re.compile(r"epoch 1 batch (\d): loss (\S+) kd_loss (\S+) \(erc (\S+), key_feature (\S+), pred_diff (\S+)\)")


def _example():
    spec = importlib.util.spec_from_file_location("kd_loop_example", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _python_blocks(path: Path) -> list[str]:
    return re.findall(r"```python\n(.*?)```", path.read_text(), flags=re.S)


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """4 sequences x 6 frames: train_half holds 4 frames each, 16 images = 2 batches of 8."""
    root = tmp_path_factory.mktemp("kd_loop") / "data"
    generate_dataset(root, 4, 6, 160, 96, seed=0, progress=False)
    return root


def test_kd_loop_distils_the_student_and_removes_the_hooks(tiny_data, tmp_path, monkeypatch, capsys):
    example, built = _example(), {}

    def build_and_keep(name, **kwargs):  # the student's initial weights, to see that training moved them
        model = example_build(name, **kwargs)
        built[name] = {k: v.detach().clone() for k, v in model.named_parameters()}
        return model

    example_build = example.build_model
    monkeypatch.setattr(example, "build_model", build_and_keep)
    args = example.parse_args(["--teacher", "yolov5s", "--data", str(tiny_data), "--imgsz", "64", "64",
                               "--id-dim", "16", "--epochs", "1", "--device", "cpu", "--out", str(tmp_path / "s.pt")])
    student = example.distil(args)

    lines = [LINE.fullmatch(line) for line in capsys.readouterr().out.splitlines()]
    assert all(lines) and [int(m[1]) for m in lines] == [1, 2]
    for m in lines:
        loss, kd_loss, *parts = (float(v) for v in m.groups()[1:])
        assert math.isfinite(loss) and loss > 0 and math.isfinite(kd_loss) and kd_loss > 0
        assert sum(parts) == pytest.approx(kd_loss, rel=2e-3)  # the printed parts add up to the KD loss
    assert all(not m._forward_hooks for m in student.modules())  # kd.remove() ran
    initial = built["yolov5n"]
    moved = [k for k, v in student.named_parameters() if not torch.equal(v.detach(), initial[k])]
    assert len(moved) > 0.9 * len(initial)  # two optimizer steps touched (almost) every parameter
    saved = read_checkpoint(tmp_path / "s.pt")
    assert saved["meta"]["imgsz"] == [64, 64] and saved["num_ids"] > 1
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in student.state_dict().items())


def test_kd_loop_missing_teacher_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "none.pt"
    assert cli_entry(_example().main)(["--teacher", str(missing), "--data", str(tmp_path / "data")]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"error: --teacher {missing}: no such checkpoint; train one first (`make demo`, or python -m mot_kd.train "
        "--model yolov5s --data demo --hyp demo --out runs/teacher) or pass --teacher yolov5s for an untrained teacher"]
    assert not (tmp_path / "data").exists()  # checked before anything is generated


@pytest.mark.parametrize("doc", ["README.md", "docs/kd.md"])
def test_documented_kd_loop_is_the_example_line_for_line(doc):
    """The loop a doc shows is the example's code: its lines appear in the example, in the same order."""
    [block] = [b for b in _python_blocks(ROOT / doc) if "kd.remove()" in b]
    shown = [line.strip() for line in block.splitlines() if line.strip() and not line.strip().startswith("#")]
    code = iter(line.strip() for line in EXAMPLE.read_text().splitlines())
    missing = [line for line in shown if not any(line == c for c in code)]
    assert not missing, f"{doc} shows lines examples/kd_loop.py does not have (in this order): {missing}"
    assert "kd_loss * images.shape[0]" in block and "optimizer.step()" in block


def test_every_documented_import_resolves():
    imports = {(m, name.strip()) for doc in DOCS for block in _python_blocks(doc)
               for m, names in re.findall(r"^\s*from ([\w.]+) import ([\w, ]+)$", block, flags=re.M)
               for name in names.split(",")}
    assert ("mot_kd.data", "MOTTrainDataset") in imports and ("mot_kd", "KDHooks") in imports
    missing = [f"from {m} import {n}" for m, n in sorted(imports) if not hasattr(importlib.import_module(m), n)]
    assert not missing


def test_mot_kd_data_exports_load_lazily():
    """The package names resolve, but only on use: the evaluator's light imports stay free of torch."""
    code = ("import sys, mot_kd.data as d; from mot_kd.data import read_mot_txt, find_sequences; "
            "assert 'torch' not in sys.modules and 'cv2' not in sys.modules, 'eager'; "
            "from mot_kd.data import MOTTrainDataset; assert 'torch' in sys.modules; "
            "assert all(getattr(d, n) is not None for n in d.__all__); "
            "import mot_kd.data.letterbox as lb; assert d.letterbox is lb and callable(lb.letterbox); "
            "print(len(d.__all__))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) >= 20
