"""The prune bench: presets (cpu, cpu_equal extending it), the plan and its cost model, the wave schedule of
--jobs, settings read from the KD bench folder, end to end on a tiny stand-in KD bench (--jobs 2 = --jobs 1),
and its errors."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
import yaml

from mot_kd.config import CONFIG_ROOT
from mot_kd.errors import InputError, cli_entry
from mot_kd.prune import bench as prune_bench
from mot_kd.prune.bench import duration_s, estimate_s, load_preset, main, plan, waves
from mot_kd.prune.bench_folder import open_bench

HYP = {"imgsz": [128, 96], "batch": 4, "nbs": 4, "optimizer": "AdamW", "lr0": 0.003, "id_dim": 16, "workers": 0,
       "ema_tau": 10, "warmup_epochs": 1.0, "val_interval": 2,
       "conf": 0.07, "iou": 0.55, "tracker": "jde"}  # distinctive evaluation settings (train default: 0.1 / 0.6)


def test_cpu_equal_extends_cpu_and_plans_every_comparison_with_three_seeds_within_the_budget(capsys, tmp_path):
    base, equal = load_preset("cpu"), load_preset("cpu_equal")
    assert (equal["from_bench"], equal["bench_preset"], equal["cost"]["steps_per_epoch"]) == \
        ("runs/bench_equal", "cpu_equal", 63)
    own = ("from_bench", "bench_preset", "cost", "description", "name", "path")
    assert {k: v for k, v in equal.items() if k not in own} == {k: v for k, v in base.items() if k not in own}
    assert {**equal["cost"], "steps_per_epoch": 75} == base["cost"]
    runs = plan(equal, tmp_path / "prune_bench_equal")  # not the checkout's runs/: cached runs change the plan
    prune = [r for r in runs if r["kind"] == "prune"]
    assert {(r["target"], r["importance"]) for r in prune} == {(0.5, "seed"), (0.5, "bn"), (0.25, "seed")}
    assert sorted({r["seed"] for r in runs}) == [0, 1, 2] and len(prune) == 9
    assert sum(r["kind"] == "sparsity" for r in runs) == 3 and sum(r["kind"] == "original" for r in runs) == 1
    assert {(r["variant"], r["configuration"]) for r in runs if r["kind"] == "scratch"} == {("no KD", "none"),
                                                                                             ("KD", "all")}
    one, two = duration_s(equal, runs, 1), duration_s(equal, runs, 2)
    assert two <= 1.2 * 3600 and one == pytest.approx(sum(estimate_s(equal, r) for r in runs))
    assert main(["--preset", "cpu_equal", "--plan", "--jobs", "2", "--out", str(tmp_path / "prune_bench_equal")]) == 0
    out = capsys.readouterr().out
    assert f"estimated duration: {two / 3600:.2f} h ({two / 60:.0f} min) with 2 job(s)" in out
    assert "flops0.5/seed" in out and "x3" in out


def test_seed_importance_costs_its_w_choices():
    preset = load_preset("cpu")
    seed, bn = (estimate_s(preset, {"kind": "prune", "target": 0.5, "importance": kind}) for kind in ("seed", "bn"))
    c = preset["cost"]
    assert seed - bn == pytest.approx(3 * preset["steps"] * c["tune_frames"] / c["track_fps"]["pruned"])


def test_sparsity_runs_start_first_and_each_wave_longest_first(monkeypatch):
    preset = load_preset("cpu")
    runs = plan(preset, Path("out"))
    first, rest = waves(preset, runs)
    assert {r["kind"] for r in first} == {"sparsity"} and "sparsity" not in {r["kind"] for r in rest}
    assert [estimate_s(preset, r) for r in rest] == sorted((estimate_s(preset, r) for r in rest), reverse=True)
    # hand-made: wave 1 = 3 x 10 s on 2 workers -> 20 s; wave 2 = 6, 5, 4, 3 -> {6+3, 5+4} -> 9 s
    costs = {"sparsity": 10.0, "a": 6.0, "b": 5.0, "c": 4.0, "d": 3.0}
    stub = [{"kind": "sparsity", "id": i} for i in range(3)] + [{"kind": k} for k in "dbca"]
    monkeypatch.setattr(prune_bench, "estimate_s", lambda p, r: costs[r["kind"]])
    assert duration_s(preset, stub, 2) == 29.0 and duration_s(preset, stub, 1) == 48.0
    assert [r["kind"] for r in waves(preset, stub)[1]] == ["a", "b", "c", "d"]


COST = yaml.safe_load((CONFIG_ROOT / "prune" / "cpu.yaml").read_text())["cost"]


def _preset(tmp_path, **changes) -> str:
    raw = {**yaml.safe_load((CONFIG_ROOT / "prune" / "cpu.yaml").read_text()), **changes}
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(raw))
    return str(path)


@pytest.mark.parametrize("changes, message", [
    ({"seedz": [0]}, "unknown key 'seedz' (did you mean 'seeds'?)"),
    ({"targets": {1.5: ["seed"]}}, "--target-flops 1.5: must be in (0, 1)"),
    ({"targets": {0.5: ["taylor"]}}, "importance 'taylor' is not one of seed, bn, l1"),
    ({"finetune": {"conf": 0.3}}, "finetune: conf is not a fine-tune override"),
    ({"finetune": {"warmup_epoch": 0.0}}, "finetune: unknown key 'warmup_epoch' (did you mean 'warmup_epochs'?)"),
    ({"cost": {"train_step_s": {0.5: 1.0}}}, "missing cost.prune_s, cost.steps_per_epoch,"),
    ({"cost": {**COST, "train_step_s": {0.5: 1.0}}}, "cost.train_step_s: expected {FLOPs fraction in (0, 1]: seconds}"),
])
def test_bad_preset_is_one_line_error(changes, message, tmp_path):
    with pytest.raises(InputError) as err:
        load_preset(_preset(tmp_path, **changes))
    assert message in str(err.value) and "\n" not in str(err.value)


def test_extends_chains_through_cpu_equal_keeps_finetune_nulls_and_refuses_a_cycle(tmp_path):
    variant = tmp_path / "variant.yaml"  # variant -> cpu_equal -> cpu
    variant.write_text("extends: cpu_equal\nseeds: [7]\nfinetune: {augment: null}\n")
    loaded, equal = load_preset(str(variant)), load_preset("cpu_equal")
    assert loaded["seeds"] == [7] and loaded["from_bench"] == equal["from_bench"] == "runs/bench_equal"
    assert loaded["finetune"] == {**equal["finetune"], "augment": None} and loaded["targets"] == equal["targets"]
    loop_a, loop_b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    loop_a.write_text(f"extends: {loop_b}\n")
    loop_b.write_text(f"extends: {loop_a}\n")
    with pytest.raises(InputError) as err:
        load_preset(str(loop_a))
    assert "is already in the chain of presets (a.yaml -> b.yaml), so the chain never ends" in str(err.value)


def test_a_preset_without_cost_names_it_among_the_missing_keys(tmp_path):
    raw = yaml.safe_load((CONFIG_ROOT / "prune" / "cpu.yaml").read_text())
    del raw["cost"], raw["seeds"]
    (tmp_path / "p.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError) as err:
        load_preset(str(tmp_path / "p.yaml"))
    assert str(err.value) == f"prune preset {tmp_path / 'p.yaml'}: missing cost, seeds"


def test_unfinished_kd_bench_names_what_is_missing_and_the_command_that_makes_it(tmp_path, capsys):
    where = tmp_path / "nowhere"
    preset = _preset(tmp_path, from_bench=str(where), bench_preset="cpu_equal")
    assert cli_entry(main)(["--preset", preset, "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"error: from_bench {where}: no finished KD bench there (needs {where}/configs/data.yaml); "
                   f"run `python -m mot_kd.bench --preset cpu_equal --out {where}` first")
    assert not (tmp_path / "out").exists()


@pytest.fixture(scope="module")
def kd_bench(tmp_path_factory) -> Path:
    """A stand-in finished KD bench folder as the KD bench lays it out: data, configs/{data,hyp}.yaml, the teacher
    (runs/teacher: spec.json, eval.json, train/weights/best.pt) and yolov5n none/all seed0 (copies of the teacher,
    with eval.json records scored as the KD bench scores them, and all's kd.yaml)."""
    from eval.model_run import RunSettings, track_and_evaluate
    from mot_kd.bench.runner import kd_config
    from mot_kd.data.synthetic import generate_dataset
    from mot_kd.models import load_checkpoint
    from mot_kd.train.cli import main as train_main
    from trackers.config import load_tracker_config

    bench = tmp_path_factory.mktemp("kd_bench") / "bench"
    for which, seed in (("TRAIN", 1), ("TUNE", 2), ("VAL", 3)):
        generate_dataset(bench / "data", 1, 10, 192, 128, seed, prefix=which, progress=False)
    (bench / "configs").mkdir(parents=True)
    data = bench / "configs" / "data.yaml"
    data.write_text(yaml.safe_dump({"root": str(bench / "data"), "detector": "all",
                                    "train": {"split": "full", "sequences": ["TRAIN-01"]},
                                    "val": {"split": "full", "sequences": ["TUNE-01"]}}))
    (bench / "configs" / "hyp.yaml").write_text(yaml.safe_dump(HYP))
    evaluation = {k: HYP[k] for k in ("conf", "iou", "tracker")}  # the KD bench preset that "made" this folder
    made = {**yaml.safe_load((CONFIG_ROOT / "bench" / "smoke.yaml").read_text()), "eval": evaluation,
            "hyp": {k: v for k, v in HYP.items() if k not in evaluation}}
    (bench.parent / "kd_preset.yaml").write_text(yaml.safe_dump(made))
    teacher = bench / "runs" / "teacher"
    assert train_main(["--model", "yolov5n", "--data", str(data), "--hyp", str(bench / "configs" / "hyp.yaml"),
                       "--epochs", "1", "--out", str(teacher / "train"), "--device", "cpu"]) == 0
    (teacher / "spec.json").write_text(json.dumps({"tracker": load_tracker_config("jde")}))
    (teacher / "eval.json").write_text(json.dumps({"weights": "runs/teacher/train/weights/best.pt"}))
    model = load_checkpoint(teacher / "train" / "weights" / "best.pt")
    result, _, _ = track_and_evaluate(model, bench / "data", bench / "eval", "full", "all", ["VAL-01"],
                                      RunSettings((128, 96), HYP["conf"], HYP["iou"], HYP["tracker"]))
    for conf in ("none", "all"):
        run = bench / "runs" / "yolov5n" / conf / "seed0"
        (run / "train" / "weights").mkdir(parents=True)
        shutil.copyfile(teacher / "train" / "weights" / "best.pt", run / "train" / "weights" / "last_student.pt")
        (run / "eval.json").write_text(json.dumps({**result.combined,
                                                   "weights": f"runs/yolov5n/{conf}/seed0/train/weights/"
                                                              "last_student.pt"}))
    (bench / "runs" / "yolov5n" / "all" / "seed0" / "kd.yaml").write_text(yaml.safe_dump(kd_config("all", {}, None)))
    return bench


def _tiny(tmp_path: Path, bench: Path) -> str:
    return _preset(tmp_path, from_bench=str(bench), bench_preset=str(bench.parent / "kd_preset.yaml"),
                   targets={0.5: ["bn"]}, steps=1, kd_epochs=1, seeds=[0])


def _copied(kd_bench: Path, tmp_path: Path) -> Path:
    """A copy of the stand-in KD bench (and the preset that "made" it) to break."""
    other = tmp_path / "bench"
    shutil.copytree(kd_bench, other)
    shutil.copyfile(kd_bench.parent / "kd_preset.yaml", tmp_path / "kd_preset.yaml")
    return other


def test_every_run_gets_the_kd_bench_settings_and_kd_config(kd_bench, tmp_path, monkeypatch):
    preset = load_preset(_tiny(tmp_path, kd_bench))
    bench = open_bench(preset)
    settings = bench.settings(0, preset["finetune"])
    assert {k: settings[k] for k in HYP} == {**HYP, "warmup_epochs": 0.0, "val_interval": 100}  # + the overrides
    assert bench.kd[0] == kd_bench / "runs" / "yolov5n" / "all" / "seed0" / "kd.yaml"
    assert bench.teacher == kd_bench / "runs" / "teacher" / "train" / "weights" / "best.pt"
    import eval.model_run

    seen, real = [], eval.model_run.track_and_evaluate

    def spy(*args):
        seen.append(args[-1])  # the RunSettings
        return real(*args)

    monkeypatch.setattr(eval.model_run, "track_and_evaluate", spy)
    run = next(r for r in plan(preset, tmp_path / "out") if r["kind"] == "scratch")
    scores = prune_bench.execute(preset, run, bench)
    assert [(r.conf, r.iou, r.tracker, r.imgsz) for r in seen] == [(0.07, 0.55, "jde", (128, 96))]
    assert scores[run["variant"]]["same_as_kd_bench"] is True  # same checkpoint + settings = the KD bench's numbers


def test_a_missing_kd_config_of_the_kd_bench_is_named(kd_bench, tmp_path):
    other = _copied(kd_bench, tmp_path)
    kd = other / "runs" / "yolov5n" / "all" / "seed0" / "kd.yaml"
    kd.unlink()
    with pytest.raises(InputError) as err:
        open_bench(load_preset(_tiny(tmp_path, other)))
    assert f"from_bench {other}: no finished KD bench there (needs {kd}); run `python -m mot_kd.bench" in str(err.value)


@pytest.mark.parametrize("record, text, key", [
    ("runs/teacher/eval.json", '{"IDF1": 0.5}', "weights"),
    ("runs/yolov5n/none/seed0/eval.json", "[1, 2]", "weights"),
    ("runs/teacher/spec.json", '{"tracker": ', "tracker"),
])
def test_a_malformed_record_of_the_kd_bench_is_named_not_a_key_error(kd_bench, tmp_path, record, text, key):
    other = _copied(kd_bench, tmp_path)
    (other / record).write_text(text)
    with pytest.raises(InputError) as err:
        open_bench(load_preset(_tiny(tmp_path, other)))
    assert str(err.value).startswith(f"{other / record}: unreadable run record of the KD bench (no '{key}' in it); "
                                     "run `python -m mot_kd.bench --preset ")


def test_a_folder_made_by_another_kd_preset_is_refused(kd_bench, tmp_path):
    other = _copied(kd_bench, tmp_path)
    (other / "configs" / "hyp.yaml").write_text(yaml.safe_dump({**HYP, "tracker": "default"}))
    with pytest.raises(InputError) as err:
        open_bench(load_preset(_tiny(tmp_path, other)))
    assert str(err.value) == (f"from_bench {other}: its configs/hyp.yaml is not what the KD bench preset "
                              f"{tmp_path / 'kd_preset.yaml'} runs with (tracker: 'default' there, 'jde' in the "
                              "preset); set bench_preset to the preset that made it")


def test_changed_tracker_config_since_the_kd_bench_is_refused(kd_bench, tmp_path):
    other = _copied(kd_bench, tmp_path)
    (other / "runs" / "teacher" / "spec.json").write_text(json.dumps({"tracker": {"det_thresh": 0.9}}))
    with pytest.raises(InputError, match=r"tracker 'jde': its config \(configs/tracker/\) differs from the one"):
        open_bench(load_preset(_tiny(tmp_path, other)))


def test_cached_runs_from_another_kd_bench_or_settings_are_refused_not_reported(kd_bench, tmp_path, capsys):
    other = _copied(kd_bench, tmp_path)  # another KD bench: same settings, its yolov5n no-KD run scored otherwise
    record = other / "runs" / "yolov5n" / "none" / "seed0" / "eval.json"
    record.write_text(json.dumps({**json.loads(record.read_text()), "IDF1": 0.123}))
    evaluations = {"targets": {}, "sparsity_epochs": 0, "seeds": [0],
                   "bench_preset": str(kd_bench.parent / "kd_preset.yaml")}  # scratch + original runs: no training
    out = tmp_path / "out"
    assert main(["--preset", _preset(tmp_path, from_bench=str(kd_bench), **evaluations), "--out", str(out)]) == 0
    assert main(["--preset", _preset(tmp_path, from_bench=str(kd_bench), **evaluations), "--out", str(out)]) == 0
    capsys.readouterr()
    evaluations["bench_preset"] = str(tmp_path / "kd_preset.yaml")
    moved = _preset(tmp_path, from_bench=str(other), **evaluations)
    assert cli_entry(main)(["--preset", moved, "--out", str(out)]) == 2
    run = out / "scratch" / "none" / "seed0"
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"error: {run / 'spec.json'}: this cached run was made with other settings (prune preset or KD bench "
        f"changed); delete {run} or use another --out")
    assert main(["--preset", moved, "--out", str(tmp_path / "fresh")]) == 0  # its own --out: evaluated afresh


