"""The Ray launcher against a local Ray instance the test starts (2 CPUs): tasks with their CPU request, one-line
failures, and the smoke bench dispatched to Ray giving the same runs as ``--jobs 1``. Skipped without the ray
extra (pip install 'mot-kd[ray]'); the default test install leaves it out (ray is ~240 MB)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="the ray extra is not installed (pip install 'mot-kd[ray]')")

from launch_tasks import bad_input, die, square  # noqa: E402
from mot_kd.bench import main as bench_main  # noqa: E402
from mot_kd.errors import InputError  # noqa: E402
from mot_kd.launch import RayLauncher, Task  # noqa: E402

METRICS = ("IDF1", "MOTA", "MT", "HOTA", "IDSW")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray instance with 2 CPUs; its workers import this folder's task module."""
    tests = str(Path(__file__).parent)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False,
             runtime_env={"env_vars": {"PYTHONPATH": tests, "OPENBLAS_NUM_THREADS": "1", "YOLO_OFFLINE": "1"}})
    yield
    ray.shutdown()


def test_ray_tasks_run_with_their_request_and_fail_in_one_line(local_ray, tmp_path):
    results = {}
    tasks = [Task(f"run{i}", square, (i,), tmp_path / f"run{i}.log", cpus=1) for i in range(3)]
    RayLauncher().run(tasks, lambda task, result: results.__setitem__(task.name, result))
    assert results == {"run0": 0, "run1": 1, "run2": 4}
    with pytest.raises(InputError) as info:
        RayLauncher().run([Task("yolov5n/all/seed0", bad_input, ("data.yaml",), tmp_path / "b.log")], lambda *_: None)
    assert str(info.value) == f"yolov5n/all/seed0: data.yaml: no such file (log: {tmp_path / 'b.log'})"
    with pytest.raises(InputError, match=r"^big: asks for 3 CPU.* but no Ray node has that many \(largest: 2 CPUs, 0 "):
        RayLauncher().run([Task("big", square, (1,), tmp_path / "big.log", cpus=3)], lambda *_: None)


def test_a_crashed_worker_is_one_line_naming_the_run_and_cancels_the_rest(local_ray, tmp_path):
    mark = tmp_path / "late.txt"
    tasks = [Task("yolov5n/all/seed0", die, (), tmp_path / "d.log", cpus=2),
             Task("late", square, (1, str(mark)), tmp_path / "late.log", cpus=2)]  # waits: 2 CPUs in all
    with pytest.raises(RuntimeError, match=r"^run yolov5n/all/seed0 failed \(WorkerCrashedError: ") as info:
        RayLauncher().run(tasks, lambda *_: None)
    assert str(info.value).endswith(f"see {tmp_path / 'd.log'}")
    assert not mark.exists()


def test_a_malformed_address_is_one_line(monkeypatch):
    monkeypatch.setattr(ray, "is_initialized", lambda: False)  # as in a fresh process
    with pytest.raises(InputError, match="^--address nonsense: cannot connect to a Ray cluster") as info:
        RayLauncher("nonsense").connect()
    assert "\n" not in str(info.value)


def _runs(out: Path) -> dict:
    """Per student run: the trainer's logged losses per epoch and the evaluated metrics (no timings)."""
    found = {}
    for run in sorted((out / "runs" / "yolov5n").glob("*/seed*")):
        rows = (run / "train" / "results.csv").read_text().splitlines()
        header = rows[0].split(",")
        losses = [{k: v for k, v in zip(header, row.split(",")) if k.startswith("train/")} for row in rows[1:]]
        record = json.loads((run / "eval.json").read_text())
        found[str(run.relative_to(out))] = (losses, {m: record[m] for m in METRICS})
    return found


def test_smoke_bench_on_ray_gives_the_runs_of_one_job(local_ray, tmp_path):
    local = tmp_path / "local"
    assert bench_main(["--preset", "smoke", "--out", str(local), "--jobs", "1"]) == 0
    distributed = tmp_path / "ray"
    shutil.copytree(local, distributed)
    shutil.rmtree(distributed / "runs" / "yolov5n")  # the teacher stays cached: only the students go to Ray
    assert bench_main(["--preset", "smoke", "--out", str(distributed), "--launcher", "ray"]) == 0
    assert _runs(distributed) == _runs(local) and len(_runs(local)) == 2  # same threads (1): bit-identical
    assert json.loads((distributed / "kd_bench.json").read_text())["runs_done"] == 3
    assert "bench: yolov5n/" in (distributed / "runs" / "yolov5n" / "all" / "seed0" / "bench.log").read_text()
