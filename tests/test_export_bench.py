"""The deploy benchmark end to end on toy data (table rows, goals lines, PNG), and gpu_check.sh's CPU smoke mode."""
from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from mot_kd.errors import cli_entry
from mot_kd.export.cli import main as export_main
from tests.export_helpers import tiny_checkpoint

ROOT = Path(__file__).resolve().parents[1]


def test_deploy_bench_writes_every_variant_and_the_goals(tmp_path, capsys):
    from mot_kd.data.synthetic import generate_dataset

    generate_dataset(tmp_path / "data", 2, 8, 160, 96, seed=1, progress=False)
    teacher, student = tiny_checkpoint(tmp_path / "t.pt", seed=1), tiny_checkpoint(tmp_path / "s.pt")
    argv = ["--bench", "--teacher", str(teacher), "--student", str(student), "--data-root", str(tmp_path / "data"),
            "--calib-frames", "4", "--qat-steps", "2", "--qat-batch", "2", "--conf", "0.3",
            "--work", str(tmp_path / "work"), "--out", str(tmp_path / "docs")]
    assert cli_entry(export_main)(argv) == 0
    report = json.loads((tmp_path / "docs" / "deploy_bench.json").read_text())
    labels = [r["variant"] for r in report["rows"]]
    assert labels[:5] == ["teacher PyTorch FP32", "student PyTorch FP32", "student ONNX FP32",
                          "student ONNX INT8 PTQ", "student ONNX INT8 QAT+KD"]
    assert all(r["fps"] > 0 and r["frames"] == report["info"]["frames"] for r in report["rows"])
    by = {r["variant"]: r for r in report["rows"]}
    # FP32 ONNX runs the same network: the same tracks, so the same scores
    assert by["student ONNX FP32"]["IDF1"] == pytest.approx(by["student PyTorch FP32"]["IDF1"], abs=1e-6)
    text = (tmp_path / "docs" / "deploy_bench.md").read_text()
    assert report["info"]["cpu"] in text and text.count("(goal ") == 9
    assert (tmp_path / "docs" / "deploy_bench.png").stat().st_size > 1000
    assert "speed-up over teacher PyTorch FP32" in capsys.readouterr().out


def test_deploy_bench_missing_checkpoint_is_one_line(tmp_path, capsys):
    code = cli_entry(export_main)(["--bench", "--teacher", str(tmp_path / "t.pt"), "--student", "s.pt",
                                   "--data-root", str(tmp_path), "--out", str(tmp_path / "docs")])
    assert code == 2 and capsys.readouterr().err.strip() == f"error: --teacher {tmp_path / 't.pt'}: no such checkpoint"
    assert not (tmp_path / "docs").exists()


def test_gpu_check_script_cpu_smoke(tmp_path):
    out = tmp_path / "gpu.json"
    env = {**os.environ, "YOLO_OFFLINE": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_check.sh"), "--cpu-smoke", str(out)], cwd=ROOT,
                         capture_output=True, text=True, env=env, timeout=600)
    assert run.returncode == 0, run.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["smoke"] is True and report["pytest_cuda_rc"] == "skipped"
    assert {(r["arch"], r["amp"], r["batch"]) for r in report["forward"]} == {
        ("yolov5n", amp, b) for amp in (False, True) for b in (1, 2)}
    assert all(r["images_per_s"] > 0 for r in report["forward"])
    assert report["tracking"]["frames"] == 2 and report["tracking"]["fps"] > 0
    assert report["train_amp_kd"]["steps"] == 1 and report["train_amp_kd"]["ms_per_step"] > 0


def test_gpu_check_install_fails_fast_without_a_package_index(tmp_path):
    """No venv: `make install` runs with pip's timeout at 5 s and no retries (a box without an index would
    otherwise spend most of the 480 s budget retrying), then the script goes on with the system python3."""
    (tmp_path / "repo" / "scripts").mkdir(parents=True)
    (tmp_path / "repo" / "scripts" / "gpu_check.sh").write_text((ROOT / "scripts" / "gpu_check.sh").read_text())
    fake = tmp_path / "bin"
    fake.mkdir()
    record = f'echo "$* $PIP_DEFAULT_TIMEOUT $PIP_RETRIES" > {tmp_path}/make.txt'
    (fake / "make").write_text(f"#!/bin/sh\n{record}\nexit 1\n")  # as pip fails where no index answers
    (fake / "python3").write_text("#!/bin/sh\nexit 0\n")  # stands in for a preinstalled torch + ultralytics
    for f in fake.iterdir():
        f.chmod(0o755)
    env = {"PATH": f"{fake}:/usr/bin:/bin", "PIP_DEFAULT_TIMEOUT": "180"}
    run = subprocess.run(["bash", str(tmp_path / "repo" / "scripts" / "gpu_check.sh"), "--cpu-smoke",
                          str(tmp_path / "g.json")], capture_output=True, text=True, env=env, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    assert (tmp_path / "make.txt").read_text().split() == ["install", "5", "0"]
    assert "trying the system python3" in run.stdout
