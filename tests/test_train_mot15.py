"""Training on MOT15-style sequences (the real TUD gt of the motmetrics wheel, tiny painted frames): the
benchmark comes from the data config and is checked before the first epoch; a corrupt image met mid-epoch
names the file and leaves the run resumable from the last finished epoch."""
from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from loguru import logger
from test_data_support import write_tud_sequence

from mot_kd.data.dataset import MOTTrainDataset
from mot_kd.errors import cli_entry
from mot_kd.train.cli import main

TINY = ["--model", "yolov5n", "--imgsz", "64", "64", "--batch", "4", "--device", "cpu", "--set", "id_dim=16",
        "--set", "workers=0", "--set", "optimizer=AdamW", "--set", "lr0=0.002", "--set", "nbs=4"]
FRAMES = 8
train = cli_entry(main)


@pytest.fixture(scope="module")
def tud_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tud") / "seqs"
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        write_tud_sequence(root, name, frames=FRAMES)
    return root


def data_config(tmp_path: Path, root: Path, **extra) -> Path:
    path = tmp_path / "data.yaml"
    path.write_text(yaml.safe_dump({"root": str(root), "train": {"split": "full", "seqs": ["TUD-Stadtmitte"]},
                                    "val": {"split": "full", "seqs": ["TUD-Campus"]}, **extra}))
    return path


def read_rows(path: Path) -> list[dict]:
    with path.open() as handle:
        return list(csv.DictReader(handle))


def test_mot15_gt_under_the_mot17_benchmark_fails_before_the_first_epoch(tud_root, tmp_path, capsys):
    config, out = data_config(tmp_path, tud_root), tmp_path / "run"
    assert train([*TINY, "--data", str(config), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {tud_root}/TUD-Campus/gt/gt.txt: column 8 (class) holds -1 placeholders (MOT15-style gt), but "
        f"{config} validates with benchmark MOT17: set `benchmark: MOT15` in it")
    assert not out.exists()  # nothing trained, nothing written


def test_mot15_sequences_train_and_validate(tud_root, tmp_path):
    out = tmp_path / "run"
    assert train([*TINY, "--data", str(data_config(tmp_path, tud_root, benchmark="MOT15")), "--epochs", "1",
                  "--out", str(out)]) == 0
    row = read_rows(out / "results.csv")[-1]
    gt = np.loadtxt(tud_root / "TUD-Campus" / "gt" / "gt.txt", delimiter=",")
    # MOT15 protocol: every gt row is scored (class -1 included), none filtered as MOT17 would
    assert int(float(row["val/GT_Dets"])) == len(gt) and int(float(row["val/GT_IDs"])) == len(np.unique(gt[:, 1]))
    assert int(float(row["val/TP"])) + int(float(row["val/FN"])) == len(gt)
    assert torch.load(out / "weights" / "last.pt", weights_only=True)["epoch"] == 0


def test_corrupt_image_mid_epoch_names_the_file_and_the_run_resumes(tud_root, tmp_path, capsys, monkeypatch):
    image = tud_root / "TUD-Stadtmitte" / "img1" / "000003.jpg"
    intact = image.read_bytes()
    set_epoch = MOTTrainDataset.set_epoch

    def corrupt_in_epoch_2(self, epoch):
        if epoch == 1:
            image.write_bytes(intact[: len(intact) // 2])  # a copy cut short, found during epoch 2
        set_epoch(self, epoch)

    monkeypatch.setattr(MOTTrainDataset, "set_epoch", corrupt_in_epoch_2)
    errors = []
    sink = logger.add(errors.append, level="ERROR", format="{message}")
    out = tmp_path / "run"
    try:
        assert train([*TINY, "--data", str(data_config(tmp_path, tud_root, benchmark="MOT15")), "--epochs", "2",
                      "--out", str(out)]) == 2
    finally:
        logger.remove(sink)
        image_truncated = image.read_bytes() != intact
        image.write_bytes(intact)
    assert image_truncated
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {image}: truncated JPEG (the file ends before its end-of-image marker, so only part of the picture "
        "would decode): copy or extract it again")
    assert [e.strip() for e in errors] == [f"epoch 2 training failed; {out}/weights/last.pt holds 1 finished epoch(s): "
                                           f"fix the cause and continue with `python -m mot_kd.train --resume {out}`"]
    assert torch.load(out / "weights" / "last.pt", weights_only=True)["epoch"] == 0
    monkeypatch.setattr(MOTTrainDataset, "set_epoch", set_epoch)
    assert train(["--resume", str(out), "--device", "cpu"]) == 0
    rows = read_rows(out / "results.csv")
    assert [int(r["epoch"]) for r in rows] == [0, 1] and all(r["val/GT_Dets"] for r in rows)
