"""KD bench presets: plans and their cost model, validation with one-line errors, variants (extends) whose shared
runs stay reusable, fingerprints, and the versus comparison of two architectures."""
from __future__ import annotations

import re

import pytest

from mot_kd.bench import main as bench_main
from mot_kd.bench.presets import load_preset
from mot_kd.bench.report import build_report, format_markdown
from mot_kd.bench.runner import fingerprint, plan_runs
from mot_kd.errors import InputError
from tests.bench_helpers import run_record, smoke_variant


def test_cpu_preset_plan_is_sized_for_three_hours_with_two_jobs(tmp_path, capsys):
    assert bench_main(["--preset", "cpu", "--out", str(tmp_path / "cpu"), "--plan", "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    hours = float(re.search(r"estimated duration: ([\d.]+) h", text).group(1))
    assert 1.0 < hours <= 3.0
    assert "25 runs" in text and "yolov5n/no_pred_diff" in text and "with 2 job(s)" in text
    assert not (tmp_path / "cpu" / "data").exists()  # --plan trains and generates nothing
    assert bench_main(["--preset", "cpu", "--out", str(tmp_path / "cpu"), "--plan"]) == 0
    one = float(re.search(r"estimated duration: ([\d.]+) h", capsys.readouterr().out).group(1))
    assert one > hours  # one job: the student runs one after the other


@pytest.mark.parametrize("changes, message", [
    ({"data__val__seed": 101}, "different seeds"),
    ({"students": {"yolov5n": ["none", "erc_plus"]}}, "erc_plus"),
    ({"students": {"yolov5n": ["all"]}}, "'none'"),
    ({"cost__track_fps": {"yolov5s": 10}}, "no entry for yolov5n"),
    ({"data__scene__crowd": 3}, "crowd"),
    ({"hyp__epochs": 3}, "student_epochs"),
    ({"tune__student": "yolov5x"}, "yolov5x"),
    ({"student_checkpoint": "final"}, "student_checkpoint"),
])
def test_bad_preset_is_rejected_naming_the_key(tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        load_preset(smoke_variant(tmp_path, **changes))


def test_variant_preset_extends_its_base_and_shares_teacher_and_no_kd_runs(tmp_path):
    base, variant = load_preset("cpu"), load_preset("cpu_erc_people")
    assert variant.students == {"yolov5n": ("none", "all", "erc")} and variant.data == base.data
    assert variant.hyp == base.hyp and variant.teacher == base.teacher and variant.tune == base.tune
    base_runs = {r.name: r for r in plan_runs(base, tmp_path, None)}
    for spec in plan_runs(variant, tmp_path, None):
        same = fingerprint(variant, spec) == fingerprint(base, base_runs[spec.name])
        assert same == (spec.kd is None)  # cached teacher/no-KD runs are reusable, KD runs are not
        if spec.kd is not None:
            assert spec.kd["losses"]["erc"]["env_background"] == 0.0
    chained = tmp_path / "chained.yaml"
    chained.write_text("extends: cpu_erc_people\nseeds: [7]\n")
    assert load_preset(chained).students == variant.students and load_preset(chained).seeds == (7,)
    tune = load_preset("cpu_equal_tune").tune  # a base's grid points set to null are dropped
    assert list(tune["grid"]) == ["default", "pd6", "kf1", "kf1_pd6", "erc0.5"] and tune["grid"]["default"] == {}
    assert load_preset("cpu_equal").tune["grid"].keys() == base.tune["grid"].keys()
    values = tmp_path / "values.yaml"  # in the settings sections null is a value (augment: null = off), kept
    values.write_text("extends: cpu_fused\nhyp: {augment: null}\nkd: {build_input_size: null}\n"
                      "students: {yolov5s-ghost: null}\n")  # ...while a student set to null is removed
    off = load_preset(values)
    assert off.hyp["augment"] is None and off.kd["build_input_size"] is None and list(off.students) == ["yolov5n"]
    loop_a, loop_b = tmp_path / "loop_a.yaml", tmp_path / "loop_b.yaml"
    loop_a.write_text(f"extends: {loop_b}\n")
    loop_b.write_text(f"extends: {loop_a}\n")
    with pytest.raises(InputError, match=r"loop_a.yaml is already in the chain of presets \(loop_a.yaml -> loop_b.yaml\)"):
        load_preset(loop_a)


def test_fingerprint_pins_the_tracker_configs_contents_not_its_name(tmp_path, monkeypatch):
    from trackers import config as tracker_config
    preset = load_preset("cpu")
    spec = plan_runs(preset, tmp_path, None)[0]
    assert fingerprint(preset, spec)["tracker"] == tracker_config.load_tracker_config("jde")
    assert fingerprint(preset, spec)["tracker"]["appearance_fusion"] == "motion"  # the recorded table's tracker
    changed = {**tracker_config.load_tracker_config("jde"), "track_buffer": 60}
    monkeypatch.setattr("mot_kd.bench.runner.load_tracker_config", lambda name: changed)
    assert fingerprint(preset, spec)["hyp"] == {**preset.hyp, **preset.eval}  # same name ...
    assert fingerprint(preset, spec)["tracker"]["track_buffer"] == 60  # ... other contents: a stale cache


@pytest.mark.parametrize("variant", ["cpu_fused", "cpu_mutual", "cpu_mutual_balanced"])
def test_a_variants_weight_for_an_unused_scheme_leaves_the_shared_runs_reusable(tmp_path, variant):
    base, extended = load_preset("cpu_equal"), load_preset(variant)
    base_runs = {r.name: r for r in plan_runs(base, tmp_path, None)}
    for spec in plan_runs(extended, tmp_path, None):
        if spec.name.startswith("yolov5n/") and spec.name.split("/")[1] in ("none", "all"):
            assert fingerprint(extended, spec) == fingerprint(base, base_runs[spec.name]), spec.name
    if variant == "cpu_fused":
        fused = next(r for r in plan_runs(extended, tmp_path, None) if "/fused/" in r.name)
        assert fused.kd["fused"]["weight"] == 0.35 and fused.kd["fused"]["enabled"] is True
    if variant == "cpu_mutual_balanced":  # its yolov5s none/all runs are cpu_mutual's too; only the team runs differ
        mutual = load_preset("cpu_mutual")
        mutual_runs = {r.name: r for r in plan_runs(mutual, tmp_path, None)}
        for spec in plan_runs(extended, tmp_path, None):
            same = fingerprint(extended, spec) == fingerprint(mutual, mutual_runs[spec.name])
            assert same == ("/mutual/" not in spec.name), spec.name
            if "/mutual/" in spec.name:
                assert spec.kd["mutual"]["det_weight"] == 5.0 and spec.kd["mutual"]["id_weight"] == 1.0


def test_versus_compares_two_architectures_per_shared_configuration(tmp_path):
    path = smoke_variant(tmp_path, students={"yolov5n": ["none", "all"], "yolov5s": ["none", "all", "erc"]},
                   versus={"yolov5s": "yolov5n"}, cost__train_step_s={"yolov5n": 1, "yolov5s": 1},
                   cost__track_fps={"yolov5n": 1, "yolov5s": 1})
    preset = load_preset(path)

    def run(arch, conf, seed, value):
        return {**run_record("student", arch, conf, seed, value), "name": f"{arch}/{conf}/seed{seed}", "machine": "m",
                "finished": "2026-01-01T00:00:00+00:00", "train_s": 1.0, "eval_s": 1.0}

    records = [run("yolov5n", "none", s, v) for s, v in enumerate((0.50, 0.52, 0.54))]
    records += [run("yolov5n", "all", s, v) for s, v in enumerate((0.60, 0.62, 0.64))]
    records += [run("yolov5s", "none", s, v) for s, v in enumerate((0.55, 0.56, 0.57))]
    records += [run("yolov5s", "all", s, v) for s, v in enumerate((0.70, 0.74, 0.78))]
    records += [run("yolov5s", "erc", 0, 0.7)]  # yolov5n has no erc row: not compared
    report = build_report(preset, records, 13, None)
    pair = report["versus"]["yolov5s"]
    assert pair["reference"] == "yolov5n" and list(pair["configurations"]) == ["none", "all"]
    kd = pair["configurations"]["all"]["IDF1"]
    pooled = ((2 * 0.02 ** 2 + 2 * 0.04 ** 2) / 4) ** 0.5
    assert kd["diff"] == pytest.approx(0.12) and kd["pooled_std"] == pytest.approx(pooled)
    assert kd["ratio"] == pytest.approx(0.12 / pooled)
    assert "| yolov5s | yolov5n | ERC + key-feature + pred-diff | +12.0 (+3.8σ) |" in format_markdown(report)
    assert "versus" not in build_report(load_preset("smoke"), records[:3], 3, None)  # only when the preset asks
    for versus, message in (({"yolov5s": "yolov5m"}, "'yolov5m' is not one of the preset's students"),
                            ({"yolov5s": "yolov5s"}, "needs another student sharing a configuration")):
        with pytest.raises(InputError, match=message):
            load_preset(smoke_variant(tmp_path, students={"yolov5n": ["none", "all"], "yolov5s": ["none", "all"]},
                                versus=versus, cost__train_step_s={"yolov5n": 1, "yolov5s": 1},
                                cost__track_fps={"yolov5n": 1, "yolov5s": 1}))

