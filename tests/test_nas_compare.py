"""Searched students in the KD bench (``models:``), ``nas pick`` and ``nas correlate``, and the search's GFLOPs band.

A smoke-sized bench trains and evaluates a tiny candidate end to end; its runs pin the candidate's rows (an
edited file is a stale cache); correlations and picks are checked on hand-made records with known answers; the
shipped cpu_nas / bench_equal presets plan with candidate files and use cpu_equal's data, runs and KD weights.
"""
from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest
import yaml

from mot_kd.bench import main as bench_main
from mot_kd.bench.presets import load_preset
from mot_kd.bench.runner import fingerprint, plan_runs
from mot_kd.errors import InputError, cli_entry
from mot_kd.models import load_checkpoint
from mot_kd.models.info import model_card
from mot_kd.nas import build_candidate, load_space
from mot_kd.nas.cli import main as nas_cli
from mot_kd.nas.compare import correlate, pick, read_search, write_picks
from mot_kd.nas.evolution import EvolutionSettings, evolve
from mot_kd.nas.files import read_model_file, write_candidate_yaml

nas = cli_entry(nas_cli)
SMOKE = load_space("smoke")


def candidate(seed: int) -> dict:
    return SMOKE.sample(random.Random(seed))


def write_json(path: Path, data) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def preset_file(tmp_path: Path, students: dict, models: dict, name: str = "nas_smoke.yaml") -> Path:
    """The smoke preset (teacher yolov5n, 1 epoch, 128x96) with these students instead of yolov5n."""
    names = [s for s in students if s != "yolov5n"]
    raw = {"extends": "smoke", "students": {"yolov5n": None, **students}, "models": models, "tune": None,
           "cost": {"train_step_s": {s: 0.1 for s in names}, "track_fps": {s: 40 for s in names}}}
    path = tmp_path / name
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture(scope="module")
def bench(tmp_path_factory):
    root = tmp_path_factory.mktemp("nasbench")
    cand = candidate(1)
    model_file = write_json(root / "cand.json", {"candidate": cand, "IDF1": 0.3, "MOTA": 0.2})
    preset = preset_file(root, {"tiny": ["none", "all"]}, {"tiny": str(model_file)})
    out = root / "out"
    assert bench_main(["--preset", str(preset), "--out", str(out)]) == 0
    return root, preset, out, cand


def test_a_candidate_student_trains_and_evaluates_end_to_end(bench):
    root, preset, out, cand = bench
    report = json.loads((out / "kd_bench.json").read_text())
    assert set(report["configurations"]) == {"teacher", "tiny/none", "tiny/all"}
    written = yaml.safe_load((out / "configs" / "models" / "tiny.yaml").read_text())
    assert written["candidate"] == cand
    cost = model_card(build_candidate(cand), (128, 96))
    for conf in ("none", "all"):
        run = out / "runs" / "tiny" / conf / "seed0"
        job = json.loads((run / "train" / "job.json").read_text())
        assert Path(job["arch"]) == out / "configs" / "models" / "tiny.yaml"
        assert job["settings"]["id_dim"] == cand["id_dim"] != load_preset("smoke").hyp["id_dim"]
        model = load_checkpoint(run / "train" / "weights" / "best.pt")
        assert model.arch["cfg"]["candidate"] == cand and model.id_dim == cand["id_dim"]
        record = json.loads((run / "eval.json").read_text())
        assert record["arch"] == "tiny" and record["GFLOPs"] == pytest.approx(cost["gflops"])
        assert record["params_M"] == pytest.approx(cost["params"] / 1e6)
        assert json.loads((run / "spec.json").read_text())["model"] == {"cfg": written, "id_dim": cand["id_dim"]}
    assert json.loads((out / "speed.json").read_text())["tiny"]["fps"] > 0
    assert "| student tiny | no KD | 1 |" in (out / "kd_bench.md").read_text()


def test_an_edited_candidate_file_makes_its_cached_runs_stale(bench, tmp_path, capsys):
    root, preset, out, cand = bench
    kept = (out / "runs" / "tiny" / "all" / "seed0" / "eval.json").stat().st_mtime_ns
    assert bench_main(["--preset", str(preset), "--out", str(out)]) == 0  # cached: nothing re-run
    assert (out / "runs" / "tiny" / "all" / "seed0" / "eval.json").stat().st_mtime_ns == kept
    other = candidate(2)
    assert other != cand
    edited = preset_file(tmp_path, {"tiny": ["none", "all"]}, {"tiny": str(write_json(tmp_path / "c.json", other))})
    assert bench_main(["--preset", str(edited), "--out", str(out), "--plan"]) == 0
    assert bench_main(["--preset", str(edited), "--out", str(out)]) == 2
    assert "this cached run was made with other settings" in capsys.readouterr().err.strip().splitlines()[-1]
    assert yaml.safe_load((out / "configs" / "models" / "tiny.yaml").read_text())["candidate"] == cand  # left as is


