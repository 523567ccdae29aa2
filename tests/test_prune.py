"""``python -m mot_kd.prune`` end to end on a tiny synthetic set (sparsity, two steps, KD recovery, summary), the
pruned checkpoint used by the trainer (teacher, continued training), ``eval.mot17 --weights`` and
``trackers.track``, and every bad input: one line, exit 2, nothing written to --out."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from mot_kd.errors import cli_entry
from mot_kd.models import load_checkpoint, read_checkpoint
from mot_kd.prune.cli import main as prune_main
from mot_kd.prune.structure import gflops
from mot_kd.train.cli import main as train_main

from test_train import ENV, TINY, data_cfg  # noqa: F401 (data_cfg: the tiny synthetic set, a module fixture)

SETS = TINY[TINY.index("--set"):]  # the training settings alone (prune takes no --imgsz/--batch/--device)


@pytest.fixture(scope="module")
def teacher(data_cfg, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("teacher")
    assert train_main(["--model", "yolov5n", "--data", str(data_cfg), "--epochs", "1", "--out", str(out),
                       "--exist-ok", *TINY]) == 0
    return out / "weights" / "best.pt"


@pytest.fixture(scope="module")
def prune_run(teacher, data_cfg, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prune") / "run"
    assert prune_main(["--weights", str(teacher), "--data", str(data_cfg), "--target-flops", "0.5", "--steps", "2",
                       "--sparsity-epochs", "1", "--kd-epochs", "1", "--calib-batches", "2", "--batch", "4",
                       "--out", str(out), *SETS]) == 0
    return out


def test_prune_writes_pruned_models_at_the_target_and_a_summary(prune_run, teacher):
    original = load_checkpoint(teacher)
    base = gflops(original, (128, 96))
    for name in ("pruned.pt", "pruned_no_kd.pt"):
        model = load_checkpoint(prune_run / name)
        assert 0.5 * 0.98 * base <= gflops(model, (128, 96)) <= 0.5 * base
        assert model.id_dim == 16 and "widths" in model.arch
    assert read_checkpoint(prune_run / "pruned.pt")["meta"]["distilled_from"] == str(teacher)
    summary = json.loads((prune_run / "summary.json").read_text())
    assert [r["model"] for r in summary["models"]] == ["original", "pruned, no KD", "pruned + KD"]
    assert all(r["fps"] > 0 and r["IDF1"] is not None for r in summary["models"])
    assert [s["step"] for s in summary["steps"]] == [1, 2] and all(len(s["w_fitness"]) >= 2 for s in summary["steps"])
    table = (prune_run / "summary.md").read_text()
    assert "| pruned + KD |" in table and "tracking FPS (cpu)" in table
    kd_row = (prune_run / "final_kd" / "results.csv").read_text().splitlines()[0]
    assert "train/kd_erc" in kd_row and "train/kd_key_feature" in kd_row
    assert not list(prune_run.parent.glob(".*.tmp"))


def test_pruned_checkpoint_is_a_teacher_and_continues_training(prune_run, data_cfg, tmp_path):
    pruned = str(prune_run / "pruned.pt")
    assert train_main(["--teacher", pruned, "--student", "yolov5n", "--data", str(data_cfg), "--epochs", "1",
                       "--out", str(tmp_path / "kd"), *TINY]) == 0
    assert train_main(["--model", "yolov5n", "--weights", pruned, "--data", str(data_cfg), "--epochs", "1",
                       "--out", str(tmp_path / "more"), *TINY]) == 0
    continued = read_checkpoint(tmp_path / "more" / "weights" / "best.pt")
    assert continued["arch"]["widths"] == read_checkpoint(pruned)["arch"]["widths"]


def test_pruned_checkpoint_tracks_and_evaluates(prune_run, data_cfg, tmp_path):
    from eval.mot17 import main as eval_main
    from trackers.track import main as track_main

    root = Path(yaml.safe_load(data_cfg.read_text())["root"])
    pruned = str(prune_run / "pruned.pt")
    assert eval_main(["--weights", pruned, "--data-root", str(root), "--detector", "all", "--split", "val_half",
                      "--results", str(tmp_path / "results"), "--json", str(tmp_path / "m.json")]) == 0
    assert json.loads((tmp_path / "m.json").read_text())["speed"]["frames"] == 2 * (12 - 12 // 2 - 1)
    assert track_main(["--weights", pruned, "--source", str(root / "SYN-01"), "--out", str(tmp_path / "t.txt")]) == 0
    assert (tmp_path / "t.txt").exists()


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mot_kd.prune", *args], env=ENV, capture_output=True, text=True)


@pytest.fixture
def not_a_checkpoint(tmp_path) -> dict[str, Path]:
    text, plain = tmp_path / "notes.pt", tmp_path / "dict.pt"
    text.write_text("not a model\n")
    torch.save({"model": torch.zeros(2)}, plain)
    return {"text": text, "dict": plain}


@pytest.mark.parametrize("weights, target, message", [
    ("teacher", "0", "--target-flops 0.0: must be in (0, 1)"),
    ("teacher", "1", "--target-flops 1.0: must be in (0, 1)"),
    ("teacher", "1.5", "--target-flops 1.5: must be in (0, 1)"),
    ("teacher", "-0.2", "--target-flops -0.2: must be in (0, 1)"),
    ("text", "0.5", "not a mot-kd checkpoint"),
    ("dict", "0.5", "not a mot-kd checkpoint (it holds a dict with keys model)"),
    ("missing", "0.5", "no such model checkpoint"),
    ("teacher", "0.00001", "--target-flops 1e-05: would remove every channel of layer"),
])
def test_bad_input_is_one_line_exit_2_and_writes_nothing(weights, target, message, teacher, not_a_checkpoint,
                                                         data_cfg, tmp_path, capsys):
    path = {"teacher": teacher, "missing": tmp_path / "missing.pt", **not_a_checkpoint}[weights]
    out = tmp_path / "out"
    rc = cli_entry(prune_main)(["--weights", str(path), "--data", str(data_cfg), "--target-flops", target,
                                "--out", str(out), *TINY])
    err = capsys.readouterr().err
    assert rc == 2 and message in err
    assert err.strip().splitlines()[-1].startswith("error:") and err.count("error:") == 1
    assert not out.exists() and not list(tmp_path.glob(".out.*"))


def test_module_entry_point_exits_2(data_cfg, not_a_checkpoint, tmp_path):
    done = run_cli("--weights", str(not_a_checkpoint["text"]), "--data", str(data_cfg), "--target-flops", "0.5",
                   "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.strip() == f"error: {not_a_checkpoint['text']}: not a mot-kd checkpoint (not a torch file, " \
        "or a damaged one); expected a model checkpoint written by mot-kd (format 'mot-kd/jde-model/1', e.g. " \
        "runs/NAME/weights/best.pt)"
    assert not (tmp_path / "out").exists()


def test_a_failure_mid_job_leaves_nothing_in_out(teacher, data_cfg, tmp_path, monkeypatch):
    from mot_kd.prune.finetune import FineTune

    def broken(self, weights, out, epochs, **_):
        (Path(out) / "weights").mkdir(parents=True)  # the stage has started writing ...
        raise RuntimeError("killed")  # ... when it fails

    monkeypatch.setattr(FineTune, "__call__", broken)
    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="killed"):
        prune_main(["--weights", str(teacher), "--data", str(data_cfg), "--target-flops", "0.5", "--sparsity-epochs",
                    "1", "--out", str(out), *TINY])
    assert not out.exists() and not list(tmp_path.iterdir())
