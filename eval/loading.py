"""Load a MOTChallenge data root and a results folder into :class:`SequenceData` (kept apart from evaluation
and printing so a later ``--weights`` mode can evaluate tracker output it produced itself)."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from loguru import logger

from eval.evaluate import EvalResult, assemble, count_sequence
from eval.pool import run_ordered
from eval.protocol import SequenceData, listing
from mot_kd.data.mot_files import read_mot_txt
from mot_kd.data.motchallenge import Sequence, find_sequences, select_sequences, split_range
from mot_kd.errors import InputError

#: What to do with a sequence that has no result file: stop (like TrackEval) or count it as empty.
MISSING = ("error", "empty")
#: A MOTChallenge text row is ~40-50 bytes: file sizes estimate the rows (the pool's pay-off) before reading.
BYTES_PER_ROW = 40


@dataclass(frozen=True)
class GtSequence:
    """A sequence's gt rows cut to the split's frames first..last (original frame numbers)."""

    seq: Sequence
    gt: np.ndarray
    first: int
    last: int

    @property
    def name(self) -> str:
        return self.seq.name


@dataclass
class Protocol:
    """How the evaluation was set up; goes into the JSON output."""

    benchmark: str
    split: str
    detector: str
    numbering: dict[str, str] = field(default_factory=dict)  # seq -> original | renumbered | empty | missing

    def as_dict(self) -> dict:
        return {"benchmark": self.benchmark, "split": self.split, "detector": self.detector,
                "result_numbering": dict(self.numbering)}


def load_gt(data_root: str | Path, split: str = "full", detector: str = "FRCNN", seqs: list[str] | None = None
            ) -> list[GtSequence]:
    """Sequences under ``data_root`` (only those named in ``seqs``, full or base names, if given) with their gt
    (raw gt.txt rows: TrackEval reads column 7 with ``int()``). Unselected sequences' gt is never read."""
    return [read_gt(seq, split) for seq in select_sequences(find_sequences(data_root, detector), seqs)]


def read_gt(seq: Sequence, split: str) -> GtSequence:
    """One sequence's gt rows, checked against its seqLength and cut to the split."""
    first, last = split_range(seq.seq_length, split)
    gt = read_mot_txt(seq.gt_path, min_cols=6, max_cols=10)
    frames = gt[:, 0]
    if len(frames) and frames.max() > seq.seq_length:
        row = int(np.argmax(frames > seq.seq_length))
        raise InputError(f"{seq.gt_path}:{row + 1}: frame {frames[row]:g} outside 1..{seq.seq_length} (seqLength)")
    gt = gt[(frames >= first) & (frames <= last)]
    if not len(gt):
        raise InputError(f"{seq.gt_path}: no ground-truth rows in frames {first}..{last} ({split})")
    return GtSequence(seq, gt, first, last)


def align_results(rows: np.ndarray, gt: GtSequence, path: Path | str) -> tuple[np.ndarray, str]:
    """Map result frame numbers onto the gt's; accepts original numbers or renumbered-from-1 (val_half)."""
    if not len(rows):
        return rows, "empty"
    lo, hi = rows[:, 0].min(), rows[:, 0].max()
    if gt.first <= lo and hi <= gt.last:
        return rows, "original"
    count = gt.last - gt.first + 1
    if gt.first == 1:
        bad = lo if lo < gt.first else hi
        raise InputError(f"{path}: frame {bad:g} outside {gt.first}..{gt.last} for {gt.name}")
    if hi <= count:
        shifted = rows.copy()
        shifted[:, 0] += gt.first - 1
        return shifted, "renumbered"
    raise InputError(f"{path}: frames {lo:g}..{hi:g} fit neither {gt.first}..{gt.last} (original numbering) "
                     f"nor 1..{count} (renumbered from 1) for {gt.name}")


def _missing_files_error(results_dir: Path, names: set[str], files: dict[str, Path]) -> InputError:
    """Why sequences lack result files, in the words that fit the folder (empty, other sequences', some)."""
    hint = "--missing empty counts missing sequences as empty"
    missing = sorted(names - files.keys())
    if not files:
        return InputError(f"{results_dir}: no result files (*.txt) in the results folder, expected one per sequence "
                          f"like {missing[0]}.txt ({hint})")
    if len(missing) == len(names):
        return InputError(f"{results_dir}: no result file matches a sequence (expected e.g. {missing[0]}.txt, "
                          f"found {listing(sorted(files))}; {hint})")
    return InputError(f"{results_dir}: no result file for {len(missing)} of {len(names)} sequences: "
                      f"{listing([n + '.txt' for n in missing])} ({hint})")


