"""make demo's progress: "[k/3] ..." lines whose ETA scales the measured trainings by their relative cost."""
from __future__ import annotations

import pytest
from loguru import logger

from mot_kd import demo
from mot_kd.train.report import write_results_csv


@pytest.mark.parametrize("seconds, text", [(0, "0 s"), (59.4, "59 s"), (60, "1 min 00 s"), (605, "10 min 05 s"),
                                           (3599.6, "1 h 00 min"), (7385, "2 h 03 min"), (-3, "0 s")])
def test_format_duration(seconds, text):
    assert demo.format_duration(seconds) == text


def test_progress_line_scales_measured_seconds_per_cost_unit():
    assert demo.progress_line(1, 3, "teacher yolov5s, 12 epochs", 50.0, []) == \
        "[1/3] teacher yolov5s, 12 epochs (ETA once a training is timed)"
    # 20 units took 400 s (20 s/unit): 30 units left -> 600 s
    assert demo.progress_line(2, 3, "student", 30.0, [(20.0, 400.0)]) == \
        "[2/3] student (ETA of the trainings left: 10 min 00 s)"
    assert demo.progress_line(3, 3, "KD", 10.0, [(20.0, 400.0), (10.0, 50.0)]) == \
        "[3/3] KD (ETA of the trainings left: 2 min 30 s)"


def test_training_costs_follow_the_bench_step_times():
    teacher, student, kd = demo.training_costs(12, 12)
    assert student < teacher < kd  # yolov5n < yolov5s < yolov5n + a yolov5s forward per step
    assert demo.training_costs(24, 12)[0] == pytest.approx(2 * teacher)


@pytest.fixture
def fake_training(monkeypatch):
    """demo.train replaced by one that takes ``durations[folder]`` seconds of a fake clock; log lines captured."""
    clock, durations, lines = [0.0], {}, []

    def fake_train(out, epochs, extra):
        clock[0] += durations[out.name]
        return out / "weights" / "best.pt"

    monkeypatch.setattr(demo.time, "perf_counter", lambda: clock[0])
    monkeypatch.setattr(demo, "train", fake_train)
    sink = logger.add(lambda message: lines.append(message.record["message"]), format="{message}")
    yield durations, lines
    logger.remove(sink)


def test_train_all_announces_each_training_with_an_eta(tmp_path, fake_training):
    durations, lines = fake_training
    teacher, student, kd = demo.training_costs(12, 12)
    durations.update(teacher=teacher * 20, student=student * 20, kd_student=kd * 20)  # 20 s per unit
    trained = demo.train_all(tmp_path, 12, 12)
    assert lines == ["[1/3] teacher yolov5s, 12 epochs (ETA once a training is timed)",
                     f"[2/3] student yolov5n, 12 epochs (ETA of the trainings left: "
                     f"{demo.format_duration(20 * (student + kd))})",
                     "[3/3] KD student yolov5n, 12 epochs (ETA of the trainings left: "
                     f"{demo.format_duration(20 * kd)})"]
    assert trained["kd_student"] == tmp_path / "kd_student" / "weights" / "best.pt"


def test_reused_and_resumed_trainings_count_only_what_is_left(tmp_path, fake_training):
    durations, lines = fake_training
    write_results_csv(tmp_path / "teacher" / "results.csv", [{"epoch": e} for e in range(12)])  # finished: reused
    write_results_csv(tmp_path / "student" / "results.csv", [{"epoch": e} for e in range(6)])  # half done
    teacher, student, kd = demo.training_costs(12, 12)
    durations.update(teacher=0.5, student=student / 2 * 10, kd_student=kd * 10)  # 10 s per unit
    demo.train_all(tmp_path, 12, 12)
    assert lines[1] == "[2/3] student yolov5n, 12 epochs (ETA once a training is timed)"  # a reuse measures nothing
    assert lines[2] == ("[3/3] KD student yolov5n, 12 epochs (ETA of the trainings left: "
                        f"{demo.format_duration(10 * kd)})")