def test_fingerprint_pins_the_models_content_not_its_path(tmp_path):
    cand = candidate(3)
    a = write_json(tmp_path / "a.json", {"candidate": cand})
    b = write_candidate_yaml(cand, tmp_path / "elsewhere" / "b.yaml")  # same rows, other path and format

    def prints(path: Path) -> list[dict]:
        p = load_preset(preset_file(tmp_path, {"tiny": ["all"]}, {"tiny": str(path)}))
        return [fingerprint(p, spec) for spec in plan_runs(p, tmp_path / "out", None)]

    first = prints(a)
    assert first == prints(b)
    assert first[1]["model"]["id_dim"] == cand["id_dim"] and "path" not in first[1]["model"]
    assert first[0] == prints(write_json(a, {"candidate": candidate(4)}))[0]  # the teacher's run is unaffected
    assert first[1] != prints(a)[1]


@pytest.mark.parametrize("students, models, message", [
    ({"tiny": ["all"]}, {"tinny": "C"}, "models.tinny: not one of the preset's students (tiny)"),
    ({"tiny": ["all"]}, {"tiny": "missing.json"}, "models.tiny: missing.json: no such file (candidates:"),
    ({"tiny": ["all"]}, {"tiny": "D"}, "models.tiny: DATA: not a model YAML (model"),
    ({"tiny": ["all"]}, {"tiny": "J"}, "models.tiny: BAD: missing key 'stages'"),
    ({"tiny": ["all"]}, {"tiny": "T"}, "models.tiny: TXT: expected a NAS candidate (.json) or a model YAML"),
    ({"tiny": ["all"]}, {"tiny": 3}, "models.tiny: expected a file path"),
    ({"yolov5s": ["none", "all"]}, {"yolov5s": "C"}, "models.yolov5s: yolov5s is a shipped model"),
    ({"tiny": ["all"]}, {}, "students.tiny: model 'tiny': not a model YAML file nor a shipped model"),
    ({"tiny": ["all"], "yolov5s": ["all"]}, {"tiny": "C"}, "students.yolov5s: expected a list holding 'none'"),
    ({"tiny": ["none", "mutual"], "yolov5s": ["none", "mutual"]}, {"tiny": "C"}, "cannot join 'mutual'"),
    ({"tiny": []}, {"tiny": "C"}, "students.tiny: expected a list of configurations"),
])
def test_bad_models_entries_are_one_line_errors_naming_the_key(tmp_path, students, models, message):
    files = {"C": write_json(tmp_path / "cand.json", candidate(0)), "D": tmp_path / "data.yaml",
             "J": write_json(tmp_path / "bad.json", {"base": "yolov5", "rows": [2]}), "T": tmp_path / "notes.txt"}
    files["D"].write_text("root: somewhere\ntrain: {split: full}\n")
    files["T"].write_text("hello\n")
    models = {k: str(files[v]) if isinstance(v, str) and v in files else v for k, v in models.items()}
    message = message.replace("DATA", str(files["D"])).replace("BAD", str(files["J"])).replace("TXT", str(files["T"]))
    with pytest.raises(InputError) as info:
        load_preset(preset_file(tmp_path, students, models))
    assert message in str(info.value) and "\n" not in str(info.value)


def test_a_candidate_yaml_whose_rows_were_edited_is_refused(tmp_path):
    path = write_candidate_yaml(candidate(5), tmp_path / "c.yaml")
    cfg = yaml.safe_load(path.read_text())
    assert read_model_file(path, "models.x")["cfg"] == cfg
    cfg["neck"][0][3][0] += 8
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match="its rows differ from its candidate's"):
        read_model_file(path, "models.x")


def search_dir(tmp_path: Path, scores: list[tuple[float, float]]) -> tuple[Path, list[dict]]:
    records = [{"generation": 0, "origin": "random", "candidate": candidate(10 + i), "params": 1000 + i,
                "gflops": 0.05 + i / 100, "IDF1": idf1, "MOTA": mota} for i, (idf1, mota) in enumerate(scores)]
    path = tmp_path / "search" / "search.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    return path.parent, records


