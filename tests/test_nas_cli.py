"""``python -m mot_kd.nas`` end to end on the smoke preset: supernet -> search -> retrain, and its errors."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from mot_kd.config import CONFIG_ROOT
from mot_kd.errors import cli_entry
from mot_kd.models import build_model, load_checkpoint, save_checkpoint
from mot_kd.nas.cli import main

nas = cli_entry(main)
SMOKE_SPACE = CONFIG_ROOT / "nas" / "smoke.yaml"


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("nas")
    data = root / "data.yaml"
    data.write_text(f"root: {root / 'seqs'}\ndetector: all\ntrain: {{split: train_half}}\nval: {{split: val_half}}\n"
                    "synthetic: {seqs: 1, frames: 8, width: 128, height: 64, seed: 0}\n")
    teacher = save_checkpoint(build_model("yolov5n", id_dim=64), root / "teacher.pt")
    return root, [f"data={data}"], teacher


def test_supernet_search_retrain(setup, capsys):
    root, sets, teacher = setup
    sets = [f"--set={s}" for s in sets]
    assert nas(["supernet", "--out", str(root / "super"), "--teacher", str(teacher), *sets]) == 0
    assert nas(["supernet", "--out", str(root / "super"), "--teacher", str(teacher), *sets]) == 2
    assert "holds a supernet state already; add --resume" in capsys.readouterr().err
    assert nas(["supernet", "--out", str(root / "super"), "--teacher", str(teacher), "--resume", *sets,
                "--set=supernet.steps=5"]) == 0
    assert nas(["search", "--out", str(root / "search"), "--supernet", str(root / "super"), *sets]) == 0
    records = [json.loads(x) for x in (root / "search" / "search.jsonl").read_text().splitlines()]
    best = json.loads((root / "search" / "best.json").read_text())
    assert len(records) == 6 and best in records and best["IDF1"] == max(r["IDF1"] for r in records)
    assert (root / "search" / "pareto.png").stat().st_size > 0
    assert nas(["retrain", "--candidate", str(root / "search" / "best.json"), "--out", str(root / "retrain"), "--",
                "--teacher", str(teacher), "--data", sets[0].split("=", 2)[2], "--epochs", "1", "--batch", "2",
                "--imgsz", "128", "64"]) == 0
    model = load_checkpoint(root / "retrain" / "train" / "weights" / "best.pt")
    assert model.arch["cfg"]["candidate"] == best["candidate"] and model.id_dim == best["candidate"]["id_dim"]


@pytest.mark.parametrize("argv, message", [
    (["search", "--out", "x", "--supernet", "nowhere"],
     "--supernet nowhere: no supernet state at nowhere/weights/last.pt"),
    (["supernet", "--out", "x", "--teacher", "t.pt", "--set", "supernet.stepz=3"], "unknown key 'stepz'"),
    (["retrain", "--candidate", "missing.json", "--out", "x"], "--candidate missing.json: no such file"),
    (["space", "--space", "smoke", "--budget-gflops", "0.001"], "--budget-gflops: 0.001 is below the smallest"),
])
def test_errors_are_one_line_exit_2(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert nas(argv) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err


@pytest.mark.parametrize("name", ["smoke", "cpu"])
def test_shipped_presets_load_and_name_their_space(name):
    from mot_kd.nas.space import load_space
    from mot_kd.nas.steps import load_preset

    preset = load_preset(name, ["supernet.steps=3"])
    assert preset["supernet"]["steps"] == 3 and load_space(preset["space"]).where == preset["space"]


def test_search_refuses_a_supernet_of_an_edited_space(setup, tmp_path, capsys):
    root, sets, teacher = setup
    space = tmp_path / "space.yaml"
    space.write_text(SMOKE_SPACE.read_text())
    args = [f"--set=space={space}", *[f"--set={s}" for s in sets], "--set=supernet.steps=1"]
    assert nas(["supernet", "--out", str(tmp_path / "s"), "--teacher", str(teacher), *args]) == 0
    space.write_text(SMOKE_SPACE.read_text().replace("width: [0.0625, 0.125]", "width: [0.0625, 0.25]"))
    assert nas(["search", "--out", str(tmp_path / "x"), "--supernet", str(tmp_path / "s"), *args]) == 2
    assert "its weights do not match the space" in capsys.readouterr().err


def test_preset_paths_are_relative_to_the_preset_file(tmp_path, monkeypatch):
    from mot_kd.data.data_config import load_data_config
    from mot_kd.nas.steps import load_preset

    monkeypatch.chdir(tmp_path)  # not the repository root
    smoke = load_preset("smoke", [])
    assert Path(smoke["data"]).resolve() == (CONFIG_ROOT / "nas" / "data" / "smoke.yaml").resolve()
    assert load_data_config(smoke["data"]).detector == "all"
    own = tmp_path / "presets" / "mine.yaml"
    own.parent.mkdir()
    (tmp_path / "presets" / "d.yaml").write_text("root: seqs\n")
    own.write_text("space: smoke\ndata: d.yaml\nimgsz: [128, 64]\n")
    (tmp_path / "d.yaml").write_text("root: elsewhere\n")  # the working folder's d.yaml is not the preset's
    preset = load_preset(str(own), [])
    assert Path(preset["data"]) == own.parent / "d.yaml" and preset["space"] == "smoke"
    assert load_preset(str(own), [f"data={tmp_path / 'd.yaml'}"])["data"] == str(tmp_path / "d.yaml")
