"""Data config files (``configs/data/*.yaml``): which sequences and label sets to train and validate on.

Format (every key but ``root`` optional)::

    root: datasets/MOT17          # a sequence, a folder of sequences, or a MOT17 root holding train/
    detector: FRCNN               # MOT17 copy to read (DPM|FRCNN|SDP|all); copies share gt, one is used
    min_visibility: 0.0           # drop target boxes less visible than this (MOT17 column 9)
    train: {split: train_half, sequences: all}   # split full|train_half|val_half; sequences: all or names
    val: {split: val_half, sequences: all}       # or null for no validation sequences
    extra_jde:                    # JDE/FairMOT label sets trained alongside (ids offset after MOT's)
      - {list: datasets/crowdhuman.train, root: datasets, name: crowdhuman}
    synthetic: {seqs: 4, frames: 150, width: 640, height: 384, seed: 0}  # root can be generated

Relative paths are relative to the working directory (made absolute on load); ``~`` and ``$VARS`` expand. A missing root is an
error unless a ``synthetic`` section says how to generate it (``needs_generation``).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mot_kd.config import load_yaml, resolve_config
from mot_kd.data.dataset import JDESource, MOTSource
from mot_kd.data.motchallenge import DETECTORS, Sequence, find_sequences, select_sequences, split_range, \
    unique_by_gt
from mot_kd.errors import InputError

_KEYS = {"root", "detector", "min_visibility", "train", "val", "extra_jde", "synthetic"}
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
        if self.val is None:
            return []
        found = unique_by_gt(find_sequences(self.root, self.detector))
        return select_sequences(found, list(self.val.sequences) if self.val.sequences is not None else None)


def _path(value, where: str) -> Path:
    if not isinstance(value, (str, os.PathLike)) or not str(value).strip():
        raise InputError(f"{where}: expected a path, got {value!r}")
    return Path(os.path.expandvars(os.path.expanduser(str(value)))).absolute()


def _split_spec(value, where: str, default_split: str) -> SplitSpec:
    value = {} if value is None else value
    if isinstance(value, str):
        value = {"split": value}
    if not isinstance(value, dict) or set(value) - {"split", "sequences"}:
        raise InputError(f"{where}: expected {{split: ..., sequences: all|[names]}}, got {value!r}")
    split = str(value.get("split", default_split))
    try:
        split_range(2, split)
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    sequences = value.get("sequences", "all")
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
    if not isinstance(value, dict) or set(value) != set(_SYNTHETIC_KEYS):
        raise InputError(f"{where}: expected exactly the keys {', '.join(_SYNTHETIC_KEYS)}, got {value!r}")
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
        if not isinstance(item, dict) or "list" not in item or set(item) - {"list", "root", "name"}:
            raise InputError(f"{here}: expected {{list: FILE, root: FOLDER, name: NAME}}, got {item!r}")
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
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise InputError(f"{where}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_KEYS))}")
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
    config = DataConfig(
        source=where,
        root=root,
        detector=detector,
        min_visibility=min_visibility,
        train=_split_spec(raw.get("train"), f"{where}: train", "train_half"),
        val=None if "val" in raw and raw["val"] is None else _split_spec(raw.get("val"), f"{where}: val", "val_half"),
        extra_jde=_extra_jde(raw.get("extra_jde"), f"{where}: extra_jde"),
        synthetic=_synthetic(raw.get("synthetic"), f"{where}: synthetic"),
    )
    if not root.is_dir() and config.synthetic is None:
        raise InputError(f"{where}: root {root} is not a folder (set root: to your dataset folder; relative "
                         f"paths start at the working directory)")
    return config
