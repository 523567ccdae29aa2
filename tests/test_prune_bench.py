"""The prune bench preset: its plan (runs, seeds, the cost model within the 3 h CPU budget) and its errors."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from mot_kd.config import CONFIG_ROOT
from mot_kd.errors import InputError
from mot_kd.prune.bench import bench_paths, estimate_s, load_preset, main, plan


def test_cpu_plan_covers_every_comparison_with_three_seeds_within_three_hours(capsys):
    preset = load_preset("cpu")
    runs = plan(preset, Path("runs/prune_bench"))
    prune = [r for r in runs if r["kind"] == "prune"]
    assert {(r["target"], r["importance"]) for r in prune} == {(0.5, "seed"), (0.5, "bn"), (0.25, "seed")}
    assert sorted({r["seed"] for r in runs}) == [0, 1, 2] and len(prune) == 9
    assert sum(r["kind"] == "sparsity" for r in runs) == 3
    scratch = [r for r in runs if r["kind"] == "scratch"]
    assert {r["variant"] for r in scratch} == {"no KD", "KD"}
    assert scratch[0]["weights"] == Path("runs/bench/runs/yolov5n/none/seed0/weights/last_student.pt")
    total = sum(estimate_s(preset, r) for r in runs)
    assert 1.5 * 3600 < total <= 3 * 3600
    assert main(["--plan"]) == 0
    assert capsys.readouterr().out.strip() == f"18 runs, estimated {total / 3600:.1f} h (cpu)"


def test_seed_importance_costs_its_w_choices():
    preset = load_preset("cpu")
    seed, bn = (estimate_s(preset, {"kind": "prune", "target": 0.5, "importance": kind}) for kind in ("seed", "bn"))
    c = preset["cost"]
    assert seed - bn == pytest.approx(3 * preset["steps"] * c["tune_frames"] / c["track_fps"]["pruned"])


def _preset(tmp_path, **changes) -> str:
    raw = {**yaml.safe_load((CONFIG_ROOT / "prune" / "cpu.yaml").read_text()), **changes}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("changes, message", [
    ({"seedz": [0]}, "unknown key 'seedz' (did you mean 'seeds'?)"),
    ({"targets": {1.5: ["seed"]}}, "--target-flops 1.5: must be in (0, 1)"),
    ({"targets": {0.5: ["taylor"]}}, "importance 'taylor' is not one of seed, bn, l1"),
])
def test_bad_preset_is_one_line_error(changes, message, tmp_path):
    with pytest.raises(InputError) as err:
        load_preset(_preset(tmp_path, **changes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_missing_kd_bench_says_what_to_run_first(tmp_path):
    preset = load_preset(_preset(tmp_path, from_bench=str(tmp_path / "nowhere")))
    with pytest.raises(InputError, match=r"no finished KD bench there .* run `python -m mot_kd.bench --preset cpu"):
        bench_paths(preset)


def test_bench_runs_end_to_end_on_a_tiny_kd_bench_folder(tmp_path, capsys):
    """A stand-in KD bench folder (data, teacher, yolov5n runs) and a one-seed, one-target preset."""
    import shutil

    from mot_kd.data.synthetic import generate_dataset
    from mot_kd.train.cli import main as train_main

    bench = tmp_path / "bench"
    for which, seed in (("TRAIN", 1), ("TUNE", 2), ("VAL", 3)):
        generate_dataset(bench / "data", 1, 10, 192, 128, seed, prefix=which, progress=False)
    data = bench / "configs" / "data.yaml"
    data.parent.mkdir(parents=True)
    data.write_text(yaml.safe_dump({"root": str(bench / "data"), "detector": "all",
                                    "train": {"split": "full", "sequences": ["TRAIN-01"]},
                                    "val": {"split": "full", "sequences": ["TUNE-01"]}}))
    hyp = {"imgsz": [128, 96], "batch": 4, "nbs": 4, "optimizer": "AdamW", "lr0": 0.002, "id_dim": 16, "workers": 0,
           "ema_tau": 10}
    assert train_main(["--model", "yolov5n", "--data", str(data), "--epochs", "1", "--out",
                       str(bench / "runs" / "teacher"), "--device", "cpu",
                       *[a for k, v in hyp.items() for a in ("--set", f"{k}={v}")]]) == 0
    for conf in ("none", "all"):  # the KD bench's yolov5n runs (here: copies of the teacher)
        weights = bench / "runs" / "yolov5n" / conf / "seed0" / "weights"
        weights.mkdir(parents=True)
        shutil.copyfile(bench / "runs" / "teacher" / "weights" / "best.pt", weights / "last_student.pt")
    preset = _preset(tmp_path, from_bench=str(bench), hyp=hyp, targets={0.5: ["bn"]}, steps=1, kd_epochs=1,
                     seeds=[0])
    out = tmp_path / "prune_bench"
    assert main(["--preset", preset, "--out", str(out)]) == 0
    table = (out / "results.md").read_text()
    assert "| yolov5n pruned to 0.5 FLOPs, bn importance, KD | 1 |" in table
    assert "| yolov5n from scratch, no KD | 1 |" in table and (out / "results.png").stat().st_size > 1000
    cached = (out / "flops0.5" / "bn" / "seed0" / "val.json").read_text()
    assert main(["--preset", preset, "--out", str(out)]) == 0  # finished runs are read back, not redone
    assert (out / "flops0.5" / "bn" / "seed0" / "val.json").read_text() == cached
    assert capsys.readouterr().out.count("| yolov5n pruned to 0.5 FLOPs, bn importance, no KD | 1 |") == 2
