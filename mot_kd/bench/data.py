"""The bench's synthetic data: separate train, tune and val sets (different seeds, so different people) in
one root, and the trainer's data config (train on TRAIN-*, validate - i.e. choose best.pt - on TUNE-*).

Why one root with three prefixes: the trainer's data config has a single root; sequence names keep the
sets apart, and the val set is never seen before the final evaluation.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml
from loguru import logger

from mot_kd.bench.presets import SETS, Preset
from mot_kd.data.synthetic import generate_dataset
from mot_kd.errors import InputError
from mot_kd.utils.io import atomic_write_text


def data_root(out: Path) -> Path:
    return Path(out).absolute() / "data"


def prepare_data(preset: Preset, out: Path) -> Path:
    """Generate the sets that are missing; refuse a root generated from other data settings."""
    root, d = data_root(out), preset.data
    manifest = root / "bench_data.json"
    if manifest.is_file() and json.loads(manifest.read_text()) != d:
        raise InputError(f"{root}: holds data generated with other settings than preset {preset.name} "
                         f"({manifest}); use another --out")
    atomic_write_text(manifest, json.dumps(d, indent=1, sort_keys=True))  # before: a killed run keeps its guard
    for which in SETS:
        names = preset.sequence_names(which)
        if all((root / n / "gt" / "gt.txt").is_file() for n in names):
            continue
        logger.info(f"bench data: generating the {which} set ({len(names)} x {d['frames']} frames, seed "
                    f"{d[which]['seed']}) in {root}")
        generate_dataset(root, d[which]["seqs"], d["frames"], d["width"], d["height"], d[which]["seed"],
                         prefix=which.upper(), progress=False, **d["scene"])
    return root


def write_train_data_config(preset: Preset, out: Path) -> Path:
    """The trainer's data config: train on the full train set, validate on the full tune set."""
    config = {"root": str(data_root(out)), "detector": "all", "min_visibility": 0.0,
              "train": {"split": "full", "sequences": preset.sequence_names("train")},
              "val": {"split": "full", "sequences": preset.sequence_names("tune")}}
    path = Path(out).absolute() / "configs" / "data.yaml"
    atomic_write_text(path, yaml.safe_dump(config, sort_keys=False))
    return path


def frames_of(preset: Preset, which: str) -> int:
    return preset.data[which]["seqs"] * preset.data["frames"]
