"""Sequences in a process pool: the same numbers as in-process, bit for bit, in sequence order; and the lean
loading of scipy's solver (the function TrackEval uses, without ``import scipy.optimize``)."""
import importlib.machinery
import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment as scipy_lsa

from eval import SequenceData, evaluate, assignment
from eval.loading import evaluate_folder
from eval.mot17 import main
from eval.pool import POOL_MIN_ROWS, choose_workers, idle_cpus, run_ordered
from eval.synthetic import make_benchmark
from mot_kd.errors import InputError, cli_entry


def assert_identical(a, b):
    """Every field of two results equal, exactly (same type, same bits; NaN equal to NaN)."""
    assert list(a.sequences) == list(b.sequences) and list(a.raw) == list(b.raw)
    assert a.sequences == b.sequences and a.combined == b.combined
    for seq in a.raw:
        for metric, fields in a.raw[seq].items():
            assert fields.keys() == b.raw[seq][metric].keys()
            for name, value in fields.items():
                other = b.raw[seq][metric][name]
                assert type(value) is type(other), (seq, metric, name)
                assert np.array_equal(value, other, equal_nan=True), (seq, metric, name)


@pytest.mark.parametrize("benchmark", ["MOT17", "MOT20", "MOT15"])
def test_pool_equals_serial_field_by_field(benchmark):
    seqs = make_benchmark(0, num_sequences=4, num_frames=40, num_tracks=60, mot15=benchmark == "MOT15")
    seqs.append(SequenceData("NOTRK", seqs[0].gt, np.zeros((0, 10)), 40))  # TrackEval's early-return path
    serial, pooled = evaluate(seqs, benchmark, workers=1), evaluate(seqs, benchmark, workers=3)
    assert_identical(serial, pooled)
    assert list(pooled.sequences) == [s.name for s in seqs] and pooled.combined["TP"] > 0


def test_pool_raises_the_first_bad_sequence_in_order():
    seqs = make_benchmark(1, num_sequences=4, num_frames=20, num_tracks=10)
    bad = seqs[1].tracker.copy()
    bad[:, 7] = 3  # not a pedestrian
    short = SequenceData(seqs[3].name, seqs[3].gt, seqs[3].tracker, 0)  # no frames
    seqs = [seqs[0], SequenceData(seqs[1].name, seqs[1].gt, bad, 20), seqs[2], short]
    for workers in (1, 2):
        with pytest.raises(InputError, match=f"^{seqs[1].name} tracker: tracker rows must be pedestrians"):
            evaluate(seqs, workers=workers)