def bench_run(out: Path, name: str, cand: dict | None, seed: int, idf1: float, mota: float, conf: str = "all"):
    run = out / "runs" / name / conf / f"seed{seed}"
    spec = {"name": f"{name}/{conf}/seed{seed}", **({"model": {"cfg": {"candidate": cand}, "id_dim": 1}} if cand
                                                    else {})}
    write_json(run / "spec.json", spec)
    write_json(run / "eval.json", {"arch": name, "configuration": conf, "seed": seed, "IDF1": idf1, "MOTA": mota})


def test_correlate_gives_spearman_and_kendall_of_inherited_vs_retrained_means(tmp_path):
    search, records = search_dir(tmp_path, [(0.1, 0.5), (0.2, 0.4), (0.3, 0.3), (0.4, 0.2), (0.5, 0.1), (0.6, 0.0)])
    out = tmp_path / "bench"
    retrained = [0.50, 0.58, 0.54, 0.62, 0.70]  # IDF1 ranks 1, 3, 2, 4, 5: one swapped pair
    for i, value in enumerate(retrained):  # two seeds each, their mean is `value`
        for seed, delta in ((0, -0.01), (1, 0.01)):
            bench_run(out, f"c{i}", records[i]["candidate"], seed, value + delta, 0.3 + i / 10 + delta)
    bench_run(out, "yolov5n", None, 0, 0.9, 0.9)  # no candidate: not part of the correlation
    bench_run(out, "c0", records[0]["candidate"], 0, 0.1, 0.1, conf="none")  # another configuration: ignored
    result = correlate(search, out)
    assert result["n"] == 5 and [r["name"] for r in result["candidates"]] == ["c0", "c1", "c2", "c3", "c4"]
    assert result["candidates"][1]["retrained"]["IDF1"] == pytest.approx(0.58)
    assert result["candidates"][1]["seeds"] == [0, 1] and result["candidates"][1]["inherited"]["IDF1"] == 0.2
    idf1, mota = result["correlation"]["IDF1"], result["correlation"]["MOTA"]
    assert idf1["spearman"] == pytest.approx(1 - 6 * 2 / (5 * 24)) and idf1["kendall"] == pytest.approx(0.8)
    assert mota["spearman"] == pytest.approx(-1.0) and mota["kendall"] == pytest.approx(-1.0)  # inherited MOTA falls
    assert 0 < idf1["spearman_p"] < 0.1
    assert correlate(search, out, names=["c0", "c1", "c2"])["n"] == 3
    assert nas(["correlate", "--search", str(search), "--bench", str(out)]) == 0
    written = json.loads((out / "nas_correlation.json").read_text())
    assert written["correlation"]["IDF1"]["kendall"] == pytest.approx(0.8)
    assert "| IDF1 | 0.90 |" in (out / "nas_correlation.md").read_text()


