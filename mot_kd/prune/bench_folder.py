"""The finished KD bench folder a prune bench starts from, and the settings it ran with.

Why read the folder rather than repeat its preset: the prune bench's "from scratch" rows re-evaluate the KD
bench's own yolov5n runs, and its pruned models must be fine-tuned, distilled and evaluated exactly as those
runs were (hyper-parameters, detection thresholds, tracker, KD weights). ``OUT/configs/hyp.yaml`` is the KD
bench's ``hyp`` + ``eval`` as it ran, each KD run's ``kd.yaml`` its fully resolved KD config and each run's
``eval.json`` names the checkpoint it evaluated; a hand-copied duplicate of any of them could drift.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from mot_kd.bench.presets import load_preset as load_kd_preset
from mot_kd.config import load_yaml
from mot_kd.errors import InputError
from mot_kd.train.settings import resolve_settings
from trackers.config import load_tracker_config


@dataclass(frozen=True)
class KDBench:
    root: Path
    teacher: Path  # the checkpoint runs/teacher/eval.json names (the one the KD bench evaluated and distilled from)
    data: Path  # configs/data.yaml: train TRAIN-*, validate (best.pt, the seed importance's w) on TUNE-*
    hyp: Path  # configs/hyp.yaml: the KD bench's hyp + eval
    val: tuple[str, ...]  # the VAL-* sequences every final model is reported on
    scratch: dict  # (configuration, seed) -> that run's eval.json record (its "weights" relative to root)
    kd: dict  # seed -> runs/<model>/<kd configuration>/seed<k>/kd.yaml

    def settings(self, seed: int, overrides: dict) -> dict:
        """The trainer settings of one prune-bench run: the KD bench's, then the prune preset's overrides."""
        return resolve_settings(str(self.hyp), {"seed": seed}, [f"{k}={json.dumps(v)}" for k, v in overrides.items()])

    def scratch_weights(self, configuration: str, seed: int) -> Path:
        return self.root / self.scratch[configuration, seed]["weights"]


def open_bench(preset: dict) -> KDBench:
    """Check that ``from_bench`` holds everything the prune preset needs; one line naming what is missing and the
    command that makes it otherwise. Also refuses a folder whose settings are not its ``bench_preset``'s and a
    tracker config changed since the KD bench ran."""
    root, model = Path(preset["from_bench"]), preset["scratch"]["model"]
    make = f"run `python -m mot_kd.bench --preset {preset['bench_preset']} --out {root}` first"

    def need(path: Path) -> Path:
        if not path.is_file():
            raise InputError(f"from_bench {root}: no finished KD bench there (needs {path}); {make}")
        return path

    def record(path: Path, key: str) -> dict:
        """A JSON record of the KD bench holding ``key``; a hand-edited or truncated one is named, not a KeyError."""
        try:
            found = json.loads(need(path).read_text())
        except ValueError:
            found = None
        if not isinstance(found, dict) or key not in found:
            raise InputError(f"{path}: unreadable run record of the KD bench (no '{key}' in it); {make}")
        return found

    data, hyp = need(root / "configs" / "data.yaml"), need(root / "configs" / "hyp.yaml")
    made = load_kd_preset(preset["bench_preset"])
    expected, ran = {**made.hyp, **made.eval}, load_yaml(hyp, "train")
    differ = sorted(k for k in expected.keys() | ran.keys() if expected.get(k) != ran.get(k))
    if differ:  # another preset made the folder: the command named above would be the wrong one
        raise InputError(f"from_bench {root}: its configs/hyp.yaml is not what the KD bench preset "
                         f"{preset['bench_preset']} runs with ({differ[0]}: {ran.get(differ[0])!r} there, "
                         f"{expected.get(differ[0])!r} in the preset); set bench_preset to the preset that made it")
    teacher = need(root / record(root / "runs" / "teacher" / "eval.json", "weights")["weights"])
    val = tuple(sorted(p.name for p in (root / "data").glob("VAL-*") if p.is_dir()))
    if not val:
        raise InputError(f"from_bench {root}: no finished KD bench there (needs {root / 'data'}/VAL-*); {make}")
    scratch, kd = {}, {}
    for seed in preset["seeds"]:
        for conf in preset["scratch"]["runs"].values():
            scratch[conf, seed] = record(root / "runs" / model / conf / f"seed{seed}" / "eval.json", "weights")
            need(root / scratch[conf, seed]["weights"])
        kd[seed] = need(root / "runs" / model / preset["kd_configuration"] / f"seed{seed}" / "kd.yaml")
    bench = KDBench(root, teacher, data, hyp, val, scratch, kd)
    pinned = record(root / "runs" / "teacher" / "spec.json", "tracker")["tracker"]
    tracker = bench.settings(preset["seeds"][0], {})["tracker"]
    if json.loads(json.dumps(load_tracker_config(tracker))) != pinned:
        raise InputError(f"tracker {tracker!r}: its config (configs/tracker/) differs from the one the KD bench in "
                         f"{root} ran with (runs/teacher/spec.json), so its runs re-evaluated here would not match its "
                         "numbers: restore it, or rerun the KD bench in another --out")
    return bench
