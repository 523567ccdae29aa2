"""CLI and folder loading: tables, JSON/CSV, val_half numbering, bad input (exit code 2, no traceback)."""
import json
from pathlib import Path

import numpy as np
import pytest

from eval.loading import evaluate_folder
from eval.mot17 import main
from eval.synthetic import make_benchmark
from mot_kd.data.mot_files import write_seqinfo
from mot_kd.errors import cli_entry

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


def test_missing_result_counts_as_empty(dataset, capsys):
    root, res, _ = dataset
    (res / "MOT17-04-FRCNN.txt").unlink()
    result, protocol = evaluate_folder(root, res)
    assert protocol.numbering["MOT17-04-FRCNN"] == "missing"
    seq = result.sequences["MOT17-04-FRCNN"]
    assert seq["TP"] == 0 and seq["FN"] == seq["GT_Dets"] > 0


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