def test_correlate_errors(tmp_path, capsys):
    search, records = search_dir(tmp_path, [(0.1, 0.1), (0.2, 0.2), (0.3, 0.3)])
    out = tmp_path / "bench"
    for i in range(2):
        bench_run(out, f"c{i}", records[i]["candidate"], 0, 0.5, 0.5)
    with pytest.raises(InputError, match=r"2 candidate\(s\) with finished all runs \(c0, c1\); a rank correlation "
                                         "needs at least 3"):
        correlate(search, out)
    with pytest.raises(InputError, match="--names yolov5n: no finished all runs of a NAS candidate"):
        correlate(search, out, names=["c0", "c1", "yolov5n"])
    bench_run(out, "c0_again", records[0]["candidate"], 0, 0.6, 0.6)  # c0's candidate under another name
    with pytest.raises(InputError, match="c0 and c0_again trained the same candidate; leave one out with --names"):
        correlate(search, out)
    shutil.rmtree(out / "runs" / "c0_again")
    bench_run(out, "stranger", candidate(99), 0, 0.5, 0.5)
    with pytest.raises(InputError, match="the candidate of stranger is not in"):
        correlate(search, out)
    bench_run(out, "broken", None, 0, 0.5, 0.5)
    (out / "runs" / "broken" / "all" / "seed0" / "spec.json").write_text("{")  # cut short
    with pytest.raises(InputError, match="broken/all/seed0/spec.json: unreadable run file"):
        correlate(search, out)
    (search / "search.jsonl").write_text((search / "search.jsonl").read_text() + "{oops\n")
    assert nas(["correlate", "--search", str(search), "--bench", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("search.jsonl:4: not a search record (candidate, IDF1, MOTA)") and "\n" not in err


def test_pick_spreads_candidates_over_the_inherited_range(tmp_path, capsys):
    search, records = search_dir(tmp_path, [(0.5, 0), (0.1, 0), (0.95, 0), (0.2, 0), (0.52, 0), (0.9, 0)])
    assert [r["IDF1"] for r in pick(read_search(search), 3)] == [0.1, 0.52, 0.95]  # targets 0.1, 0.525, 0.95
    best = write_json(tmp_path / "best.json", records[2])
    assert nas(["pick", "--search", str(search), "--n", "3", "--exclude", str(best), "--out", str(tmp_path / "p")]) == 0
    picked = [json.loads((tmp_path / "p" / f"pick_{i}.json").read_text()) for i in (1, 2, 3)]
    assert [p["IDF1"] for p in picked] == [0.1, 0.5, 0.9] and picked[0] == records[1]  # targets 0.1, 0.5, 0.9
    assert read_model_file(tmp_path / "p" / "pick_2.json", "models.x")["id_dim"] == records[0]["candidate"]["id_dim"]
    assert "pick_3.json: IDF1 90.0" in capsys.readouterr().out
    with pytest.raises(InputError, match="holds picked candidates already"):
        write_picks(picked, tmp_path / "p")
    with pytest.raises(InputError, match=r"--n: expected 2..6"):
        pick(records, 7)
    assert nas(["pick", "--search", str(search), "--n", "2", "--metric", "HOTA", "--out", str(tmp_path / "q")]) == 2
    assert "--metric: expected one of IDF1, MOTA, got 'HOTA'" in capsys.readouterr().err
    stranger = write_json(tmp_path / "other" / "best.json", {"candidate": candidate(99), "IDF1": 0.9})
    assert nas(["pick", "--search", str(search), "--n", "3", "--exclude", str(stranger), "--out",
                str(tmp_path / "r")]) == 2  # excluding nothing: the search's best would be picked again
    assert capsys.readouterr().err.strip() == (f"error: --exclude {stranger}: its candidate is not in the search's "
                                               "records (from another search?)")
    assert not (tmp_path / "r").exists()


def test_search_band_keeps_every_candidate_between_min_and_budget(tmp_path):
    from mot_kd.nas.cost import candidate_cost

    costs = sorted(candidate_cost(SMOKE.sample(random.Random(s)), SMOKE.imgsz)["gflops"] for s in range(12))
    low, high = costs[3], costs[9]
    records = evolve(SMOKE, lambda c: {"IDF1": 0.5, "MOTA": 0.5}, high, EvolutionSettings(population=3, generations=2,
                     parents=2, seed=1), tmp_path / "s.jsonl", min_gflops=low)
    assert len(records) == 6 and all(low <= r["gflops"] <= high for r in records)
    with pytest.raises(InputError, match="min_gflops: .* is above budget_gflops"):
        evolve(SMOKE, lambda c: {}, low, EvolutionSettings(), tmp_path / "t.jsonl", min_gflops=high)
    narrow = (costs[3] + costs[4]) / 2  # a band of width 0 between two candidates' costs: none fits
    with pytest.raises(InputError, match=r"only 0 new candidates in the band \[min_gflops, budget\] in 20 tries "
                                         r"\(generation 0\); widen the band or widen the space"):
        evolve(SMOKE, lambda c: {}, narrow, EvolutionSettings(max_tries=20), tmp_path / "u.jsonl", min_gflops=narrow)


def test_the_bench_equal_nas_preset_trains_on_cpu_equals_train_set_and_scores_on_its_tune_set(tmp_path, monkeypatch):
    from mot_kd.data.data_config import load_data_config
    from mot_kd.kd.settings import load_kd_config
    from mot_kd.models import build_model
    from mot_kd.nas.steps import load_preset as load_nas_preset

    monkeypatch.chdir(tmp_path)  # the data root is relative to the working folder
    (tmp_path / "runs" / "bench_equal" / "data").mkdir(parents=True)
    nas_preset, bench = load_nas_preset("bench_equal", []), load_preset("cpu_equal")
    data = load_data_config(nas_preset["data"])
    assert data.root == tmp_path / "runs" / "bench_equal" / "data" and data.train.split == data.val.split == "full"
    assert list(data.train.sequences) == bench.sequence_names("train")
    assert list(data.val.sequences) == bench.sequence_names("tune")  # the search's score: never the val set
    assert nas_preset["imgsz"] == list(bench.imgsz)
    losses, ours = load_kd_config(nas_preset.get("kd"))["losses"], bench.kd["losses"]
    assert all(losses[k]["weight"] == ours[k]["weight"] for k in ("erc", "key_feature", "pred_diff"))
    yolov5n = model_card(build_model("yolov5n", id_dim=bench.hyp["id_dim"]), load_space("space").imgsz)["gflops"]
    search = nas_preset["search"]
    assert search["min_gflops"] == pytest.approx(0.95 * yolov5n, abs=0.01)
    assert search["budget_gflops"] == pytest.approx(1.05 * yolov5n, abs=0.01)


def test_correlation_is_null_not_nan_when_one_side_is_constant(tmp_path):
    from mot_kd.nas.compare import format_correlation

    search, records = search_dir(tmp_path, [(0.1, 0.3), (0.2, 0.3), (0.3, 0.3)])  # inherited MOTA all equal
    for i in range(3):
        bench_run(tmp_path / "bench", f"c{i}", records[i]["candidate"], 0, 0.1 * i, 0.2 * i)
    result = correlate(search, tmp_path / "bench")
    assert result["correlation"]["MOTA"] == {"spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}
    assert result["correlation"]["IDF1"]["spearman"] == pytest.approx(1.0)
    assert "n/a: one side's scores are all equal" in format_correlation(result)


def test_cpu_nas_plans_with_candidate_files_and_reuses_cpu_equal_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # cpu_nas's models: paths are relative to the working folder
    assert bench_main(["--preset", "cpu_nas", "--out", str(tmp_path / "b"), "--plan"]) == 2
    assert capsys.readouterr().err.strip().endswith("models.nas_best: runs/nas/search/best.json: no such file "
                                                    "(candidates: `python -m mot_kd.nas search` writes best.json, "
                                                    "`nas pick` pick_N.json; paths are relative to the working folder)")
    space, rng = load_space("space"), random.Random(0)
    for path in ("search/best.json", *(f"pick/pick_{i}.json" for i in range(1, 5))):
        (tmp_path / "runs" / "nas" / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "runs" / "nas" / path).write_text(json.dumps({"candidate": space.sample(rng), "IDF1": 0.5}))
    assert bench_main(["--preset", "cpu_nas", "--out", str(tmp_path / "b"), "--plan", "--jobs", "2"]) == 0
    text = capsys.readouterr().out
    assert "25 runs" in text and "nas_best/none" in text and "nas_p4/all" in text and "nas_p4/none" not in text
    base, searched = load_preset("cpu_equal"), load_preset("cpu_nas")
    base_runs = {r.name: r for r in plan_runs(base, tmp_path, None)}
    for spec in plan_runs(searched, tmp_path, None):  # the teacher and yolov5n none/all: copies of cpu_equal's runs
        if spec.name in base_runs:
            assert fingerprint(searched, spec) == fingerprint(base, base_runs[spec.name]), spec.name
        else:
            assert spec.arch.startswith("nas_") and fingerprint(searched, spec)["model"]["cfg"]["candidate"]



def test_speed_of_a_models_student_is_timed_again_when_its_rows_change(tmp_path, monkeypatch):
    import mot_kd.bench.speed as speed

    timed = []

    def track(model, *args):  # a stand-in timing: 51, 52, .. FPS, one per call
        timed.append(model)
        return None, None, {"fps": 50.0 + len(timed), "frames": 10}

    monkeypatch.setattr(speed, "load_checkpoint", lambda path, device: path)
    monkeypatch.setattr(speed, "track_and_evaluate", track)
    records = [{"role": "student", "arch": "tiny", "configuration": "all", "seed": 0, "name": "tiny/all/seed0",
                "weights": "runs/tiny/all/seed0/train/weights/best.pt"}]

    def table(cand: dict) -> dict:
        p = load_preset(preset_file(tmp_path, {"tiny": ["all"]}, {"tiny": str(write_json(tmp_path / "c.json", cand))}))
        return speed.time_architectures(p, tmp_path / "out", records, "cpu", None)

    assert table(candidate(6))["tiny"]["fps"] == 51.0 and len(timed) == 1
    assert table(candidate(6))["tiny"]["fps"] == 51.0 and len(timed) == 1  # same rows: the row is kept
    assert table(candidate(7))["tiny"]["fps"] == 52.0 and len(timed) == 2  # retrained as another architecture
    assert json.loads((tmp_path / "out" / "speed.json").read_text())["tiny"]["model"]["cfg"]["candidate"] == \
        candidate(7)
