"""CLI and folder loading: tables, JSON/CSV, val_half numbering, bad input (exit code 2, no traceback)."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from eval.loading import evaluate_folder
from eval.mot17 import main
from eval.synthetic import make_benchmark
from mot_kd.data.mot_files import write_seqinfo
from mot_kd.errors import InputError, cli_entry

run = cli_entry(main)


def write_rows(path: Path, rows: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(",".join([f"{int(r[0])}", f"{int(r[1])}"] + [f"{v:g}" for v in r[2:]]) + "\n"
                            for r in rows))


@pytest.fixture
def dataset(tmp_path):
    """Two MOT17-style sequences (FRCNN and a DPM copy of the first) plus result files."""
    seqs = make_benchmark(7, num_sequences=2, num_frames=30, num_tracks=20)
    root, res = tmp_path / "MOT17" / "train", tmp_path / "res"
    for seq, name in [(seqs[0], "MOT17-02-FRCNN"), (seqs[0], "MOT17-02-DPM"), (seqs[1], "MOT17-04-FRCNN")]:
        write_rows(root / name / "gt" / "gt.txt", seq.gt)
        write_seqinfo(root / name, name, 30, 30, 1920, 1080)
        write_rows(res / f"{name}.txt", seq.tracker)
    return tmp_path / "MOT17", res, seqs


def test_cli_table_json_csv(dataset, tmp_path, capsys):
    root, res, _ = dataset
    out_json, out_csv = tmp_path / "out" / "m.json", tmp_path / "out" / "m.csv"
    assert run(["--data-root", str(root), "--results", str(res), "--json", str(out_json), "--csv", str(out_csv)]) == 0
    table = capsys.readouterr().out
    assert "MOT17-02-FRCNN" in table and "MOT17-04-FRCNN" in table and "COMBINED" in table
    assert "DPM" not in table  # default --detector FRCNN
    data = json.loads(out_json.read_text())
    assert set(data) == {"combined", "sequences", "protocol"}
    assert set(data["sequences"]) == {"MOT17-02-FRCNN", "MOT17-04-FRCNN"}
    c = data["combined"]
    for key in ("HOTA", "DetA", "AssA", "LocA", "MOTA", "MOTP", "IDF1", "IDP", "IDR", "recall", "precision"):
        assert isinstance(c[key], float) and 0 <= c[key] <= 1 or key == "MOTA"
    for key in ("MT", "PT", "ML", "FP", "FN", "IDSW", "Frag"):
        assert isinstance(c[key], int)
    assert data["protocol"]["benchmark"] == "MOT17"
    assert out_csv.read_text().splitlines()[-1].startswith("COMBINED,")
    assert not list(out_json.parent.glob(".*tmp"))  # atomic writes leave no temp files


def test_val_half_accepts_both_numberings(dataset, tmp_path):
    root, res, seqs = dataset
    with pytest.raises(ValueError, match="fit neither"):  # full-length results are not val_half results
        evaluate_folder(root, res, split="val_half")
    renum = tmp_path / "renum"
    first = 30 // 2 + 2
    for name, seq in [("MOT17-02-FRCNN", seqs[0]), ("MOT17-04-FRCNN", seqs[1])]:
        rows = seq.tracker[seq.tracker[:, 0] >= first].copy()
        write_rows(res.parent / "orig" / f"{name}.txt", rows)
        rows[:, 0] -= first - 1
        write_rows(renum / f"{name}.txt", rows)
    a, pa = evaluate_folder(root, res.parent / "orig", split="val_half")
    b, pb = evaluate_folder(root, renum, split="val_half")
    assert set(pa.numbering.values()) == {"original"} and set(pb.numbering.values()) == {"renumbered"}
    assert a.combined == b.combined
    full, _ = evaluate_folder(root, res.parent / "orig", split="full")
    assert a.combined["GT_Dets"] < full.combined["GT_Dets"]


def last_error_line(capsys) -> str:
    err = capsys.readouterr().err.split("\r")[-1]  # after any progress bar
    assert err.startswith("error: ") and "Traceback" not in err and err.count("\n") == 1
    return err.strip()


def test_missing_result_is_an_error_unless_counted_as_empty(dataset, tmp_path, capsys):
    root, res, _ = dataset
    (res / "MOT17-04-FRCNN.txt").unlink()
    assert run(["--data-root", str(root), "--results", str(res)]) == 2
    assert last_error_line(capsys) == (f"error: {res}: no result file for 1 of 2 sequences: MOT17-04-FRCNN.txt "
                                       "(--missing empty counts missing sequences as empty)")
    out_json = tmp_path / "m.json"
    assert run(["--data-root", str(root), "--results", str(res), "--missing", "empty", "--json", str(out_json)]) == 0
    data = json.loads(out_json.read_text())
    assert data["protocol"]["result_numbering"] == {"MOT17-02-FRCNN": "original", "MOT17-04-FRCNN": "missing"}
    seq = data["sequences"]["MOT17-04-FRCNN"]
    assert seq["TP"] == seq["FP"] == seq["Dets"] == 0 and seq["FN"] == seq["GT_Dets"] > 0 and seq["HOTA"] == 0
    result, protocol = evaluate_folder(root, res, missing="empty")
    assert result.sequences == data["sequences"] and protocol.numbering["MOT17-04-FRCNN"] == "missing"
    with pytest.raises(ValueError, match="missing='zero': choose one of error, empty"):
        evaluate_folder(root, res, missing="zero")


def test_empty_results_folder_is_an_error_unless_counted_as_empty(dataset, tmp_path, capsys):
    root, _, _ = dataset
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.md").write_text("not a result file")
    assert run(["--data-root", str(root), "--results", str(empty)]) == 2
    assert last_error_line(capsys) == (f"error: {empty}: no result files (*.txt) in the results folder, expected one "
                                       "per sequence like MOT17-02-FRCNN.txt (--missing empty counts missing "
                                       "sequences as empty)")
    result, protocol = evaluate_folder(root, empty, missing="empty")
    assert set(protocol.numbering.values()) == {"missing"}
    c = result.combined
    assert (c["TP"], c["FP"], c["IDTP"], c["MT"], c["HOTA"], c["MOTA"]) == (0, 0, 0, 0, 0.0, 0.0)
    assert c["FN"] == c["GT_Dets"] > 0 and c["ML"] == c["GT_IDs"] > 0


def test_folder_of_other_sequences_results_follows_the_same_rule(dataset, capsys):
    root, res, _ = dataset
    for f in res.glob("*.txt"):
        f.rename(f.with_name("OTHER-" + f.name))
    assert run(["--data-root", str(root), "--results", str(res)]) == 2
    assert last_error_line(capsys) == (f"error: {res}: no result file matches a sequence (expected e.g. "
                                       "MOT17-02-FRCNN.txt, found OTHER-MOT17-02-DPM, OTHER-MOT17-02-FRCNN, "
                                       "OTHER-MOT17-04-FRCNN; --missing empty counts missing sequences as empty)")
    result, protocol = evaluate_folder(root, res, missing="empty")
    assert set(protocol.numbering.values()) == {"missing"} and result.combined["TP"] == 0


def test_seqs_selects_sequences_of_the_data_root(dataset, tmp_path, capsys):
    root, res, _ = dataset
    (root / "train" / "MOT17-02-FRCNN" / "gt" / "gt.txt").write_text("broken\n")  # not selected: never read
    out_json = tmp_path / "m.json"
    assert run(["--data-root", str(root), "--results", str(res), "--seqs", "MOT17-04", "--json", str(out_json)]) == 0
    table = capsys.readouterr().out
    assert "MOT17-04-FRCNN" in table and "MOT17-02" not in table
    data = json.loads(out_json.read_text())
    assert list(data["sequences"]) == ["MOT17-04-FRCNN"]
    assert data["combined"] == data["sequences"]["MOT17-04-FRCNN"]
    result, _ = evaluate_folder(root, res, seqs=["MOT17-04-FRCNN"])
    assert result.combined == data["combined"]
    (res / "MOT17-02-FRCNN.txt").unlink()  # only the selected sequences need result files
    assert run(["--data-root", str(root), "--results", str(res), "--seqs", "MOT17-04-FRCNN"]) == 0


def test_seqs_typo_names_the_near_miss_and_the_available_sequences(dataset, capsys):
    root, res, _ = dataset
    assert run(["--data-root", str(root), "--results", str(res), "--seqs", "MOT17-04-FRCNN", "MOT17-4-FRCNN"]) == 2
    assert last_error_line(capsys) == ("error: unknown sequence 'MOT17-4-FRCNN' (did you mean 'MOT17-04-FRCNN'?); "
                                       "available: MOT17-02-FRCNN, MOT17-04-FRCNN")


@pytest.mark.parametrize("problem, message", [
    ("malformed", "MOT17-02-FRCNN.txt:2"),
    ("duplicate", "appears more than once in frame"),
    ("out_of_range", "outside 1..30"),
    ("empty_gt", "no ground-truth rows"),
    ("unknown", "no result file matches"),
    ("bad_root", "data root is not a folder"),
])
def test_bad_input_exits_2_with_one_line(dataset, problem, message, capsys):
    root, res, _ = dataset
    target = res / "MOT17-02-FRCNN.txt"
    lines = target.read_text().splitlines()
    if problem == "malformed":
        target.write_text("\n".join([lines[0], "1,2,x,4,5,6,1,-1,-1,-1"] + lines[1:]) + "\n")
    elif problem == "duplicate":
        target.write_text("\n".join(lines + [lines[0]]) + "\n")
    elif problem == "out_of_range":
        target.write_text("\n".join(lines + ["31,999,1,1,10,10,1,-1,-1,-1"]) + "\n")
    elif problem == "empty_gt":
        (root / "train" / "MOT17-04-FRCNN" / "gt" / "gt.txt").write_text("")
    elif problem == "unknown":
        for f in res.glob("*.txt"):
            f.rename(f.with_name("OTHER-" + f.name))
    argv = ["--data-root", str(root / "nope" if problem == "bad_root" else root), "--results", str(res)]
    assert run(argv) == 2
    err = capsys.readouterr().err.split("\r")[-1]  # after any progress bar
    assert err.startswith("error: ") and message in err and "Traceback" not in err and err.count("\n") == 1


def test_mot15_gt_needs_mot15_benchmark(tmp_path):
    seq = make_benchmark(8, num_sequences=1, num_frames=10, num_tracks=5, mot15=True)[0]
    write_rows(tmp_path / "data" / "S" / "gt" / "gt.txt", seq.gt)
    write_seqinfo(tmp_path / "data" / "S", "S", 10, 30, 1920, 1080)
    write_rows(tmp_path / "res" / "S.txt", seq.tracker)
    argv = ["--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "res")]
    assert run(argv) == 2  # class -1 is not a MOT17 class
    assert run(argv + ["--benchmark", "MOT15"]) == 0


def test_class_id_error_is_one_short_line(tmp_path, capsys):
    """Thousands of distinct bad class ids (e.g. world coordinates in column 8) still give a short message."""
    n = 3000
    gt = np.c_[np.repeat(np.arange(1, 11), n // 10), np.tile(np.arange(1, n // 10 + 1), 10), np.ones((n, 4)) * 10,
               np.ones(n), np.arange(-1500, n - 1500), np.ones(n)]
    write_rows(tmp_path / "data" / "S" / "gt" / "gt.txt", gt)
    write_seqinfo(tmp_path / "data" / "S", "S", 10, 30, 1920, 1080)
    write_rows(tmp_path / "res" / "S.txt", gt[:5, :6])
    assert run(["--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "res")]) == 2
    assert last_error_line(capsys) == (
        f"error: {tmp_path / 'data' / 'S' / 'gt' / 'gt.txt'}: gt class ids -1500, -1499, -1498, ... (2,987 in all) "
        "in 2,987 of 3,000 rows are not MOTChallenge classes 1..13 (MOT15-style gt? use --benchmark MOT15)")


def test_no_tracker_box_overlapping_gt_gives_trackeval_values(tmp_path, capsys):
    """Issue 13's crash: one person in 3 frames, two far-away tracker boxes (TrackEval: HOTA 0, MOTA -0.667)."""
    gt = np.array([[f, 1, 100, 100, 50, 100, 1, 1, 1] for f in (1, 2, 3)])
    write_rows(tmp_path / "data" / "S" / "gt" / "gt.txt", gt)
    write_seqinfo(tmp_path / "data" / "S", "S", 3, 30, 1920, 1080)
    write_rows(tmp_path / "res" / "S.txt", np.array([[1, 5, 1000, 1000, 50, 100, 1, -1, -1, -1],
                                                     [2, 6, 1500, 1000, 50, 100, 1, -1, -1, -1]]))
    out_json = tmp_path / "m.json"
    argv = ["--data-root", str(tmp_path / "data"), "--results", str(tmp_path / "res"), "--json", str(out_json)]
    assert run(argv) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[-1].split() == ["COMBINED", "0.000", "0.000", "0.000", "-66.667", "0.000", "0.000", "0.000", "0", "0",
                                 "1", "2", "3", "0", "0", "0.000"]
    c = json.loads(out_json.read_text())["combined"]
    assert (c["HOTA"], c["FP"], c["FN"], c["ML"], c["TP"], c["IDF1"]) == (0.0, 2, 3, 1, 0, 0.0)
    assert c["MOTA"] == pytest.approx(-2 / 3, abs=1e-15)


