"""Several students in one training run (``--student A B``): per-student run folders, mutual terms logged,
an exact ``--resume`` of all students, and the bad-input cases."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest
import torch
import yaml

from mot_kd.data.synthetic import generate_dataset
from mot_kd.errors import InputError
from mot_kd.models import build_model, read_checkpoint, save_checkpoint
from mot_kd.train import trainer as trainer_module
from mot_kd.train.cli import main as train_main

TINY = ["--imgsz", "128", "96", "--batch", "4", "--device", "cpu", "--set", "id_dim=16", "--set", "workers=0",
        "--set", "optimizer=AdamW", "--set", "lr0=0.002", "--set", "nbs=4", "--set", "ema_tau=10",
        "--set", "val_interval=100"]
STUDENTS = ["yolov5n", "yolov5n-ghost"]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("multi")
    generate_dataset(root / "seqs", seqs=2, frames=8, width=192, height=128, seed=7, progress=False)
    data = root / "data.yaml"
    data.write_text(yaml.safe_dump({"root": str(root / "seqs"), "detector": "all", "train": {"split": "train_half"},
                                    "val": {"split": "val_half"}}))
    torch.manual_seed(0)
    teacher = root / "teacher.pt"  # an untrained teacher: the mechanics, not the quality, are under test
    save_checkpoint(build_model("yolov5n", id_dim=24), teacher, num_ids=4)
    return data, teacher


def run_args(setup, out: Path, *extra: str) -> list[str]:
    data, teacher = setup
    return ["--teacher", str(teacher), "--student", *STUDENTS, "--data", str(data), "--epochs", "2",
            "--out", str(out), *TINY, *extra]


def rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_two_students_train_in_their_own_folders_and_resume_exactly(setup, tmp_path, monkeypatch):
    reference = tmp_path / "reference"
    assert train_main(run_args(setup, reference)) == 0
    for name in STUDENTS:
        folder = reference / name
        table = rows(folder / "results.csv")
        assert [int(r["epoch"]) for r in table] == [0, 1]
        for key in ("train/kd_erc", "train/kd_key_feature", "train/kd_pred_diff", "train/kd_mutual_det",
                    "train/kd_mutual_id", "val/IDF1"):
            assert table[-1][key] != "", key
        assert float(table[0]["train/kd_mutual_det"]) > 0
        assert read_checkpoint(folder / "weights" / "best.pt")["arch"]["name"] == name
        assert (folder / "weights" / "last_student.pt").is_file()
    state = torch.load(reference / "weights" / "last.pt", weights_only=True)
    assert [s["name"] for s in state["students"]] == STUDENTS and state["epoch"] == 1

    interrupted = tmp_path / "interrupted"
    original = trainer_module.Trainer.train_epoch

    def fail_in_epoch_2(self, epoch):
        if epoch == 1:
            raise InputError("simulated kill in epoch 2")
        return original(self, epoch)

    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", fail_in_epoch_2)
    with pytest.raises(InputError, match="simulated kill"):
        train_main(run_args(setup, interrupted))
    monkeypatch.setattr(trainer_module.Trainer, "train_epoch", original)
    assert torch.load(interrupted / "weights" / "last.pt", weights_only=True)["epoch"] == 0
    assert train_main(["--resume", str(interrupted), "--device", "cpu"]) == 0
    for name in STUDENTS:
        ref, res = rows(reference / name / "results.csv"), rows(interrupted / name / "results.csv")
        assert len(ref) == len(res) == 2
        for key in ("train/loss", "train/kd_erc", "train/kd_mutual_det", "train/kd_mutual_id", "train/lr"):
            assert float(res[1][key]) == pytest.approx(float(ref[1][key]), rel=1e-5, abs=1e-7), (name, key)
        mine = read_checkpoint(interrupted / name / "weights" / "last_student.pt")["state_dict"]
        theirs = read_checkpoint(reference / name / "weights" / "last_student.pt")["state_dict"]
        for key in theirs:
            torch.testing.assert_close(mine[key], theirs[key], msg=f"{name} {key}")


def test_mutual_off_in_the_kd_config_trains_the_students_side_by_side(setup, tmp_path):
    kd = tmp_path / "kd.yaml"
    kd.write_text(yaml.safe_dump({"mutual": {"enabled": False}}))
    out = tmp_path / "off"
    args = run_args(setup, out, "--kd", str(kd))
    args[args.index("--epochs") + 1] = "1"
    assert train_main(args) == 0
    assert all("train/kd_mutual_det" not in rows(out / name / "results.csv")[0] for name in STUDENTS)


@pytest.mark.parametrize("extra, students, message", [
    ([], ["yolov5n", "yolov5n"], "--student: yolov5n is given twice; each student trains in its own folder"),
    (["--weights", "{teacher}"], STUDENTS, "--weights initialises one model; with several --student"),
    (["--kd", "{forced}"], ["yolov5n"], "mutual.enabled: true needs at least two students, got 1"),
])
def test_bad_multi_student_input_is_a_one_line_error(setup, tmp_path, extra, students, message):
    data, teacher = setup
    forced = tmp_path / "forced.yaml"
    forced.write_text(yaml.safe_dump({"mutual": {"enabled": True}}))
    args = ["--teacher", str(teacher), "--student", *students, "--data", str(data), "--out", str(tmp_path / "x"),
            *[e.format(teacher=teacher, forced=forced) for e in extra], *TINY]
    with pytest.raises(InputError, match=message) as err:
        train_main(args)
    assert "\n" not in str(err.value) and not (tmp_path / "x").exists()


def test_two_students_under_ddp_with_gloo_on_two_processes(setup, tmp_path):
    import os
    import subprocess
    import sys

    out = tmp_path / "ddp"
    env = {**os.environ, "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    args = run_args(setup, out)
    args[args.index("--epochs") + 1] = "1"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29541", "-m",
           "mot_kd.train", *args]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    state = torch.load(out / "weights" / "last.pt", weights_only=True)
    assert state["epoch"] == 0 and state["opt_step"] > 0 and [s["name"] for s in state["students"]] == STUDENTS
    assert all((out / name / "weights" / "best.pt").is_file() for name in STUDENTS)
