"""Runner, frame sources and renderer on a tiny painted sequence with a colour-blob 'detector'."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from mot_kd.data.mot_files import read_mot_txt, write_seqinfo
from mot_kd.errors import InputError
from trackers import render_tracks, run_sequence
from trackers.bench_speed import main as bench_main
from trackers.frames import open_source
from trackers.visualize import id_color
from trackers.visualize import main as visualize_main

W, H, N = 160, 120, 12
COLORS = [(0, 0, 255), (0, 255, 0)]  # BGR: red walks right, green walks left


def gt_box(target: int, frame: int) -> np.ndarray:
    """xyxy of target 0 (red) / 1 (green) on 1-based ``frame``; 20x40 px, no overlap between them."""
    x = 10 + 10 * (frame - 1) if target == 0 else 130 - 10 * (frame - 1)
    y = 15 if target == 0 else 65
    return np.array([x, y, x + 20, y + 40], dtype=float)


def paint(frame: int) -> np.ndarray:
    image = np.full((H, W, 3), 40, np.uint8)
    for target, color in enumerate(COLORS):
        x1, y1, x2, y2 = gt_box(target, frame).astype(int)
        image[y1:y2, x1:x2] = color
    return image


def detect(image: np.ndarray):
    """Find each colour's blob: box, score 0.9, embedding = that colour's direction (a perfect re-id)."""
    boxes, embs = [], []
    for target, color in enumerate(COLORS):
        ys, xs = np.nonzero((np.abs(image.astype(int) - color) < 60).all(axis=2))
        if len(xs) > 20:
            boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
            embs.append(np.eye(8)[target] + 0.1)
    emb = np.array(embs).reshape(-1, 8)
    return np.array(boxes, float).reshape(-1, 4), np.full(len(boxes), 0.9), emb / np.linalg.norm(emb, axis=1)[:, None]


@pytest.fixture()
def seq_dir(tmp_path):
    folder = tmp_path / "TOY-01"
    (folder / "img1").mkdir(parents=True)
    write_seqinfo(folder, "TOY-01", N, 10, W, H, im_ext=".png")
    for frame in range(1, N + 1):
        cv2.imwrite(str(folder / "img1" / f"{frame:06d}.png"), paint(frame))
    return folder


@pytest.fixture()
def video(tmp_path):
    path = tmp_path / "toy.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10.0, (W, H))
    for frame in range(1, N + 1):
        writer.write(paint(frame))
    writer.release()
    return path


def check_rows(rows: np.ndarray, frames: range) -> None:
    """Two rows per frame, ids fixed per target, boxes on the painted rectangles (Kalman-smoothed)."""
    assert rows[:, 0].astype(int).tolist() == [f for f in frames for _ in range(2)]
    ids = {}
    for frame, track_id, x, y, w, h in rows[:, :6]:
        target = 0 if y < 40 else 1
        assert ids.setdefault(target, track_id) == track_id
        np.testing.assert_allclose([x, y, x + w, y + h], gt_box(target, int(frame)), atol=3.0)
    assert sorted(ids.values()) == [1, 2]
    np.testing.assert_allclose(rows[:, 6], 0.9)


def test_run_sequence_writes_mot_results(seq_dir, tmp_path):
    out = tmp_path / "res" / "TOY-01.txt"
    summary = run_sequence(detect, seq_dir, out)
    check_rows(read_mot_txt(out, 10, 10), range(1, N + 1))
    assert summary["frames"] == N and summary["detections"] == 2 * N and summary["rows"] == 2 * N
    assert summary["tracks"] == 2 and summary["sequence"] == "TOY-01" and summary["video"] is None
    assert summary["detect_s"] > 0 and summary["associate_s"] > 0
    assert summary["fps"] == pytest.approx(N / (summary["detect_s"] + summary["associate_s"]))
    assert out.read_text().splitlines()[0].endswith(",0.9000,-1,-1,-1")


def test_frame_range_keeps_original_frame_numbers(seq_dir, tmp_path):
    out = tmp_path / "half.txt"
    summary = run_sequence(detect, seq_dir, out, tracker_cfg="iou_only", frame_range=(5, 9))
    check_rows(read_mot_txt(out, 10, 10), range(5, 10))
    assert summary["frames"] == 5


def test_video_source_and_its_frame_rate(video, tmp_path):
    assert open_source(video).frame_rate == pytest.approx(10.0)
    out = tmp_path / "toy.txt"
    summary = run_sequence(detect, video, out)
    check_rows(read_mot_txt(out, 10, 10), range(1, N + 1))
    assert summary["sequence"] == "toy"
    run_sequence(detect, video, out, frame_range=(3, 6))
    check_rows(read_mot_txt(out, 10, 10), range(3, 7))
    with pytest.raises(InputError, match=f"video ends at frame {N}, before frame 20"):
        run_sequence(detect, video, tmp_path / "long.txt", frame_range=(3, 20))
    assert not (tmp_path / "long.txt").exists()


def test_save_video_mp4_and_png_folder(seq_dir, tmp_path):
    mp4 = tmp_path / "vis" / "toy.mp4"
    summary = run_sequence(detect, seq_dir, tmp_path / "a.txt", save_video=mp4)
    assert summary["video"] == str(mp4)
    capture = cv2.VideoCapture(str(mp4))
    count = 0
    while capture.read()[0]:
        count += 1
    assert count == N and capture.get(cv2.CAP_PROP_FRAME_WIDTH) == W
    capture.release()
    assert sorted(p.name for p in mp4.parent.iterdir()) == ["toy.mp4"]  # no temp leftovers

    pngs = tmp_path / "vis_png"
    run_sequence(detect, seq_dir, tmp_path / "b.txt", save_video=pngs)
    files = sorted(pngs.glob("*.png"))
    assert [p.name for p in files] == [f"{f:06d}.png" for f in range(1, N + 1)]
    rows = read_mot_txt(tmp_path / "b.txt", 10, 10)
    frame3 = cv2.imread(str(files[2]))
    for _, track_id, x, y, w, h in rows[rows[:, 0] == 3][:, :6]:
        bottom = frame3[int(round(y + h)), int(round(x + w / 2))]  # a pixel of the bottom box edge
        assert tuple(int(v) for v in bottom) == id_color(int(track_id))


def test_render_tracks_and_cli(seq_dir, tmp_path, capsys):
    res = tmp_path / "r.txt"
    run_sequence(detect, seq_dir, res)
    assert render_tracks(seq_dir, res, tmp_path / "pngs", frame_range=(2, 4)) == 3
    assert len(list((tmp_path / "pngs").glob("*.png"))) == 3
    assert visualize_main([str(seq_dir), str(res), str(tmp_path / "cli.avi")]) == 0
    assert (tmp_path / "cli.avi").stat().st_size > 0
    assert visualize_main([str(seq_dir), str(tmp_path / "missing.txt"), str(tmp_path / "x.mp4")]) == 2
    assert "missing.txt: file not found" in capsys.readouterr().err


def test_bad_detector_output_fails_cleanly(seq_dir, tmp_path):
    out, vis = tmp_path / "bad.txt", tmp_path / "vis" / "bad.mp4"

    def nan_on_frame_4(image):
        boxes, scores, emb = detect(image)
        if (image[15:55, 55] == COLORS[0]).all():  # red box covers x=55 from frame 4 on
            boxes[0, 2] = np.nan
        return boxes, scores, emb

    with pytest.raises(InputError, match="TOY-01 frame 4: boxes: NaN or infinite value in box 0"):
        run_sequence(nan_on_frame_4, seq_dir, out, save_video=vis)
    assert not out.exists() and list(vis.parent.iterdir()) == []
    with pytest.raises(InputError, match=r"detect\(\): frame 1: expected \(boxes, scores, embeddings\)"):
        run_sequence(lambda image: detect(image)[:2], seq_dir, out)
    with pytest.raises(InputError, match="embeddings: 1 rows for 2 boxes"):
        run_sequence(lambda image: (*detect(image)[:2], detect(image)[2][:1]), seq_dir, out)


def test_bad_sources(seq_dir, tmp_path):
    with pytest.raises(InputError, match="no such sequence folder or video file"):
        open_source(tmp_path / "nope")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    with pytest.raises(InputError, match="not a readable video"):
        open_source(text)
    with pytest.raises(InputError, match=r"frame_range: \(5, 13\) outside 1..12"):
        open_source(seq_dir, (5, 13))
    (seq_dir / "img1" / "000003.png").unlink()
    with pytest.raises(InputError, match="000003.png: missing or unreadable image"):
        run_sequence(detect, seq_dir, tmp_path / "x.txt")


def test_bench_speed_runs(capsys):
    assert bench_main(["--frames", "3", "--targets", "20", "--detections", "15"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 5 and "BLAS default" in lines[0] and "shipped (1 BLAS thread)" in lines[1]
    assert [line.split()[0] for line in lines[2:]] == ["128-d", "512-d", "IoU-only"]
    assert all(line.count("median") == 2 and line.count("ms") == 2 for line in lines[2:])
    assert bench_main(["--busy", "-1"]) == 2 and "--busy: must be >= 0" in capsys.readouterr().err
