"""Bench plan for the two schemes: the mutual team shares one training run (the first architecture trains and
evaluates all), fused runs carry their fuse points and cost, bad presets are one-line errors; the team's execution
path with the trainer and the evaluation stood in for (the real smoke_schemes bench takes ~25 min)."""
from __future__ import annotations

import pytest
import yaml

from mot_kd.bench import runner as bench_runner
from mot_kd.bench.presets import METRICS, load_preset
from mot_kd.bench.runner import Runner, plan_runs
from mot_kd.errors import InputError


def test_mutual_team_shares_one_training_run_and_fused_runs_enable_both_points(tmp_path):
    preset = load_preset("smoke_schemes")
    runs = {r.name: r for r in plan_runs(preset, tmp_path, None)}
    leader, follower = runs["yolov5n/mutual/seed0"], runs["yolov5n-ghost/mutual/seed0"]
    assert leader.team == follower.team == ("yolov5n", "yolov5n-ghost")
    assert not leader.follower and follower.follower and not runs["yolov5n/all/seed0"].team
    shared = tmp_path / "runs" / "yolov5n+yolov5n-ghost" / "mutual" / "seed0" / "train"
    assert leader.train_dir == follower.train_dir == shared
    assert follower.weights == shared / "yolov5n-ghost" / "weights" / "best.pt"
    assert follower.folder == tmp_path / "runs" / "yolov5n-ghost" / "mutual" / "seed0"  # its own eval.json
    fused = runs["yolov5n-ghost/fused/seed0"].kd
    assert fused["fused"]["enabled"] and fused["fused"]["points"] == ["backbone", "neck"]
    assert all(fused["losses"][n]["enabled"] for n in ("erc", "key_feature", "pred_diff"))
    assert not runs["yolov5n-ghost/all/seed0"].kd["fused"]["enabled"]
    runner = Runner(preset, tmp_path)
    alone = runner.estimate_s(runs["yolov5n/all/seed0"])
    team = runner.estimate_s(leader)
    evaluation_only = runner.estimate_s(follower)
    assert evaluation_only < alone < team  # the team pays both students' steps and one teacher forward
    assert runner.estimate_s(runs["yolov5n-ghost/fused/seed0"]) > runner.estimate_s(runs["yolov5n-ghost/all/seed0"])


@pytest.mark.parametrize("students, cost, message", [
    ({"yolov5n": ["none", "mutual"]}, {}, "configuration 'mutual' trains the students that list it together"),
    ({"yolov5n": ["none", "fused"]}, {"hybrid_forward_s": None}, "cost.hybrid_forward_s: needed for the fused"),
])
def test_bad_scheme_presets_are_one_line_errors(tmp_path, students, cost, message):
    path = tmp_path / "preset.yaml"
    smoke = yaml.safe_load(open(load_preset("smoke").path))
    raw = {**smoke, "students": students, "tune": None}
    raw["cost"] = {**smoke["cost"], **cost}
    raw["cost"] = {k: v for k, v in raw["cost"].items() if v is not None}
    path.write_text(yaml.safe_dump(raw))
    with pytest.raises(InputError, match=message) as err:
        load_preset(path)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("leader_done", [False, True])
def test_the_team_trains_once_and_every_member_is_evaluated(tmp_path, monkeypatch, leader_done):
    """First architecture pending: one training of both, then both evaluated; the first done but a follower
    pending (interrupted between the two evaluations): only the follower is evaluated, nothing trained."""
    preset = load_preset("smoke_schemes")
    runs = [r for r in plan_runs(preset, tmp_path, None) if r.configuration == "mutual"]
    leader, follower = runs
    trained, evaluated = [], []

    def write_tables():  # what the trainer leaves: one results.csv per student of the team
        for arch in leader.team:
            table = leader.train_dir / arch / "results.csv"
            table.parent.mkdir(parents=True, exist_ok=True)
            table.write_text("epoch,train/box\n0,1.0\n")

    def fake_train(argv):
        trained.append(argv)
        write_tables()

    def fake_evaluate(self, spec):
        evaluated.append(spec.name)
        return {"name": spec.name, "weights": str(spec.weights.relative_to(self.out)), **{m: 0.5 for m in METRICS}}

    monkeypatch.setattr(bench_runner.train_cli, "main", fake_train)
    monkeypatch.setattr(Runner, "evaluate", fake_evaluate)
    runner = Runner(preset, tmp_path)
    runner.teacher_weights.parent.mkdir(parents=True)
    runner.teacher_weights.write_bytes(b"")  # only its existence is checked before a KD training
    if leader_done:
        write_tables()
        runner.run_one(leader)  # the leader's run, then undo its follower's evaluation (as if interrupted there)
        follower.eval_path.unlink()
        evaluated.clear()
    records = runner.execute(runs)
    assert [r["name"] for r in records] == [leader.name, follower.name]
    assert evaluated == ([follower.name] if leader_done else [leader.name, follower.name])
    if leader_done:
        assert trained == []
    else:
        (argv,) = trained  # one training run for the whole team
        assert argv[argv.index("--student") + 1:argv.index("--kd")] == list(leader.team)
        assert argv[argv.index("--out") + 1] == str(leader.train_dir)