def test_start_up_imports_stay_lean(dataset):
    """No evaluation pays for scipy.optimize (~0.3 s; eval.assignment loads only its solver), torch or OpenCV."""
    root, res, _ = dataset
    code = ("import sys; from eval.mot17 import main; heavy = ('scipy.optimize', 'torch', 'ultralytics', "
            "'cv2'); print(*[m for m in heavy if m in sys.modules]); main(sys.argv[1:]); "
            "print(*[m for m in heavy if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code, "--data-root", str(root), "--results", str(res)],
                          capture_output=True, text=True, cwd=Path(__file__).resolve().parent.parent, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.splitlines()
    assert lines[0] == "" and "COMBINED" in lines[-2] and lines[-1] == ""  # the solver loads without scipy.optimize


def test_missing_gt_file_is_a_one_line_error(dataset, capsys):
    root, res, _ = dataset
    gt = root / "train" / "MOT17-04-FRCNN" / "gt" / "gt.txt"
    gt.unlink()
    assert run(["--data-root", str(root), "--results", str(res)]) == 2
    assert last_error_line(capsys) == f"error: {gt}: file not found"
    with pytest.raises(InputError, match="file not found"):
        evaluate_folder(root, res)


def test_workers_is_checked_before_the_branch_and_refused_with_weights(dataset, tmp_path, capsys):
    root, res, _ = dataset
    weights = tmp_path / "never-read.pt"  # refused before any model is loaded
    assert run(["--data-root", str(root), "--weights", str(weights), "--workers", "0"]) == 2
    assert last_error_line(capsys) == "error: --workers 0: must be at least 1 (1 evaluates in this process)"
    assert run(["--data-root", str(root), "--weights", str(weights), "--workers", "2"]) == 2
    assert last_error_line(capsys) == ("error: --workers applies to evaluating a --results folder only: with "
                                       "--weights the sequences are scored in this process, which holds torch "
                                       "(drop --workers)")
    assert run(["--data-root", str(root), "--workers", "0"]) == 2  # checked even without --results
    assert last_error_line(capsys).startswith("error: --workers 0: must be at least 1")