def test_choose_workers(monkeypatch):
    monkeypatch.setattr("eval.pool.available_cpus", lambda: 4)
    monkeypatch.setattr("os.getloadavg", lambda: (3.2, 0.0, 0.0))
    assert idle_cpus() == 1 and choose_workers([POOL_MIN_ROWS] * 7) == 1  # other jobs hold the CPUs
    monkeypatch.setattr("os.getloadavg", lambda: (0.1, 0.0, 0.0))
    assert idle_cpus() == 4
    big = [POOL_MIN_ROWS] * 7
    assert choose_workers(big) == 4 and choose_workers(big[:3]) == 3  # one per CPU, at most one per sequence
    assert choose_workers(big[:1]) == 1 and choose_workers([POOL_MIN_ROWS // 8] * 7) == 1  # where it pays only
    assert choose_workers(big, requested=2) == 2 and choose_workers(big[:2], requested=16) == 2
    assert choose_workers([], requested=3) == 1
    with pytest.raises(InputError, match=r"^workers=0: must be at least 1"):
        choose_workers(big, requested=0)


def test_run_ordered_keeps_job_order_with_biggest_first():
    jobs = [(i,) for i in range(6)]
    assert run_ordered(str, jobs, sizes=[1, 9, 2, 8, 3, 7], workers=3) == ["0", "1", "2", "3", "4", "5"]


def test_folder_and_cli_workers_same_results_and_bad_count(tmp_path, capsys):
    from mot_kd.data.mot_files import write_seqinfo
    from tests.test_eval_cli import write_rows

    root, res = tmp_path / "MOT17" / "train", tmp_path / "res"
    for i, seq in enumerate(make_benchmark(2, num_sequences=3, num_frames=30, num_tracks=20)):
        name = f"MOT17-0{i + 2}-FRCNN"
        write_rows(root / name / "gt" / "gt.txt", seq.gt)
        write_seqinfo(root / name, name, 30, 30, 1920, 1080)
        write_rows(res / f"{name}.txt", seq.tracker)
    (res / "MOT17-03-FRCNN.txt").unlink()  # counted as empty with --missing empty
    a, pa = evaluate_folder(tmp_path / "MOT17", res, missing="empty", workers=1)
    b, pb = evaluate_folder(tmp_path / "MOT17", res, missing="empty", workers=3)
    assert_identical(a, b)
    assert pa.numbering == pb.numbering == {"MOT17-02-FRCNN": "original", "MOT17-03-FRCNN": "missing",
                                            "MOT17-04-FRCNN": "original"}
    run = cli_entry(main)
    tables = []
    for workers in ("1", "3"):
        argv = ["--data-root", str(tmp_path / "MOT17"), "--results", str(res), "--missing", "empty"]
        assert run(argv + ["--workers", workers]) == 0
        tables.append(capsys.readouterr().out)
    assert tables[0] == tables[1] and "MOT17-04-FRCNN" in tables[0]
    assert run(["--data-root", str(tmp_path / "MOT17"), "--results", str(res), "--workers", "0"]) == 2
    assert capsys.readouterr().err == "error: --workers 0: must be at least 1 (1 evaluates in this process)\n"


LEAN_SOLVER_SCRIPT = """
import sys
import numpy as np
from eval import assignment, evaluate
from eval.synthetic import make_benchmark

seqs = make_benchmark(5, num_sequences=2, num_frames=30, num_tracks=40)
ours = evaluate(seqs, "MOT17", workers=1)
assert "scipy.optimize" not in sys.modules, "the lean solver imported scipy.optimize"
from scipy.optimize import linear_sum_assignment as scipy_lsa
rng = np.random.default_rng(0)
for maximize in (False, True):
    for _ in range(300):  # tie-heavy: small integer scores, rectangular too
        cost = rng.integers(0, 3, size=tuple(rng.integers(1, 6, size=2))).astype(float)
        mine, theirs = assignment.linear_sum_assignment(cost, maximize), scipy_lsa(cost, maximize)
        assert all(np.array_equal(a, b) for a, b in zip(mine, theirs)), (cost, maximize, mine, theirs)
from eval.trackeval_ref import differences, trackeval_on
assert differences(ours, trackeval_on(seqs, "MOT17")) == []
print("ok")
"""


def test_lean_solver_is_scipys():
    """In a fresh interpreter (this file imports scipy.optimize): evaluating never imports scipy.optimize, the
    lean solver gives scipy's optimum on ties, and the numbers are TrackEval's, which runs after."""
    out = subprocess.run([sys.executable, "-c", LEAN_SOLVER_SCRIPT], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=120)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


class _Loader:
    """Stands in for a future scipy's ``_lsap``: ``fail`` raised on load, else a module without the function."""

    def __init__(self, fail: type[Exception] | None):
        self.fail = fail

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        if self.fail:
            raise self.fail("changed extension")


def test_lean_solver_falls_back_to_the_public_import(monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(importlib.machinery, "EXTENSION_SUFFIXES", [".no-such-suffix"])
        assert assignment._load() is scipy_lsa
    for fail in (ImportError, None):  # None: loads, but has no linear_sum_assignment (AttributeError)
        monkeypatch.setattr(importlib.util, "spec_from_file_location",
                            lambda name, path, fail=fail: importlib.machinery.ModuleSpec(name, _Loader(fail)))
        assert assignment._load() is scipy_lsa


def test_library_defaults_to_in_process_and_the_cli_to_the_automatic_pool(tmp_path, monkeypatch, capsys):
    """A library caller may hold torch's threads (fork-unsafe): only the CLI asks for the automatic pool."""
    from mot_kd.data.mot_files import write_seqinfo
    from tests.test_eval_cli import write_rows

    asked = []

    def spy(fn, jobs, sizes, workers=None, progress=False):
        asked.append(workers)
        return run_ordered(fn, jobs, sizes, workers, progress)

    monkeypatch.setattr(sys.modules["eval.evaluate"], "run_ordered", spy)  # the module: eval.evaluate is the function
    monkeypatch.setattr(sys.modules["eval.loading"], "run_ordered", spy)
    seqs = make_benchmark(4, num_sequences=2, num_frames=20, num_tracks=10)
    evaluate(seqs)
    root, res = tmp_path / "MOT17" / "train", tmp_path / "res"
    for i, seq in enumerate(seqs):
        name = f"MOT17-0{i + 2}-FRCNN"
        write_rows(root / name / "gt" / "gt.txt", seq.gt)
        write_seqinfo(root / name, name, 20, 30, 1920, 1080)
        write_rows(res / f"{name}.txt", seq.tracker)
    evaluate_folder(tmp_path / "MOT17", res)
    assert cli_entry(main)(["--data-root", str(tmp_path / "MOT17"), "--results", str(res)]) == 0
    assert asked == [1, 1, None]
