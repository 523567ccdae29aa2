"""MOTChallenge sequences: discovery, splits, ground truth with MOT17 semantics, global identities.

A *root* may be one sequence folder, a folder of sequence folders, or a MOT17/MOT20 root holding
``train/``. MOT17 ships every sequence three times (-DPM, -FRCNN, -SDP) with the same gt; ``detector``
picks one copy so nothing is trained or evaluated three times.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mot_kd.config import did_you_mean
from mot_kd.data.mot_files import line_number, read_mot_txt, read_seqinfo
from mot_kd.errors import InputError

SPLITS = ("full", "train_half", "val_half")
DETECTORS = ("DPM", "FRCNN", "SDP")
#: Evaluation protocols (TrackEval's MotChallenge2DBox benchmarks); see eval/protocol.py.
BENCHMARKS = ("MOT15", "MOT16", "MOT17", "MOT20")
PEDESTRIAN = 1
#: MOT16/17 classes whose matched tracker boxes are not counted as false positives (MOT20 adds 6).
DISTRACTOR_CLASSES = (2, 7, 8, 12)


@dataclass(frozen=True)
class Sequence:
    """One sequence folder as described by its seqinfo.ini."""

    name: str
    path: Path
    seq_length: int
    frame_rate: int
    width: int
    height: int
    im_dir: str = "img1"
    im_ext: str = ".jpg"

    @property
    def gt_path(self) -> Path:
        return self.path / "gt" / "gt.txt"

    @property
    def det_path(self) -> Path:
        return self.path / "det" / "det.txt"

    def image_path(self, frame: int) -> Path:
        return self.path / self.im_dir / f"{frame:06d}{self.im_ext}"

    def check_images(self) -> None:
        """Raise InputError unless the image folder holds exactly seq_length frames."""
        folder = self.path / self.im_dir
        count = len(list(folder.glob(f"*{self.im_ext}"))) if folder.is_dir() else 0
        if count != self.seq_length:
            raise InputError(f"{folder}: {count} '{self.im_ext}' images but seqinfo.ini says "
                             f"seqLength={self.seq_length}")


@dataclass(frozen=True)
class GroundTruth:
    """Ground-truth rows of one sequence (after the split's frame cut), column by column."""

    frame: np.ndarray  # (N,) int
    track_id: np.ndarray  # (N,) int
    tlwh: np.ndarray  # (N, 4) float: left, top, width, height in pixels
    consider: np.ndarray  # (N,) bool: column 7 != 0 (MOT17 "consider" flag; True when absent)
    cls: np.ndarray  # (N,) int: column 8 (1 pedestrian; PEDESTRIAN when absent)
    visibility: np.ndarray  # (N,) float: column 9 (1.0 when absent)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def pedestrians(self) -> np.ndarray:
        """Mask of rows scored as pedestrians: class 1 with consider flag set."""
        return (self.cls == PEDESTRIAN) & self.consider

    def select(self, mask: np.ndarray) -> "GroundTruth":
        return GroundTruth(self.frame[mask], self.track_id[mask], self.tlwh[mask], self.consider[mask],
                           self.cls[mask], self.visibility[mask])


def split_range(seq_length: int, split: str) -> tuple[int, int]:
    """Inclusive frame range of a split (ByteTrack/CenterTrack half convention)."""
    if split == "full":
        return 1, seq_length
    if split == "train_half":
        return 1, seq_length // 2 + 1
    if split == "val_half":
        return seq_length // 2 + 2, seq_length
    raise InputError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")


def load_sequence(seq_dir: str | Path) -> Sequence:
    seq_dir = Path(seq_dir)
    info = read_seqinfo(seq_dir)
    return Sequence(path=seq_dir, **info)


def _detector_of(name: str) -> str | None:
    suffix = name.rsplit("-", 1)[-1]
    return suffix if suffix in DETECTORS else None


def find_sequences(root: str | Path, detector: str | None = "FRCNN") -> list[Sequence]:
    """All sequences under ``root``, sorted by name; MOT17 copies filtered to ``detector`` ('all' keeps all)."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{root}: data root is not a folder")
    if (root / "seqinfo.ini").is_file():
        folders = [root]
    else:
        base = root / "train" if (root / "train").is_dir() and not any(root.glob("*/seqinfo.ini")) else root
        folders = sorted(p for p in base.iterdir() if p.is_dir() and not p.name.startswith("."))
    if detector not in (None, "all") and detector not in DETECTORS:
        raise InputError(f"unknown detector {detector!r}; choose one of {', '.join(DETECTORS)} or all")
    sequences = []
    for folder in folders:
        if not (folder / "seqinfo.ini").is_file():
            raise InputError(f"{folder / 'seqinfo.ini'}: missing seqinfo.ini (every sequence folder needs one)")
        det = _detector_of(folder.name)
        if det is not None and detector not in (None, "all") and det != detector:
            continue
        sequences.append(load_sequence(folder))
    if not sequences and folders:
        raise InputError(f"{root}: no sequence of detector {detector} among {len(folders)} found; "
                         f"pass detector='all' or the detector your copies carry")
    if not sequences:
        raise InputError(f"{root}: no MOTChallenge sequences found (expected SEQ/seqinfo.ini)")
    return sequences


def _has_mot17_columns(data: np.ndarray) -> bool:
    """Whether columns 8-9 hold MOT16/17/20 class and visibility rather than MOT15 world coordinates.

    MOT16/17/20 gt has 9 columns; MOT15/2DMOT gt (e.g. TUD-Stadtmitte) has 10, with x/y/z world
    coordinates (or -1) in columns 8-10. A 10-column file counts as MOT17 only when column 8 looks like
    class ids (integers, -1 or >= 1) and column 9 like visibilities (-1 or 0..1).
    """
    if data.shape[1] < 8:
        return False
    if data.shape[1] < 10:
        return True
    cls, vis = data[:, 7], data[:, 8]
    return bool(np.all((cls == np.round(cls)) & ((cls == -1) | (cls >= 1)))
                and np.all((vis == -1) | ((vis >= 0) & (vis <= 1))))


def read_gt(seq: Sequence, split: str = "full") -> GroundTruth:
    """Read ``gt/gt.txt``, check frames lie in 1..seqLength and the MOT17 columns, keep the split's frames.

    Placeholder -1 values (MOT15 style) mean "unknown": class -1 reads as pedestrian, visibility -1 as 1.
    """
    first, last = split_range(seq.seq_length, split)
    data = read_mot_txt(seq.gt_path, min_cols=6, max_cols=10)
    frames = data[:, 0].astype(np.int64)
    _check_column(seq.gt_path, frames > seq.seq_length, data, f"frame outside 1..{seq.seq_length} (seqLength)")
    mot17 = _has_mot17_columns(data)
    cls = np.full(len(data), PEDESTRIAN, np.int64)
    visibility = np.ones(len(data))
    if mot17:
        raw_cls, raw_vis = data[:, 7], data[:, 8] if data.shape[1] > 8 else np.ones(len(data))
        _check_column(seq.gt_path, (raw_cls != np.round(raw_cls)) | ((raw_cls < 1) & (raw_cls != -1)), data,
                      "class (column 8) must be an integer >= 1 or -1")
        _check_column(seq.gt_path, (raw_vis != -1) & ((raw_vis < 0) | (raw_vis > 1)), data,
                      "visibility (column 9) must lie in 0..1 or be -1")
        cls = np.where(raw_cls == -1, PEDESTRIAN, raw_cls).astype(np.int64)
        visibility = np.where(raw_vis == -1, 1.0, raw_vis)
    keep = (frames >= first) & (frames <= last)
    return GroundTruth(
        frame=frames[keep],
        track_id=data[keep, 1].astype(np.int64),
        tlwh=data[keep, 2:6].copy(),
        consider=data[keep, 6] != 0 if data.shape[1] > 6 else np.ones(int(keep.sum()), bool),
        cls=cls[keep],
        visibility=visibility[keep],
    )


def benchmark_mismatch(seq: Sequence, benchmark: str) -> str | None:
    """Why ``seq``'s gt does not suit ``benchmark``'s protocol (what is in the file), or None.

    MOT16/17/20 scoring needs class ids 1..13 in column 8; MOT15/2DMOT gt holds -1 placeholders or world
    coordinates there, so the evaluator would stop (after a training epoch, in validation). MOT15 scoring
    keeps every row, so gt with MOT17 classes other than pedestrians would count cars and reflections.
    """
    data = read_mot_txt(seq.gt_path, min_cols=6, max_cols=10)
    if data.shape[1] < 8:
        return None  # no class column: every row is a pedestrian under any protocol
    if benchmark != "MOT15":
        if not _has_mot17_columns(data):
            return "columns 8-10 hold world coordinates, not class and visibility (MOT15-style gt)"
        if (data[:, 7] == -1).any():
            return "column 8 (class) holds -1 placeholders (MOT15-style gt)"
        return None
    others = np.setdiff1d(np.unique(data[:, 7]), (-1, PEDESTRIAN)) if _has_mot17_columns(data) else []
    if len(others):
        shown = ", ".join(f"{c:g}" for c in others[:5]) + (f", ... ({len(others)} in all)" if len(others) > 5 else "")
        return f"column 8 holds MOT16/17/20 classes other than pedestrians ({shown})"
    return None


def _check_column(path: Path, bad: np.ndarray, data: np.ndarray, message: str) -> None:
    if bad.any():
        row = int(np.argmax(bad))
        values = ", ".join(f"{v:g}" for v in data[row])
        raise InputError(f"{path}:{line_number(path, row)}: {message} (got {values})")


def select_sequences(sequences: list[Sequence], names: list[str] | None) -> list[Sequence]:
    """Keep the sequences named in ``names`` (full name like MOT17-02-FRCNN or base name MOT17-02).

    A base name keeps every detector copy of it in ``sequences`` (all three with detector 'all'; one after a
    detector filter or :func:`unique_by_gt`). ``None`` keeps all. An unknown name raises InputError listing the
    available ones.
    """
    if names is None:
        return list(sequences)
    by_name: dict[str, set[str]] = {}
    for seq in sequences:
        by_name.setdefault(seq.name, set()).add(seq.name)
        by_name.setdefault(_base_name(seq.name), set()).add(seq.name)
    for name in names:
        if name not in by_name:
            hint = did_you_mean(name, [seq.name for seq in sequences], "available", always_list=True)
            raise InputError(f"unknown sequence '{name}'{hint}")
    chosen = set().union(*(by_name[name] for name in names))
    return [seq for seq in sequences if seq.name in chosen]


def _base_name(name: str) -> str:
    return name.rsplit("-", 1)[0] if _detector_of(name) else name


def unique_by_gt(sequences: list[Sequence]) -> list[Sequence]:
    """Keep one of MOT17's detector copies per underlying sequence (they share gt)."""
    seen, kept = set(), []
    for seq in sequences:
        base = _base_name(seq.name)
        if base not in seen:
            seen.add(base)
            kept.append(seq)
    return kept


def global_identities(gts: dict[str, GroundTruth]) -> dict[tuple[str, int], int]:
    """Number pedestrian identities 0..K-1 across sequences, in sequence-name then id order.

    Only rows scored as pedestrians take part; the training dataset uses no other row as a target.
    """
    mapping: dict[tuple[str, int], int] = {}
    for name in sorted(gts):
        gt = gts[name]
        for local in np.unique(gt.track_id[gt.pedestrians]):
            mapping[(name, int(local))] = len(mapping)
    return mapping
