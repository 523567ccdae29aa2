"""Launchers (mot_kd.launch): the local one runs tasks in worker processes and stops at the first failure with a
one-line message; the bench CLI's launcher flags are checked. The Ray launcher: tests/test_launch_ray.py."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

from launch_tasks import bad_input, crash, square
from mot_kd.bench import main as bench_main
from mot_kd.errors import InputError
from mot_kd.launch import LocalLauncher, RayLauncher, Task, make_launcher


def tasks(tmp_path: Path, fn=square, n: int = 3) -> list[Task]:
    return [Task(f"run{i}", fn, (i, str(tmp_path / f"ran{i}")), tmp_path / f"run{i}.log") for i in range(n)]


def test_local_launcher_runs_every_task_and_reports_each_result(tmp_path):
    results = {}
    LocalLauncher(jobs=2).run(tasks(tmp_path), lambda task, result: results.__setitem__(task.name, result))
    assert results == {"run0": 0, "run1": 1, "run2": 4}
    assert sorted(p.name for p in tmp_path.glob("ran*")) == ["ran0", "ran1", "ran2"]


def test_local_launcher_failure_is_one_line_naming_the_run_and_its_log(tmp_path):
    with pytest.raises(InputError) as info:
        LocalLauncher(jobs=1).run([Task("yolov5n/all/seed0", bad_input, ("data.yaml",), tmp_path / "bench.log")],
                                  lambda *_: None)
    assert str(info.value) == f"yolov5n/all/seed0: data.yaml: no such file (log: {tmp_path / 'bench.log'})"
    with pytest.raises(RuntimeError, match=r"run crash failed \(ZeroDivisionError: boom\); see .*crash.log"):
        LocalLauncher(jobs=1).run([Task("crash", crash, (), tmp_path / "crash.log")], lambda *_: None)


def test_local_launcher_stops_at_the_first_failure(tmp_path):
    done = []
    work = [Task("bad", bad_input, ("x",), tmp_path / "bad.log"), *tasks(tmp_path, n=4)]
    with pytest.raises(InputError, match="^bad: x: no such file"):
        LocalLauncher(jobs=1).run(work, lambda task, _: done.append(task.name))
    assert len(list(tmp_path.glob("ran*"))) < 4  # tasks not started yet were cancelled


def test_make_launcher_and_missing_ray(monkeypatch):
    assert isinstance(make_launcher("local", jobs=3), LocalLauncher) and make_launcher("local", 3).jobs == 3
    assert isinstance(make_launcher("ray", address="auto"), RayLauncher)
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray -> ImportError, as without the extra
    with pytest.raises(InputError, match=r"^--launcher ray: the ray package is not installed; pip install "
                                         r"'mot-kd\[ray\]'"):
        RayLauncher().run([Task("t", square, (1,), Path("t.log"))], lambda *_: None)


@pytest.mark.parametrize("argv, message", [
    (["--address", "auto"], "error: --address/--gpus-per-run are for --launcher ray"),
    (["--launcher", "ray", "--gpus-per-run", "-1"], "error: --gpus-per-run: expected a number >= 0, got -1.0"),
])
def test_bench_launcher_flags_are_checked(tmp_path, capsys, argv, message):
    assert bench_main(["--preset", "smoke", "--out", str(tmp_path), *argv]) == 2
    assert capsys.readouterr().err.strip() == message


def test_unreachable_ray_cluster_is_one_line_before_anything_is_written(tmp_path, capsys, monkeypatch):
    class NoCluster:  # stands in for the ray module: no instance running at the address
        @staticmethod
        def is_initialized():
            return False

        @staticmethod
        def init(**kwargs):
            raise ConnectionError(f"Could not find any running Ray instance at {kwargs['address']}.")

    monkeypatch.setitem(sys.modules, "ray", NoCluster)
    out = tmp_path / "out"
    assert bench_main(["--preset", "smoke", "--out", str(out), "--launcher", "ray", "--address", "auto"]) == 2
    assert capsys.readouterr().err.strip() == ("error: --address auto: cannot connect to a Ray cluster (Could not "
                                               "find any running Ray instance at auto.)")
    assert not out.exists()
