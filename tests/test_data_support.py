"""Writers of tiny hand-made MOTChallenge and JDE folders for the data-layer tests (no tests here)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from mot_kd.data.mot_files import write_seqinfo


def write_sequence(root: Path, name: str, gt_rows: list[tuple] | str | None, frames: int = 6,
                   size: tuple[int, int] = (64, 48), im_ext: str = ".jpg", draw=None) -> Path:
    """Write ROOT/NAME/{seqinfo.ini, img1/*, gt/gt.txt}; ``draw(frame, image)`` paints each BGR frame."""
    seq = root / name
    (seq / "img1").mkdir(parents=True)
    width, height = size
    write_seqinfo(seq, name, frames, 25, width, height, im_ext=im_ext)
    for frame in range(1, frames + 1):
        image = np.full((height, width, 3), (40 + 10 * frame) % 256, np.uint8)
        if draw is not None:
            draw(frame, image)
        assert cv2.imwrite(str(seq / "img1" / f"{frame:06d}{im_ext}"), image)
    if gt_rows is not None:
        (seq / "gt").mkdir()
        text = gt_rows if isinstance(gt_rows, str) else "".join(",".join(f"{v:g}" for v in row) + "\n"
                                                                for row in gt_rows)
        (seq / "gt" / "gt.txt").write_text(text)
    return seq


def walking_gt(frames: int, ids: tuple[int, ...] = (1, 2), size: tuple[int, int] = (64, 48)) -> list[tuple]:
    """MOT17 9-column pedestrian rows: each id walks right by one pixel a frame."""
    rows = []
    for frame in range(1, frames + 1):
        for k, track in enumerate(ids):
            rows.append((frame, track, 4 + 20 * k + frame, 8, 10, 24, 1, 1, 1.0))
    return rows


def write_jde_set(root: Path, name: str, labels: list[list[tuple]], size: tuple[int, int] = (64, 48)) -> Path:
    """Write ROOT/images/NAME/*.jpg, ROOT/labels_with_ids/NAME/*.txt and ROOT/NAME.train (relative paths)."""
    width, height = size
    (root / "images" / name).mkdir(parents=True)
    (root / "labels_with_ids" / name).mkdir(parents=True)
    lines = []
    for i, rows in enumerate(labels):
        rel = f"images/{name}/{i:06d}.jpg"
        assert cv2.imwrite(str(root / rel), np.full((height, width, 3), 90, np.uint8))
        text = "".join(" ".join(f"{v:g}" for v in row) + "\n" for row in rows)
        (root / "labels_with_ids" / name / f"{i:06d}.txt").write_text(text)
        lines.append(rel)
    list_file = root / f"{name}.train"
    list_file.write_text("\n".join(lines) + "\n")
    return list_file


def write_tud_sequence(root: Path, name: str, frames: int = 6, size: tuple[int, int] = (64, 48)) -> Path:
    """A MOT15-style sequence from the real TUD gt shipped in the motmetrics wheel (TUD-Campus: class and
    visibility -1; TUD-Stadtmitte: world coordinates in columns 8-10), cut to ``frames`` and scaled from
    640x480 to ``size``; each person is painted as a bright box on a dark frame."""
    import motmetrics

    rows = np.loadtxt(Path(motmetrics.__file__).parent / "data" / name / "gt.txt", delimiter=",", ndmin=2)
    rows = rows[rows[:, 0] <= frames]
    rows[:, 2:6] *= np.tile([size[0] / 640, size[1] / 480], 2)

    def draw(frame, image):
        for _, track, x, y, w, h, *_ in rows[rows[:, 0] == frame]:
            image[max(int(y), 0):int(y + h), max(int(x), 0):int(x + w)] = (60 * track % 256, 200, 255)

    text = "".join(",".join(f"{v:.6g}" for v in row) + "\n" for row in rows)
    return write_sequence(root, name, text, frames=frames, size=size, draw=draw)