def result_files(names: list[str], results_dir: str | Path, missing: str = "error") -> dict[str, Path]:
    """``results_dir/<SEQ>.txt`` of each sequence named; a sequence without one is an error, as in TrackEval (an
    empty or wrong folder must not score as a tracker that found nobody), unless ``missing="empty"``: then it
    is left out of the returned dict and counts as empty, with a warning."""
    if missing not in MISSING:
        raise InputError(f"missing={missing!r}: choose one of {', '.join(MISSING)}")
    results_dir = Path(results_dir)
    if not results_dir.is_dir():
        raise InputError(f"{results_dir}: results folder not found")
    files = {p.stem: p for p in results_dir.glob("*.txt")}
    if missing == "error" and set(names) - files.keys():
        raise _missing_files_error(results_dir, set(names), files)
    known_roots = {n.rsplit("-", 1)[0] for n in names}
    unknown = sorted(s for s in files if s not in names and s.rsplit("-", 1)[0] not in known_roots)
    if unknown:
        logger.warning(f"{results_dir}: ignoring result files for unknown sequences: {listing(unknown, 10)}")
    for name in names:
        if name not in files:
            logger.warning(f"{results_dir / (name + '.txt')}: missing result file, counted as empty")
    return {name: files[name] for name in names if name in files}


def pair_results(gt: GtSequence, path: Path | None) -> tuple[SequenceData, str]:
    """The sequence to evaluate from its gt and result file (None: missing, empty), and the numbering found."""
    if path is None:
        rows, numbering = np.zeros((0, 6)), "missing"
    else:
        rows, numbering = align_results(read_mot_txt(path, min_cols=6, max_cols=10), gt, path)
    return SequenceData(gt.name, gt.gt, rows, gt.last - gt.first + 1, gt.first, str(gt.seq.gt_path),
                        str(path or gt.name)), numbering


def load_results(gts: list[GtSequence], results_dir: str | Path, missing: str = "error"
                 ) -> tuple[list[SequenceData], dict[str, str]]:
    """Pair every gt sequence with ``results_dir/<SEQ>.txt`` (see :func:`result_files`)."""
    files = result_files([g.name for g in gts], results_dir, missing)
    pairs = [pair_results(gt, files.get(gt.name)) for gt in gts]
    return [seq for seq, _ in pairs], {gt.name: numbering for gt, (_, numbering) in zip(gts, pairs)}


def describe_numbering(numbering: dict[str, str]) -> str:
    found = sorted({v for v in numbering.values() if v in ("original", "renumbered")})
    if not found:
        return "no result rows"
    if len(found) > 1:
        return "mixed: " + ", ".join(f"{k}={v}" for k, v in sorted(numbering.items()))
    return {"original": "original frame numbers", "renumbered": "renumbered from 1"}[found[0]]


def evaluate_folder(data_root: str | Path, results_dir: str | Path, split: str = "full", benchmark: str = "MOT17",
                    detector: str = "FRCNN", progress: bool = False, seqs: list[str] | None = None,
                    missing: str = "error", workers: int | None = 1) -> tuple[EvalResult, Protocol]:
    """Evaluate a results folder against a data root; ``seqs`` and ``missing`` as in :func:`load_gt` and
    :func:`result_files`, ``workers`` as in :func:`evaluate`. Each sequence's files are read where it is
    scored (in a pool worker, in parallel), so the arrays never travel between processes."""
    selected = select_sequences(find_sequences(data_root, detector), seqs)
    files = result_files([s.name for s in selected], results_dir, missing)
    jobs = [(seq, split, files.get(seq.name), benchmark) for seq in selected]
    sizes = [sum(p.stat().st_size for p in (seq.gt_path, files.get(seq.name)) if p and p.is_file()) // BYTES_PER_ROW
             for seq in selected]  # a missing file counts 0 here; read_gt names it
    done = run_ordered(_load_and_count, jobs, sizes, workers, progress)
    protocol = Protocol(benchmark, split, detector, {s.name: numbering for s, (_, numbering) in zip(selected, done)})
    return assemble(benchmark, [s.name for s in selected], [counted for counted, _ in done]), protocol


def _load_and_count(seq: Sequence, split: str, result_path: Path | None, benchmark: str):
    data, numbering = pair_results(read_gt(seq, split), result_path)
    return count_sequence(data, benchmark, True), numbering
