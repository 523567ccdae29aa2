"""Tracking FPS per architecture, timed alone once every run is finished (``OUT/speed.json``).

Why a separate pass: with ``--jobs N`` every run's own evaluation is timed while other runs share the
cores, so its FPS says more about the neighbours than about the model. Speed is a property of the
architecture (the weights barely change it), so each architecture is timed once, alone, on the first val
sequence, with one representative run's ``best.pt``; the report's FPS column uses these numbers and the
per-run FPS stays in each run's record.
"""
from __future__ import annotations

import datetime
import json
from pathlib import Path

import torch
from loguru import logger

from eval.model_run import RunSettings, track_and_evaluate
from mot_kd.bench.data import data_root
from mot_kd.bench.presets import Preset
from mot_kd.errors import InputError
from mot_kd.models import load_checkpoint
from mot_kd.train.distributed import DistContext, select_device
from mot_kd.utils.io import atomic_write_text

SPEED_FILE = "speed.json"


def load_speed(out: Path) -> dict:
    """``{arch: {fps, frames, torch_threads, weights, measured}}`` from OUT/speed.json ({} when absent)."""
    path = Path(out) / SPEED_FILE
    if not path.is_file():
        return {}
    try:
        table = json.loads(path.read_text())
        return {arch: {**row, "fps": float(row["fps"])} for arch, row in table.items()}
    except (ValueError, KeyError, TypeError, AttributeError):
        raise InputError(f"{path}: not a bench speed file (delete it; the next bench run re-times)") from None


def representative_runs(records: list[dict]) -> dict[str, str]:
    """One finished run per architecture: the teacher, else the lowest seed trained without KD, else any."""
    chosen: dict[str, dict] = {}
    for r in records:
        rank = (r["role"] != "teacher", r.get("configuration") != "none", r["seed"], r["name"])
        best = chosen.get(r["arch"])
        if best is None or rank < best[0]:
            chosen[r["arch"]] = (rank, r)
    return {arch: r["weights"] for arch, (_, r) in sorted(chosen.items())}


def time_architectures(preset: Preset, out: Path, records: list[dict], device: str, run: RunSettings) -> dict:
    """Time every architecture not yet in OUT/speed.json (a ``models:`` student: not with its current rows);
    returns the whole table (written atomically)."""
    out = Path(out)
    table = load_speed(out)
    # a models: student's name is not its architecture: a row timed with other rows (an edited file) is re-timed
    pinned = {arch: json.loads(json.dumps(model)) for arch, model in preset.models.items()}
    todo = {arch: w for arch, w in representative_runs(records).items()
            if arch not in table or table[arch].get("model") != pinned.get(arch)}
    if not todo:
        return table
    names = preset.sequence_names("val")[:1]
    for arch, weights in todo.items():
        model = load_checkpoint(out / weights, select_device(device, DistContext()))
        _, _, speed = track_and_evaluate(model, data_root(out), out / "speed" / arch, "full", "all", names, run)
        table[arch] = {"fps": speed["fps"], "frames": speed["frames"], "torch_threads": torch.get_num_threads(),
                       "weights": weights, "sequence": names[0], **({"model": pinned[arch]} if arch in pinned else {}),
                       "measured": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        logger.info(f"bench speed: {arch} {speed['fps']:.1f} FPS alone ({speed['frames']} frames, "
                    f"{torch.get_num_threads()} torch threads)")
    atomic_write_text(out / SPEED_FILE, json.dumps(table, indent=1, sort_keys=True))
    return table
