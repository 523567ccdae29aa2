"""Shared by the KD bench tests: a variant of the smoke preset and a hand-made run record."""
from __future__ import annotations

from pathlib import Path

import yaml

from mot_kd.config import CONFIG_ROOT


def smoke_variant(tmp_path: Path, **changes) -> Path:
    """The smoke preset with ``changes`` (``a__b=value`` sets raw[a][b]) written to a file."""
    raw = yaml.safe_load((CONFIG_ROOT / "bench" / "smoke.yaml").read_text())
    for dotted, value in changes.items():
        node, keys = raw, dotted.split("__")
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value
    path = tmp_path / "preset.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_record(role: str, arch: str, configuration: str | None, seed: int, value: float) -> dict:
    """A finished run's record whose every metric is ``value`` (MT 10x, IDSW 5)."""
    return {"role": role, "arch": arch, "configuration": configuration, "seed": seed, "IDF1": value, "MOTA": value,
            "MT": 10 * value, "HOTA": value, "IDSW": 5, "params_M": 1.0, "GFLOPs": 2.0, "FPS": 30.0}
