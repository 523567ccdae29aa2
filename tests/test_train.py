"""Training CLI end to end on a tiny synthetic set: plain and KD runs, exact resume after kill -9, gloo DDP,
``eval.mot17 --weights``, and the bad-input cases."""
from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

from mot_kd.data.synthetic import generate_dataset
from mot_kd.models import build_model, read_checkpoint
from mot_kd.train.cli import main as train_main

TINY = ["--imgsz", "128", "96", "--batch", "4", "--device", "cpu", "--set", "id_dim=16", "--set", "workers=0",
        "--set", "optimizer=AdamW", "--set", "lr0=0.002", "--set", "nbs=4", "--set", "ema_tau=10"]
ENV = {**os.environ, "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def data_cfg(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("train_data")
    generate_dataset(root / "seqs", seqs=2, frames=12, width=192, height=128, seed=5, progress=False)
    cfg = root / "data.yaml"
    cfg.write_text(yaml.safe_dump({"root": str(root / "seqs"), "detector": "all", "train": {"split": "train_half"},
                                   "val": {"split": "val_half"}}))
    return cfg


@pytest.fixture(scope="module")
def teacher_run(data_cfg, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    assert train_main(["--model", "yolov5n", "--data", str(data_cfg), "--epochs", "2", "--out", str(out),
                       "--exist-ok", *TINY]) == 0
    return out


def read_rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_plain_training_writes_weights_results_and_curves(teacher_run):
    rows = read_rows(teacher_run / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for key in ("train/box", "train/cls", "train/dfl", "train/id", "val/IDF1", "val/MOTA", "val/MT", "val/HOTA"):
        assert rows[-1][key] != ""
    assert (teacher_run / "curves.png").stat().st_size > 1000
    ckpt = read_checkpoint(teacher_run / "weights" / "best.pt")
    assert ckpt["arch"]["name"] == "yolov5n" and ckpt["meta"]["imgsz"] == [128, 96]
    assert ckpt["num_ids"] > 1


def test_distillation_run_logs_each_kd_loss_and_saves_student_only(teacher_run, data_cfg, tmp_path):
    out, kd_cfg = tmp_path / "kd", tmp_path / "kd.yaml"
    kd_cfg.write_text(yaml.safe_dump({"adapter": "always"}))  # same-width teacher: force adapters to exist
    assert train_main(["--teacher", str(teacher_run / "weights" / "best.pt"), "--student", "yolov5n",
                       "--data", str(data_cfg), "--kd", str(kd_cfg), "--epochs", "1", "--out", str(out), *TINY]) == 0
    row = read_rows(out / "results.csv")[-1]
    assert all(float(row[f"train/kd_{name}"]) > 0 for name in ("erc", "key_feature", "pred_diff"))
    saved = read_checkpoint(out / "weights" / "best.pt")["state_dict"]
    assert set(saved) == set(build_model("yolov5n", id_dim=16).state_dict())  # no teacher, no adapters
    state = torch.load(out / "weights" / "last.pt", weights_only=True)
    assert state["kd"] and all(k.startswith("connectors") for k in state["kd"])  # adapters resume with the run


def _train_cmd(data_cfg: Path, out: Path, epochs: int) -> list[str]:
    return [sys.executable, "-m", "mot_kd.train", "--model", "yolov5n", "--data", str(data_cfg), "--epochs",
            str(epochs), "--out", str(out), "--set", "val_interval=100", *TINY]


def test_resume_after_kill_continues_exactly(data_cfg, tmp_path):
    """Kill -9 during epoch 2, resume, and compare every later epoch's losses with an uninterrupted run."""
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    subprocess.run(_train_cmd(data_cfg, reference, 3), check=True, env=ENV, capture_output=True)
    proc = subprocess.Popen(_train_cmd(data_cfg, killed, 3), env=ENV, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    last = killed / "weights" / "last.pt"
    deadline = time.time() + 240
    while not last.exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(0.1)  # after epoch 1 was saved: inside epoch 2 (or just before it)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = torch.load(last, weights_only=True)  # the kill never leaves a corrupt checkpoint
    assert state["epoch"] == 0, "the run was not killed during epoch 2; make the epoch longer"
    subprocess.run([sys.executable, "-m", "mot_kd.train", "--resume", str(killed), "--device", "cpu"], check=True,
                   env=ENV, capture_output=True)
    ref_rows, resumed_rows = read_rows(reference / "results.csv"), read_rows(killed / "results.csv")
    assert len(resumed_rows) == len(ref_rows) == 3
    for ref, res in zip(ref_rows[1:], resumed_rows[1:]):
        for key in ("train/loss", "train/box", "train/cls", "train/dfl", "train/id", "train/lr"):
            assert float(res[key]) == pytest.approx(float(ref[key]), rel=1e-4, abs=1e-6), key


def test_ddp_with_gloo_on_two_processes(data_cfg, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533", "-m",
           "mot_kd.train", "--model", "yolov5n", "--data", str(data_cfg), "--epochs", "1", "--out", str(out),
           "--set", "val_interval=100", *TINY]
    done = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    state = torch.load(out / "weights" / "last.pt", weights_only=True)
    assert state["epoch"] == 0 and state["opt_step"] > 0


def test_eval_weights_tracks_every_sequence_and_reports_fps(teacher_run, data_cfg, tmp_path):
    import json

    from eval.mot17 import main as eval_main

    root = yaml.safe_load(data_cfg.read_text())["root"]
    results, out_json = tmp_path / "results", tmp_path / "metrics.json"
    assert eval_main(["--weights", str(teacher_run / "weights" / "best.pt"), "--data-root", root, "--detector", "all",
                      "--split", "val_half", "--results", str(results), "--json", str(out_json)]) == 0
    assert sorted(p.name for p in results.glob("*.txt")) == ["SYN-01.txt", "SYN-02.txt"]
    report = json.loads(out_json.read_text())
    assert report["fps"] > 0 and report["speed"]["frames"] == 2 * (12 - 12 // 2 - 1)
    assert {"IDF1", "MOTA", "MT", "HOTA"} <= set(report["combined"])


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mot_kd.train", *args], env=ENV, capture_output=True, text=True)


@pytest.mark.parametrize("args, message", [
    (["--model", "yolov5q", "--data", "{data}", "--out", "{tmp}/a"], "yolov5q"),
    (["--model", "yolov5n", "--data", "{tmp}/nowhere.yaml", "--out", "{tmp}/b"], "nowhere.yaml"),
    (["--teacher", "yolov5s", "--student", "yolov5n", "--data", "{data}", "--out", "{tmp}/c"], "train it first"),
    (["--resume", "{tmp}"], "no checkpoint"),
    (["--model", "yolov5n", "--data", "{data}", "--out", "{tmp}/d", "--set", "imgsz=[100, 96]"], "multiples of 32"),
    (["--model", "yolov5n", "--data", "{data}", "--out", "{tmp}/e", "--set", "colour=red"], "unknown hyper-parameter"),
    (["--model", "yolov5n", "--data", "{data}", "--out", "{tmp}/f", "--set", "lr0=fast"], "lr0: expected float"),
    (["--model", "yolov5n", "--data", "{data}", "--out", "{tmp}/g", "--set", "val_metric=idf1"], "not a metric"),
    (["--model", "yolov5n", "--data", "{data}", "--out", "{tmp}/h", "--device", "cuda:99"], "--device cuda:99"),
    (["--resume", "{tmp}", "--epochs", "3"], "drop --epochs"),
])
def test_bad_input_exits_2_with_one_line(args, message, data_cfg, tmp_path):
    done = run_cli(*[a.format(data=data_cfg, tmp=tmp_path) for a in args])
    assert done.returncode == 2
    assert message in done.stderr and "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("error:")


def test_tap_mismatch_is_a_clear_error(teacher_run, data_cfg, tmp_path):
    kd_cfg = tmp_path / "kd.yaml"
    kd_cfg.write_text(yaml.safe_dump({"taps": {"embedding": "reid.embedding"}}))
    done = run_cli("--teacher", str(teacher_run / "weights" / "best.pt"), "--student", "yolov5n", "--data",
                   str(data_cfg), "--kd", str(kd_cfg), "--out", str(tmp_path / "kd"), *TINY)
    assert done.returncode == 2 and "reid.embedding" in done.stderr and "Traceback" not in done.stderr


def test_track_cli_on_a_sequence_folder_with_video(teacher_run, data_cfg, tmp_path):
    from mot_kd.data.mot_files import read_mot_txt
    from trackers.track import main as track_main

    seq = Path(yaml.safe_load(data_cfg.read_text())["root"]) / "SYN-01"
    out, eager = tmp_path / "SYN-01.txt", tmp_path / "eager.yaml"
    # a 2-epoch model is unsure of everything: let every box start a track so the output has rows to check
    eager.write_text(yaml.safe_dump({"det_thresh": 0.0, "new_track_thresh": 0.0, "low_thresh": 0.0,
                                     "min_box_area": 0, "max_aspect_ratio": 100.0}))
    assert track_main(["--weights", str(teacher_run / "weights" / "best.pt"), "--source", str(seq), "--out", str(out),
                       "--tracker", str(eager), "--conf", "0.001", "--save-video"]) == 0
    rows = read_mot_txt(out)
    assert len(rows) > 0 and rows.shape[1] == 10
    assert set(rows[:, 0].astype(int)) <= set(range(1, 13)) and (rows[:, 1] >= 1).all()
    assert (rows[:, 2] >= -1).all() and (rows[:, 2] + rows[:, 4] <= 192 + 1).all()  # inside the 192x128 frames
    assert out.with_suffix(".mp4").stat().st_size > 0
    done = subprocess.run([sys.executable, "-m", "trackers.track", "--weights", str(tmp_path / "missing.pt"),
                           "--source", str(seq), "--out", str(tmp_path / "x.txt")], env=ENV, capture_output=True,
                          text=True)
    assert done.returncode == 2 and "missing.pt" in done.stderr and not (tmp_path / "x.txt").exists()
