"""Bench plan for the two schemes: the mutual team shares one training run (the first architecture trains and
evaluates all), fused runs carry their fuse points and cost, bad presets are one-line errors."""
from __future__ import annotations

import pytest
import yaml

from mot_kd.bench.presets import load_preset
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
