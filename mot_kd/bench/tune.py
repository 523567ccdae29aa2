"""Honest tuning: KD loss weights/temperatures chosen on the tune set, never on the val set.

``--tune`` trains one KD student (all three losses) per grid point of the preset's ``tune`` section, with
the tune set scoring the point; ``OUT/tuning.json`` records every point and the chosen
one, whose overrides every later KD run of the bench uses (the val set is evaluated once, afterwards).
"""
from __future__ import annotations

import json
from pathlib import Path

from mot_kd.bench.presets import CHECKPOINTS, Preset
from mot_kd.bench.runner import RunSpec, kd_config
from mot_kd.config import deep_merge
from mot_kd.errors import InputError
from mot_kd.utils.io import atomic_write_text

TUNING_FILE = "tuning.json"


def tune_specs(preset: Preset, out: Path) -> list[RunSpec]:
    """One all-losses KD run of the tune student per grid point, evaluated on the tune set."""
    if preset.tune is None:
        raise InputError(f"--tune: preset {preset.name} ({preset.path}) has no tune section")
    t = preset.tune
    return [RunSpec(f"tune/{point}", Path(out) / "tune" / point, "tune", t["student"], "all", t["seed"],
                    preset.student_epochs, kd_config("all", preset.kd, overrides), "tune",
                    CHECKPOINTS[preset.student_checkpoint])
            for point, overrides in t["grid"].items()]


def write_tuning(preset: Preset, out: Path, records: list[dict]) -> dict:
    """Score every point (mean of ``select_by`` on the tune set), choose the best, write OUT/tuning.json."""
    t, d = preset.tune, preset.data
    points = {}
    for point, record in zip(t["grid"], records):
        score = sum(record[m] for m in t["select_by"]) / len(t["select_by"])
        points[point] = {"overrides": t["grid"][point], "score": score,
                         **{m: record[m] for m in ("IDF1", "MOTA", "MT", "HOTA", "IDSW")}}
    chosen = max(points, key=lambda p: points[p]["score"])
    summary = {
        "tuned": "KD loss weights/temperatures: the grid points below, merged over configs/kd/default.yaml "
                 "and the preset's kd section",
        "tuned_on": f"tune set {', '.join(preset.sequence_names('tune'))} (seed {d['tune']['seed']}, "
                    f"{d['tune']['seqs']} x {d['frames']} frames, full split): it scored the point "
                    f"(each run evaluated with its {preset.student_checkpoint} checkpoint); the val set was not used",
        "student": t["student"], "seed": t["seed"], "select_by": t["select_by"], "points": points,
        "chosen": chosen, "chosen_overrides": t["grid"][chosen],
    }
    atomic_write_text(Path(out) / TUNING_FILE, json.dumps(summary, indent=1))
    return summary


def load_tuning(out: Path) -> dict | None:
    """OUT/tuning.json if ``--tune`` ran in this folder, else None (the preset's KD values are used)."""
    path = Path(out) / TUNING_FILE
    if not path.is_file():
        return None
    try:
        summary = json.loads(path.read_text())
        summary["chosen_overrides"], summary["tuned_on"]
    except (ValueError, KeyError, TypeError):
        raise InputError(f"{path}: not a bench tuning file (delete it and run --tune again)") from None
    return summary


def tuned_overrides(tuning: dict | None) -> dict | None:
    return None if tuning is None else deep_merge({}, tuning["chosen_overrides"])