def _deterministic(out: Path) -> dict:
    """Every run's scores without timings, and the trainer's logged losses of every training run."""
    found = {}
    for path in sorted(out.rglob("val.json")):
        found[str(path.relative_to(out))] = {v: {k: x for k, x in s.items() if k != "fps"}
                                             for v, s in json.loads(path.read_text()).items()}
    for path in sorted(out.rglob("results.csv")):
        rows = [line.split(",") for line in path.read_text().splitlines()]
        found[str(path.relative_to(out))] = [{k: v for k, v in zip(rows[0], row) if k.startswith("train/")}
                                             for row in rows[1:]]
    return found


def test_bench_end_to_end_and_jobs_2_gives_the_same_results_as_jobs_1(kd_bench, tmp_path, capsys):
    preset = _tiny(tmp_path, kd_bench)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # --jobs 2's workers get one thread each (2 cores // 2 or 1 // 2): the same numerics
    try:
        assert main(["--preset", preset, "--out", str(tmp_path / "one")]) == 0
        assert main(["--preset", preset, "--out", str(tmp_path / "two"), "--jobs", "2"]) == 0
    finally:
        torch.set_num_threads(threads)
    one = _deterministic(tmp_path / "one")
    assert one == _deterministic(tmp_path / "two") and len(one) == 8  # 5 runs' scores, 3 training runs
    assert (tmp_path / "two" / "flops0.5" / "bn" / "seed0" / "bench.log").stat().st_size > 0  # the worker's own log
    job = json.loads((tmp_path / "one" / "flops0.5" / "bn" / "seed0" / "prune" / "final_kd" / "job.json").read_text())
    assert job["kd"] == str(kd_bench / "runs" / "yolov5n" / "all" / "seed0" / "kd.yaml")
    assert (job["settings"]["conf"], job["settings"]["tracker"], job["settings"]["lr0"]) == (0.07, "jde", 0.003)
    assert job["weights"].endswith("step1/pruned.pt")
    table = (tmp_path / "one" / "results.md").read_text()
    assert "| yolov5n pruned to 0.5 FLOPs, bn importance, KD | 1 |" in table
    assert "| yolov5n from scratch, no KD | 1 |" in table
    assert "| yolov5n unpruned (the KD bench's teacher) | 1 |" in table
    assert "2 of 2 match its own IDF1/MOTA/HOTA exactly" in table and (tmp_path / "one" / "results.png").is_file()
    cached = (tmp_path / "one" / "flops0.5" / "bn" / "seed0" / "val.json").read_text()
    capsys.readouterr()
    assert main(["--preset", preset, "--out", str(tmp_path / "one")]) == 0  # finished runs are read back, not redone
    assert (tmp_path / "one" / "flops0.5" / "bn" / "seed0" / "val.json").read_text() == cached
    assert "5 runs (5 cached, 0 to run)" in capsys.readouterr().out


def test_jobs_must_be_positive(capsys):
    assert cli_entry(main)(["--preset", "cpu_equal", "--plan", "--jobs", "0"]) == 2
    assert capsys.readouterr().err.strip() == "error: --jobs: expected an integer >= 1, got 0"
