"""The JDE/FairMOT/CSTrack ``labels_with_ids`` format, so data users already converted can be trained on.

A JDE set is a list file (``*.train``) of image paths, one a line, relative to a data root (or absolute).
Each image ``.../images/.../NAME.jpg`` has a label file ``.../labels_with_ids/.../NAME.txt`` with rows
``class identity cx cy w h``: class 0 (pedestrian), identity >= 0 within the set or -1 when unknown, and
the box normalised to [0, 1] by the image width and height. As in FairMOT, an image without a label file
has no people; identities of several sets are offset so they never collide.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger
from tqdm import tqdm

from mot_kd.data.mot_files import line_number, read_table
from mot_kd.errors import InputError

IMAGES_DIR = "images"
LABELS_DIR = "labels_with_ids"
#: Tolerance on the normalised box (converters round; boxes of people at the border stick out a little).
_EDGE_TOLERANCE = 0.01


@dataclass(frozen=True)
class JDESet:
    """One list file's images and labels; ``labels[i]`` is (n, 6) [class, identity, cx, cy, w, h]."""

    name: str
    images: tuple[Path, ...]
    labels: tuple[np.ndarray, ...]

    @property
    def num_ids(self) -> int:
        """Identities 0..max used by this set (FairMOT's convention: max id + 1)."""
        top = max((int(lab[:, 1].max()) for lab in self.labels if len(lab)), default=-1)
        return top + 1

    def __len__(self) -> int:
        return len(self.images)


def label_path(image_path: str | Path, labels_dir: str = LABELS_DIR) -> Path:
    """The label file of an image: the last ``images`` folder becomes ``labels_with_ids``, suffix ``.txt``."""
    parts = list(Path(image_path).parts)
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == IMAGES_DIR:
            parts[i] = labels_dir
            return Path(*parts).with_suffix(".txt")
    raise InputError(f"{image_path}: JDE image path has no '{IMAGES_DIR}' folder to derive its label path from")


def read_jde_labels(path: str | Path) -> np.ndarray:
    """Read one ``labels_with_ids`` file into float64 (n, 6); InputError names file:line when malformed."""
    path = Path(path)
    data = read_table(path, 6, 6)
    checks = [
        (data[:, 0] != np.round(data[:, 0]), "class must be an integer"),
        ((data[:, 1] != np.round(data[:, 1])) | (data[:, 1] < -1), "identity must be an integer >= -1"),
        ((data[:, 4] <= 0) | (data[:, 5] <= 0), "box width and height must be positive"),
        ((data[:, 2:6] < -_EDGE_TOLERANCE).any(1) | (data[:, 2:6] > 1 + _EDGE_TOLERANCE).any(1),
         "box must be normalised to 0..1 (cx cy w h)"),
    ]
    for bad, message in checks:
        if bad.any():
            row = int(np.argmax(bad))
            values = " ".join(f"{v:g}" for v in data[row])
            raise InputError(f"{path}:{line_number(path, row)}: {message} (got {values})")
    return data


def read_image_list(list_file: str | Path, root: str | Path | None = None) -> list[Path]:
    """Image paths of a JDE list file; relative ones are joined to ``root`` (default: the list's folder)."""
    list_file = Path(list_file)
    if not list_file.is_file():
        raise InputError(f"{list_file}: JDE list file not found")
    base = Path(root) if root is not None else list_file.parent
    paths = [line.strip() for line in list_file.read_text().splitlines() if line.strip()]
    if not paths:
        raise InputError(f"{list_file}: JDE list file names no images")
    return [Path(p) if Path(p).is_absolute() else base / p for p in paths]


def load_jde_set(list_file: str | Path, root: str | Path | None = None, name: str | None = None) -> JDESet:
    """Read a list file and all its label files (checked, so bad labels fail before training starts)."""
    images = read_image_list(list_file, root)
    missing_image = next((p for p in images if not p.is_file()), None)
    if missing_image is not None:
        raise InputError(f"{list_file}: listed image {missing_image} does not exist")
    labels, missing = [], 0
    for image in tqdm(images, desc=f"labels {Path(list_file).name}", disable=len(images) < 1000, leave=False):
        path = label_path(image)
        if path.is_file():
            labels.append(read_jde_labels(path))
        else:
            labels.append(np.zeros((0, 6)))
            missing += 1
    if missing:
        logger.warning(f"{list_file}: {missing} of {len(images)} images have no label file (read as no people)")
    return JDESet(name or Path(list_file).stem, tuple(images), tuple(labels))


def offset_identities(labels: np.ndarray, offset: int) -> np.ndarray:
    """Shift known identities (>= 0) by ``offset``; -1 (unknown) stays -1."""
    out = np.array(labels, dtype=np.float64)
    known = out[:, 1] >= 0
    out[known, 1] += offset
    return out
