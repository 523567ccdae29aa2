"""Fast, validating readers/writers for MOTChallenge text files (gt.txt, det.txt, results) and seqinfo.ini.

One parser serves the data layer, the tracker runner and the evaluator. The fast path splits the whole
file at once and converts with numpy; only when something is wrong does it walk lines to name the
offending one (``file:line: problem``).
"""
from __future__ import annotations

import configparser
import re
import warnings
from pathlib import Path

import numpy as np

from mot_kd.errors import InputError
from mot_kd.utils.io import atomic_write_text

_SEP = re.compile(r"[,\s]+")


def _bad_line(path: Path, lines: list[str], min_cols: int, max_cols: int) -> InputError:
    """Walk the lines (blank ones included, for true line numbers) to find the first malformed one."""
    ncols = None
    for number, line in enumerate(lines, 1):
        fields = [f for f in _SEP.split(line.strip()) if f]
        if not fields:
            continue
        if not min_cols <= len(fields) <= max_cols:
            return InputError(f"{path}:{number}: expected {min_cols}-{max_cols} columns, got {len(fields)}")
        if ncols is not None and len(fields) != ncols:
            return InputError(f"{path}:{number}: {len(fields)} columns but earlier lines have {ncols}")
        ncols = len(fields)
        try:
            values = [float(f) for f in fields]
        except ValueError:
            return InputError(f"{path}:{number}: non-numeric value in {line.strip()!r}")
        if not all(np.isfinite(values)):
            return InputError(f"{path}:{number}: NaN or infinite value in {line.strip()!r}")
    return InputError(f"{path}: malformed numeric table")


def read_table(path: str | Path, min_cols: int, max_cols: int) -> np.ndarray:
    """Read a whitespace/comma separated numeric table into float64 (N, C), min_cols <= C <= max_cols.

    Every line must have the same column count and only finite numbers; otherwise InputError names the
    file and line. An empty file gives an array of shape (0, min_cols).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: file not found")
    data = _parse_fast(path)
    if data is not None:
        if data.size == 0:
            return np.zeros((0, min_cols))
        if min_cols <= data.shape[1] <= max_cols and np.isfinite(data).all():
            return data
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read ({exc})") from None
    lines = [line for line in text.splitlines() if line.strip()]
    if not lines:
        return np.zeros((0, min_cols))
    ncols = len([f for f in _SEP.split(lines[0].strip()) if f])
    tokens = [f for f in _SEP.split(text.strip()) if f]
    if not min_cols <= ncols <= max_cols or len(tokens) != ncols * len(lines):
        raise _bad_line(path, text.splitlines(), min_cols, max_cols)
    try:
        data = np.array(tokens, dtype=np.float64).reshape(len(lines), ncols)
    except ValueError:
        raise _bad_line(path, text.splitlines(), min_cols, max_cols) from None
    if not np.isfinite(data).all():
        raise _bad_line(path, text.splitlines(), min_cols, max_cols)
    return data


def line_number(path: str | Path, row: int) -> int:
    """1-based line number of data row ``row`` (0-based, blank lines skipped) in a table file; for errors."""
    nonblank = [n for n, line in enumerate(Path(path).read_text().splitlines(), 1) if line.strip()]
    return nonblank[row] if row < len(nonblank) else row + 1


def read_mot_txt(path: str | Path, min_cols: int = 6, max_cols: int = 10) -> np.ndarray:
    """Read a MOTChallenge text file into a float64 array of shape (N, C), min_cols <= C <= max_cols.

    Columns: frame, id, x, y, w, h[, conf/consider, class, visibility, z]. Raises InputError naming the
    file and line for a wrong column count, a non-numeric or non-finite value, a non-integer or < 1 frame,
    or a negative box size. An empty file gives an array of shape (0, min_cols).
    """
    path = Path(path)
    data = read_table(path, min_cols, max_cols)
    _check_rows(path, data)
    return data


def _parse_fast(path: Path) -> np.ndarray | None:
    """numpy's C parser (~8x faster than splitting in Python); None when the file needs the careful path."""
    try:
        with path.open() as handle:
            first = handle.readline()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "input contained no data" for an empty file
            return np.loadtxt(path, delimiter="," if "," in first else None, comments=None, ndmin=2,
                              dtype=np.float64)
    except (ValueError, OSError, UnicodeDecodeError):
        return None


def _check_rows(path: Path, data: np.ndarray) -> None:
    frames, ids = data[:, 0], data[:, 1]
    problems = [
        ((frames != np.round(frames)) | (frames < 1), "frame must be an integer >= 1"),
        (ids != np.round(ids), "id must be an integer"),
        ((data[:, 4] < 0) | (data[:, 5] < 0), "negative box width or height"),
    ]
    for bad, message in problems:
        if bad.any():
            row = int(np.argmax(bad))
            values = ", ".join(f"{v:g}" for v in data[row, :6])
            raise InputError(f"{path}:{line_number(path, row)}: {message} (got {values})")


def format_result_rows(frame: np.ndarray, track_id: np.ndarray, tlwh: np.ndarray, score: np.ndarray) -> str:
    """MOTChallenge result lines ``frame,id,x,y,w,h,score,-1,-1,-1``."""
    lines = [
        f"{int(f)},{int(i)},{b[0]:.2f},{b[1]:.2f},{b[2]:.2f},{b[3]:.2f},{s:.4f},-1,-1,-1\n"
        for f, i, b, s in zip(frame, track_id, tlwh, score)
    ]
    return "".join(lines)


def write_mot_txt(path: str | Path, text: str) -> None:
    """Write a MOT text file atomically (temp file + rename)."""
    atomic_write_text(path, text)


def read_seqinfo(seq_dir: str | Path) -> dict:
    """Parse ``SEQ/seqinfo.ini`` into {name, im_dir, frame_rate, seq_length, width, height, im_ext}."""
    ini = Path(seq_dir) / "seqinfo.ini"
    if not ini.is_file():
        raise InputError(f"{ini}: missing seqinfo.ini (every MOTChallenge sequence folder needs one)")
    parser = configparser.ConfigParser()
    try:
        parser.read_string(ini.read_text())
    except (configparser.Error, UnicodeDecodeError) as exc:
        raise InputError(f"{ini}: not a valid ini file ({str(exc).splitlines()[0]})") from None
    if "Sequence" not in parser:
        raise InputError(f"{ini}: missing [Sequence] section")
    section = parser["Sequence"]
    info = {"name": section.get("name", Path(seq_dir).name), "im_dir": section.get("imDir", "img1"),
            "im_ext": section.get("imExt", ".jpg")}
    for key, field in [("frame_rate", "frameRate"), ("seq_length", "seqLength"), ("width", "imWidth"),
                       ("height", "imHeight")]:
        if field not in section:
            raise InputError(f"{ini}: missing key {field}")
        try:
            info[key] = int(section[field])
        except ValueError:
            raise InputError(f"{ini}: {field} must be an integer, got {section[field]!r}") from None
        if info[key] <= 0:
            raise InputError(f"{ini}: {field} must be positive, got {info[key]}")
    return info


def write_seqinfo(seq_dir: Path, name: str, seq_length: int, frame_rate: int, width: int, height: int,
                  im_dir: str = "img1", im_ext: str = ".jpg") -> None:
    text = (f"[Sequence]\nname={name}\nimDir={im_dir}\nframeRate={frame_rate}\nseqLength={seq_length}\n"
            f"imWidth={width}\nimHeight={height}\nimExt={im_ext}\n")
    (Path(seq_dir) / "seqinfo.ini").write_text(text)
