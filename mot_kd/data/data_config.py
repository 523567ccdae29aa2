"""Data config files (``configs/data/*.yaml``): which sequences and label sets to train and validate on.

Format (every key but ``root`` optional)::

    root: datasets/MOT17          # a sequence, a folder of sequences, or a MOT17 root holding train/
    detector: FRCNN               # MOT17 copy to read (DPM|FRCNN|SDP|all); copies share gt, one is used
    min_visibility: 0.0           # drop target boxes less visible than this (MOT17 column 9)
    benchmark: MOT17              # validation protocol: MOT17 | MOT16 | MOT20 | MOT15 (TUD, PETS: 2DMOT gt)
    train: {split: train_half, sequences: all}   # split full|train_half|val_half; sequences (or seqs): all or names
    val: {split: val_half, sequences: all}       # or null for no validation sequences
    extra_jde:                    # JDE/FairMOT label sets trained alongside (ids offset after MOT's)
      - {list: datasets/crowdhuman.train, root: datasets, name: crowdhuman}
    synthetic: {seqs: 4, frames: 150, width: 640, height: 384, seed: 0}  # root can be generated

Relative paths are relative to the working directory (made absolute on load); ``~`` and ``$VARS`` expand. A
missing root is an error unless a ``synthetic`` section says how to generate it (``needs_generation``).
``check()`` then checks, before any training, the sequence names and that the val gt suits the benchmark
(MOT15-style gt under MOT17 would otherwise stop the run in its first validation).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mot_kd.config import check_keys, load_yaml, resolve_config
from mot_kd.data.dataset import JDESource, MOTSource
from mot_kd.data.motchallenge import BENCHMARKS, DETECTORS, Sequence, benchmark_mismatch, find_sequences, \
    select_sequences, split_range, unique_by_gt
from mot_kd.errors import InputError

KEYS = ("root", "detector", "min_visibility", "benchmark", "train", "val", "extra_jde", "synthetic")
_SPLIT_KEYS = ("split", "sequences", "seqs")  # seqs: the short name, as in eval.mot17 --seqs
_SYNTHETIC_KEYS = ("seqs", "frames", "width", "height", "seed")


@dataclass(frozen=True)
class SplitSpec:
    split: str
    sequences: tuple[str, ...] | None  # None: all sequences under root


@dataclass(frozen=True)
class DataConfig:
    source: str  # the config file (for messages)
    root: Path
    detector: str
    min_visibility: float
    benchmark: str  # validation protocol
    train: SplitSpec
    val: SplitSpec | None
    extra_jde: tuple[JDESource, ...]
    synthetic: dict | None  # generator parameters {seqs, frames, width, height, seed}

    @property
    def needs_generation(self) -> bool:
        """True when root is missing and the synthetic section says how to generate it."""
        return self.synthetic is not None and not self.root.is_dir()

    def train_sources(self) -> list[MOTSource | JDESource]:
        mot = MOTSource(self.root, self.train.split, self.train.sequences, self.detector, self.min_visibility)
        return [mot, *self.extra_jde]

    def val_sequences(self) -> list[Sequence]:
        """Validation sequences (one MOT17 copy each); evaluate them on ``split_range(.., val.split)``."""
        return [] if self.val is None else self._select(self.val, "val")

    def _select(self, spec: SplitSpec, section: str) -> list[Sequence]:
        found = unique_by_gt(find_sequences(self.root, self.detector))
        try:
            return select_sequences(found, list(spec.sequences) if spec.sequences is not None else None)
        except InputError as exc:
            raise InputError(f"{self.source}: {section}: {exc}") from None

    def check(self) -> None:
        """Fail before training on what would stop it later: unknown sequence names in train/val, and val gt
        that does not suit the benchmark (reads only seqinfo.ini files and the val gt)."""
        self._select(self.train, "train")
        for seq in self.val_sequences():
            problem = benchmark_mismatch(seq, self.benchmark)
            if problem:
                fix = "`benchmark: MOT15`" if self.benchmark != "MOT15" else "`benchmark: MOT17` (or MOT20)"
                raise InputError(f"{seq.gt_path}: {problem}, but {self.source} validates with benchmark "
                                 f"{self.benchmark}: set {fix} in it")


def _path(value, where: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InputError(f"{where}: expected a path, got {value!r}")
    return Path(os.path.expandvars(os.path.expanduser(str(value)))).absolute()


def _split_spec(value, where: str, default_split: str) -> SplitSpec:
    value = {} if value is None else value
    if isinstance(value, str):
        value = {"split": value}
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected {{split: ..., sequences: all|[names]}}, got {value!r}")
    check_keys(value, _SPLIT_KEYS, where)
    if "sequences" in value and "seqs" in value:
        raise InputError(f"{where}: give sequences or seqs (the same list), not both")
    split = str(value.get("split", default_split))
    try:
        split_range(2, split)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    sequences = value.get("sequences", value.get("seqs", "all"))
    if sequences in (None, "all"):
        return SplitSpec(split, None)
    if isinstance(sequences, str):
        sequences = [sequences]
    if not isinstance(sequences, list) or not sequences or not all(isinstance(s, str) for s in sequences):
        raise InputError(f"{where}.sequences: expected 'all' or a list of sequence names, got {sequences!r}")
    return SplitSpec(split, tuple(sequences))


def _synthetic(value, where: str) -> dict | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping with the keys {', '.join(_SYNTHETIC_KEYS)}, got {value!r}")
    check_keys(value, _SYNTHETIC_KEYS, where)
    missing = [key for key in _SYNTHETIC_KEYS if key not in value]
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)} (all of {', '.join(_SYNTHETIC_KEYS)} "
                         "are needed)")
    for key in _SYNTHETIC_KEYS:
        if not isinstance(value[key], int) or value[key] < (0 if key == "seed" else 1):
            raise InputError(f"{where}.{key}: expected a positive integer, got {value[key]!r}")
    return dict(value)


def _extra_jde(value, where: str) -> tuple[JDESource, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise InputError(f"{where}: expected a list of {{list, root, name}}, got {value!r}")
    sources = []
    for i, item in enumerate(value):
        here = f"{where}[{i}]"
        if not isinstance(item, dict) or "list" not in item:
            raise InputError(f"{here}: expected {{list: FILE, root: FOLDER, name: NAME}}, got {item!r}")
        check_keys(item, ("list", "root", "name"), here)
        list_file = _path(item["list"], f"{here}.list")
        if not list_file.is_file():
            raise InputError(f"{here}.list: {list_file} does not exist")
        root = _path(item["root"], f"{here}.root") if item.get("root") is not None else None
        sources.append(JDESource(list_file, root, item.get("name")))
    return tuple(sources)


def load_data_config(path_or_name: str | Path | dict) -> DataConfig:
    """Load and check a data config: a YAML path, a name shipped in ``configs/data/``, or a dict."""
    where = "data config" if isinstance(path_or_name, dict) else str(resolve_config(path_or_name, "data"))
    raw = load_yaml(path_or_name, "data")
    check_keys(raw, KEYS, where)
    if "root" not in raw:
        raise InputError(f"{where}: missing key root (the dataset folder)")
    root = _path(raw["root"], f"{where}: root")
    detector = str(raw.get("detector", "FRCNN"))
    if detector not in (*DETECTORS, "all"):
        raise InputError(f"{where}: detector {detector!r} is not one of {', '.join(DETECTORS)}, all")
    try:
        min_visibility = float(raw.get("min_visibility", 0.0))
    except (TypeError, ValueError):
        raise InputError(f"{where}: min_visibility must be a number, got {raw['min_visibility']!r}") from None
    benchmark = str(raw.get("benchmark", "MOT17")).upper()
    if benchmark not in BENCHMARKS:
        raise InputError(f"{where}: benchmark {raw['benchmark']!r} is not one of {', '.join(BENCHMARKS)}")
    config = DataConfig(
        source=where,
        root=root,
        detector=detector,
        min_visibility=min_visibility,
        benchmark=benchmark,
        train=_split_spec(raw.get("train"), f"{where}: train", "train_half"),
        val=None if "val" in raw and raw["val"] is None else _split_spec(raw.get("val"), f"{where}: val", "val_half"),
        extra_jde=_extra_jde(raw.get("extra_jde"), f"{where}: extra_jde"),
        synthetic=_synthetic(raw.get("synthetic"), f"{where}: synthetic"),
    )
    if not root.is_dir() and config.synthetic is None:
        raise InputError(f"{where}: root {root} is not a folder (set root: to your dataset folder; relative "
                         f"paths start at the working directory)")
    return config
