"""KD bench: the smoke preset end to end (with --tune), caching/resume, --report-only, aggregation and
gap-closed arithmetic on hand-made numbers, the CLI's bad-input exits (presets: test_bench_presets.py)."""
from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from mot_kd.bench import main as bench_main
from mot_kd.bench.presets import load_preset
from mot_kd.bench.report import GAP_METRICS, aggregate, build_report, gap_closed, gaps, mean_std
from mot_kd.bench.runner import Runner, kd_config, plan_runs, same_weights
from mot_kd.bench.speed import load_speed, representative_runs
from mot_kd.bench.tune import write_tuning
from mot_kd.errors import InputError
from mot_kd.kd.settings import load_kd_config
from tests.bench_helpers import run_record, smoke_variant


METRICS = ("IDF1", "MOTA", "MT", "HOTA", "IDSW")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench") / "out"
    assert bench_main(["--preset", "smoke", "--out", str(out), "--tune"]) == 0
    return out


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def test_smoke_writes_report_with_configurations_stats_and_gap(smoke):
    report = read_json(smoke / "kd_bench.json")
    assert report["preset"] == "smoke" and report["machine"] and report["date"]
    assert report["runs_done"] == report["runs_planned"] == 3
    assert set(report["configurations"]) == {"teacher", "yolov5n/none", "yolov5n/all"}
    for group in report["configurations"].values():
        assert group["n"] == 1 and group["seeds"] == [0]
        for metric in (*METRICS, "params_M", "GFLOPs", "FPS"):
            assert math.isfinite(group["mean"][metric]) and group["std"][metric] == 0.0
        assert group["mean"]["params_M"] > 1 and group["mean"]["GFLOPs"] > 0 and group["mean"]["FPS"] > 0
    assert set(report["gap_closed"]["yolov5n"]["all"]) == set(GAP_METRICS)
    assert "gap 0" in report["gap_closed_note"]
    runs = {r["name"]: r for r in report["runs"]}
    assert set(runs) == {"teacher", "yolov5n/none/seed0", "yolov5n/all/seed0"}
    assert all(r["eval_set"] == "val" and r["eval_sequences"] == ["VAL-01"] for r in runs.values())
    assert report["data"]["train"]["sequences"] == ["TRAIN-01", "TRAIN-02"]
    markdown = (smoke / "kd_bench.md").read_text()
    assert report["machine"] in markdown and report["date"] in markdown and "`smoke`" in markdown
    for row in ("| teacher yolov5n | - | 1 |", "| student yolov5n | no KD | 1 |",
                "| student yolov5n | ERC + key-feature + pred-diff | 1 |"):
        assert row in markdown
    assert "±" in markdown and "Gap closed" in markdown
    png = (smoke / "kd_bench.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000


def test_runs_use_separate_sets_and_tune_set_for_model_selection(smoke):
    data_cfg = yaml.safe_load((smoke / "configs" / "data.yaml").read_text())
    assert data_cfg["train"] == {"split": "full", "sequences": ["TRAIN-01", "TRAIN-02"]}
    assert data_cfg["val"] == {"split": "full", "sequences": ["TUNE-01"]}
    for name in ("TRAIN-01", "TUNE-01", "VAL-01"):
        seed = read_json(smoke / "data" / name / "synthetic.json")["seed"]
        assert seed == {"TRAIN": 101, "TUNE": 202, "VAL": 303}[name.split("-")[0]]
    # Same seed, same hyper-parameters for the plain and the distilled student; only the KD part differs.
    plain = read_json(smoke / "runs" / "yolov5n" / "none" / "seed0" / "train" / "job.json")
    kd = read_json(smoke / "runs" / "yolov5n" / "all" / "seed0" / "train" / "job.json")
    assert plain["settings"] == kd["settings"] and plain["settings"]["seed"] == 0
    assert plain["teacher"] is None and kd["teacher"].endswith("runs/teacher/train/weights/best.pt")


def test_tuning_grid_is_scored_on_tune_set_and_stated_in_report(smoke):
    tuning = read_json(smoke / "tuning.json")
    assert set(tuning["points"]) == {"default", "erc_x2"} and tuning["chosen"] in tuning["points"]
    assert "TUNE-01" in tuning["tuned_on"] and "val set was not used" in tuning["tuned_on"]
    for point in ("default", "erc_x2"):
        record = read_json(smoke / "tune" / point / "eval.json")
        assert record["eval_sequences"] == ["TUNE-01"]
        assert tuning["points"][point]["score"] == pytest.approx((record["IDF1"] + record["MOTA"]) / 2)
    statement = read_json(smoke / "kd_bench.json")["tuning"]
    assert statement["tuned"] is True and statement["chosen"] == tuning["chosen"]
    assert "Tuning:" in (smoke / "kd_bench.md").read_text()


def test_report_only_rebuilds_identical_json(smoke):
    before = (smoke / "kd_bench.json").read_bytes()
    for name in ("kd_bench.json", "kd_bench.md", "kd_bench.png"):
        (smoke / name).unlink()
    assert bench_main(["--preset", "smoke", "--out", str(smoke), "--report-only"]) == 0
    assert (smoke / "kd_bench.json").read_bytes() == before
    assert (smoke / "kd_bench.md").is_file() and (smoke / "kd_bench.png").is_file()


def test_rerun_resumes_only_unfinished_runs(smoke, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    run = out / "runs" / "yolov5n" / "all" / "seed0"
    kept = {p: p.stat().st_mtime_ns for p in (out / "runs" / "teacher" / "eval.json", run / "train" / "results.csv")}
    old = read_json(run / "eval.json")
    (run / "eval.json").unlink()  # interrupted after training, before its evaluation was written
    assert bench_main(["--preset", "smoke", "--out", str(out)]) == 0
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing retrained, the teacher not re-evaluated
    new = read_json(run / "eval.json")
    assert {m: new[m] for m in METRICS} == {m: old[m] for m in METRICS}  # same model, same data: same metrics


def test_half_trained_run_continues_from_last_pt(smoke, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    run = out / "runs" / "yolov5n" / "none" / "seed0"
    (run / "eval.json").unlink()
    results = run / "train" / "results.csv"
    results.write_text(results.read_text().splitlines()[0] + "\n")  # as if killed before the epoch was logged
    best = run / "train" / "weights" / "best.pt"
    before = best.stat().st_mtime_ns
    assert bench_main(["--preset", "smoke", "--out", str(out)]) == 0
    # --resume from last.pt (saved after the only epoch): nothing left to train, the same best.pt is evaluated
    assert best.stat().st_mtime_ns == before
    assert read_json(run / "eval.json")["weights"] == "runs/yolov5n/none/seed0/train/weights/best.pt"


def test_cached_kd_run_made_with_another_loss_default_is_refused(smoke, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    spec_path = out / "runs" / "yolov5n" / "all" / "seed0" / "spec.json"
    spec = read_json(spec_path)
    spec["kd"]["losses"]["erc"]["tau"] *= 2  # as if configs/kd/default.yaml had another tau when it ran
    spec_path.write_text(json.dumps(spec))
    assert bench_main(["--preset", "smoke", "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err


def test_cached_run_with_other_settings_is_refused(smoke, tmp_path, capsys):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    spec_path = out / "runs" / "yolov5n" / "none" / "seed0" / "spec.json"
    spec = read_json(spec_path)
    spec["epochs"] = 7
    spec_path.write_text(json.dumps(spec))
    assert bench_main(["--preset", "smoke", "--out", str(out)]) == 2
    assert "other settings" in capsys.readouterr().err


def test_mean_std_and_gap_closed_on_hand_made_numbers():
    assert mean_std([0.5, 0.7, 0.6]) == pytest.approx((0.6, 0.1))
    assert mean_std([0.42]) == (0.42, 0.0)
    assert gap_closed(teacher=0.8, student=0.6, kd=0.7) == pytest.approx(0.5)
    assert gap_closed(teacher=0.8, student=0.6, kd=0.55) == pytest.approx(-0.25)  # KD hurt
    assert gap_closed(teacher=10, student=4, kd=13) == pytest.approx(1.5)  # KD beat the teacher
    assert gap_closed(teacher=0.6, student=0.6, kd=0.7) is None  # zero gap: undefined, not inf/NaN
    assert gap_closed(teacher=float("nan"), student=0.6, kd=0.7) is None


def test_aggregate_and_gaps_per_configuration():
    records = [run_record("teacher", "yolov5s", None, 0, 0.8),
               *[run_record("student", "yolov5n", "none", s, v) for s, v in enumerate((0.5, 0.6, 0.7))],
               *[run_record("student", "yolov5n", "all", s, v) for s, v in enumerate((0.65, 0.7, 0.75))],
               *[run_record("student", "yolov5n", "erc", s, 0.6) for s in range(3)]]
    groups = aggregate(records)
    assert groups["yolov5n/none"]["mean"]["IDF1"] == pytest.approx(0.6)
    assert groups["yolov5n/none"]["std"]["IDF1"] == pytest.approx(0.1)
    assert groups["yolov5n/all"]["std"]["MT"] == pytest.approx(0.5) and groups["yolov5n/all"]["seeds"] == [0, 1, 2]
    result = gaps(groups)
    assert result["yolov5n"]["all"] == pytest.approx({m: 0.5 for m in GAP_METRICS})
    assert result["yolov5n"]["erc"] == pytest.approx({m: 0.0 for m in GAP_METRICS})
    records[0] = run_record("teacher", "yolov5s", None, 0, 0.6)  # teacher no better than the student: gap 0
    assert gaps(aggregate(records))["yolov5n"]["all"] == {m: None for m in GAP_METRICS}


def test_report_json_has_no_nan_when_gap_is_zero(tmp_path):
    from mot_kd.bench.report import write_report

    preset = load_preset("smoke")
    records = [{**run_record("teacher", "yolov5n", None, 0, 0.3), "name": "teacher", "machine": "m",
                "finished": "2026-01-01T00:00:00+00:00", "train_s": 1.0, "eval_s": 1.0},
               {**run_record("student", "yolov5n", "none", 0, 0.3), "name": "s", "machine": "m",
                "finished": "2026-01-02T00:00:00+00:00", "train_s": 1.0, "eval_s": 1.0}]
    report = build_report(preset, records, 3, None)
    assert report["date"] == "2026-01-02T00:00:00+00:00" and report["tuning"]["tuned"] is False
    paths = write_report(report, tmp_path)
    json.loads(paths["json"].read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON constant {c}"))


def test_kd_config_keeps_tuned_values_and_configuration_flags():
    cfg = kd_config("erc", {"adapter": "always"}, {"losses": {"erc": {"weight": 5.0}, "pred_diff": {"weight": 3.0}}})
    losses, defaults = cfg["losses"], load_kd_config(None)
    assert losses["erc"]["enabled"] and losses["erc"]["weight"] == 5.0
    assert not losses["pred_diff"]["enabled"] and losses["pred_diff"]["weight"] == 3.0
    assert not losses["key_feature"]["enabled"] and cfg["adapter"] == "always"
    # resolved: every default is pinned (a changed default makes cached runs stale, never mixed)
    assert losses["erc"]["tau"] == defaults["losses"]["erc"]["tau"] and cfg["taps"] == defaults["taps"]
    assert load_kd_config(cfg) == cfg
    flags = {name: kd_config(name, {}, None)["losses"] for name in ("all", "no_erc", "no_key_feature", "no_pred_diff")}
    ours = ("erc", "key_feature", "pred_diff")
    assert [flags["all"][n]["enabled"] for n in ours] == [True, True, True]
    assert [flags["no_key_feature"][n]["enabled"] for n in ours] == [True, False, True]
    assert not any(v["enabled"] for n, v in flags["all"].items() if n not in ours)  # the baselines stay off
    with pytest.raises(InputError, match="wieght"):
        kd_config("all", {"losses": {"erc": {"wieght": 1.0}}}, None)


def test_write_tuning_picks_best_mean_of_selection_metrics(tmp_path):
    preset = load_preset("smoke")
    records = [{"IDF1": 0.5, "MOTA": 0.5, "MT": 1, "HOTA": 0.4, "IDSW": 3},
               {"IDF1": 0.7, "MOTA": 0.4, "MT": 2, "HOTA": 0.5, "IDSW": 2}]
    summary = write_tuning(preset, tmp_path, records)
    assert summary["chosen"] == "erc_x2" and summary["points"]["erc_x2"]["score"] == pytest.approx(0.55)
    assert read_json(tmp_path / "tuning.json")["chosen_overrides"] == {"losses": {"erc": {"weight": 20.0}}}


def test_cli_bad_input_exits_2(tmp_path, capsys):
    env = {**os.environ, "YOLO_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-m", "mot_kd.bench", "--preset", "nope", "--out", str(tmp_path)],
                          check=False, capture_output=True, text=True, env=env)
    assert proc.returncode == 2 and "error: nope: no such bench config" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert bench_main(["--preset", "smoke", "--out", str(tmp_path / "empty"), "--report-only"]) == 2
    assert "no finished runs" in capsys.readouterr().err


def _train_losses(run: Path) -> list[dict]:
    """The trainer's logged losses and lr per epoch (no timings)."""
    rows = (run / "train" / "results.csv").read_text().splitlines()
    header = rows[0].split(",")
    return [{k: v for k, v in zip(header, row.split(",")) if k.startswith("train/")} for row in rows[1:]]


def test_parallel_jobs_give_the_same_runs_as_one_job(smoke, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    students = out / "runs" / "yolov5n"
    confs = ("none", "all")
    old = {conf: _train_losses(students / conf / "seed0") for conf in confs}
    shutil.rmtree(students)
    teacher_eval = out / "runs" / "teacher" / "eval.json"
    before = teacher_eval.stat().st_mtime_ns
    assert bench_main(["--preset", "smoke", "--out", str(out), "--jobs", "2"]) == 0
    assert teacher_eval.stat().st_mtime_ns == before  # cached teacher untouched
    for conf in confs:
        assert _train_losses(students / conf / "seed0") == old[conf]  # same thread count: bit-identical training
        assert (students / conf / "seed0" / "eval.json").is_file()
        assert "bench: yolov5n/" in (students / conf / "seed0" / "bench.log").read_text()  # worker's own log
    assert read_json(out / "kd_bench.json")["runs_done"] == 3


def test_jobs_must_be_positive(tmp_path, capsys):
    assert bench_main(["--preset", "smoke", "--out", str(tmp_path), "--jobs", "0"]) == 2
    assert "--jobs" in capsys.readouterr().err


def test_speed_is_timed_once_per_architecture_and_used_by_the_report(smoke):
    speed = load_speed(smoke)
    assert set(speed) == {"yolov5n"} and speed["yolov5n"]["fps"] > 0
    assert speed["yolov5n"]["weights"] == "runs/teacher/train/weights/best.pt"  # teacher and students share the arch
    report = read_json(smoke / "kd_bench.json")
    assert report["speed"]["yolov5n"]["fps"] == speed["yolov5n"]["fps"]
    fps = f"{speed['yolov5n']['fps']:.1f}"
    rows = [line for line in (smoke / "kd_bench.md").read_text().splitlines() if line.startswith("| student yolov5n")]
    assert "FPS (alone)" in (smoke / "kd_bench.md").read_text() and all(f"| {fps} |" in row for row in rows)


def test_representative_run_prefers_teacher_then_no_kd_lowest_seed():
    records = [{"role": "student", "arch": "n", "configuration": "all", "seed": 0, "name": "n/all/seed0", "weights": "a"},
               {"role": "student", "arch": "n", "configuration": "none", "seed": 2, "name": "n/none/seed2", "weights": "b"},
               {"role": "student", "arch": "n", "configuration": "none", "seed": 1, "name": "n/none/seed1", "weights": "c"},
               {"role": "teacher", "arch": "s", "configuration": None, "seed": 0, "name": "teacher", "weights": "t"},
               {"role": "student", "arch": "s", "configuration": "none", "seed": 0, "name": "s/none/seed0", "weights": "d"}]
    assert representative_runs(records) == {"n": "c", "s": "t"}


def test_unreadable_speed_file_is_an_input_error(tmp_path):
    (tmp_path / "speed.json").write_text("[1, 2]")
    with pytest.raises(InputError, match="speed.json"):
        load_speed(tmp_path)


def test_switching_student_checkpoint_reevaluates_without_training(smoke, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(smoke, out)
    trained = {p: p.stat().st_mtime_ns for p in out.glob("**/results.csv")}
    teacher = read_json(out / "runs" / "teacher" / "eval.json")
    students = {conf: out / "runs" / "yolov5n" / conf / "seed0" for conf in ("none", "all")}
    before = {conf: read_json(run / "eval.json") for conf, run in students.items()}
    preset = smoke_variant(tmp_path, student_checkpoint="last")
    loaded = load_preset(preset)
    student = next(r for r in plan_runs(loaded, out, None) if r.name == "yolov5n/none/seed0")
    assert student.evaluated and not student.done  # trained, evaluated with best.pt: only the evaluation is left
    val_frames = loaded.data["val"]["seqs"] * loaded.data["frames"]
    assert Runner(loaded, out).estimate_s(student) == pytest.approx(val_frames / loaded.cost["track_fps"]["yolov5n"])
    assert bench_main(["--preset", str(preset), "--out", str(out), "--tune"]) == 0
    assert {p: p.stat().st_mtime_ns for p in trained} == trained  # nothing trained again
    assert read_json(out / "runs" / "teacher" / "eval.json") == teacher  # the teacher keeps its best.pt
    for conf, run in students.items():
        after = read_json(run / "eval.json")
        assert after["weights"] == f"runs/yolov5n/{conf}/seed0/train/weights/last_student.pt"
        assert after["train_s"] == before[conf]["train_s"]  # the training's cost, not the re-evaluation's
        # one epoch: best.pt and last_student.pt hold the same model, so its evaluation is reused, not redone
        assert after["same_weights_as"] == before[conf]["weights"]
        assert {m: after[m] for m in METRICS} == {m: before[conf][m] for m in METRICS}
    assert read_json(out / "tune" / "default" / "eval.json")["weights"].endswith("/last_student.pt")
    assert "last epoch" in read_json(out / "kd_bench.json")["protocol"]


def test_same_weights_compares_architecture_and_every_tensor(smoke, tmp_path):
    weights = smoke / "runs" / "yolov5n" / "none" / "seed0" / "train" / "weights"
    assert same_weights(weights / "best.pt", weights / "last_student.pt")  # one epoch: the same model
    other = smoke / "runs" / "yolov5n" / "all" / "seed0" / "train" / "weights" / "best.pt"
    assert not same_weights(weights / "best.pt", other)  # same architecture, other training


def test_significance_is_the_difference_of_means_over_the_pooled_seed_std():
    from mot_kd.bench.report import compare, significance

    def group(conf, mean, std, n=3):
        return {"arch": "n", "configuration": conf, "n": n, "mean": {"IDF1": mean, "MOTA": mean, "IDSW": 10 * mean},
                "std": {"IDF1": std, "MOTA": std, "IDSW": 10 * std}}

    kd, base = group("all", 0.70, 0.01), group("none", 0.65, 0.02)
    c = compare(kd, base, "IDF1")
    assert c["diff"] == pytest.approx(0.05) and c["pooled_std"] == pytest.approx((2.5e-4) ** 0.5)
    assert c["ratio"] == pytest.approx(0.05 / 2.5e-4 ** 0.5) and c["t"] == pytest.approx(c["ratio"] / (2 / 3) ** 0.5)
    assert compare(group("all", 0.7, 0.0, n=1), base, "IDF1")["ratio"] is None  # one run: no spread to compare
    rows = significance({"n/none": base, "n/all": kd, "n/fgd": group("fgd", 0.66, 0.01), "teacher": group("t", 1, 0)})
    assert set(rows["n"]) == {"all", "fgd"} and set(rows["n"]["all"]) == {"none"}
    assert rows["n"]["fgd"]["all"]["IDF1"]["diff"] == pytest.approx(-0.04)  # a baseline against ours


