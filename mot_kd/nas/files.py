"""Candidate and model files on disk: a search's JSON records (best.json, ``nas pick``'s files) and model YAMLs.

Why one reader: ``nas retrain``, the KD bench's ``models:`` students and ``nas correlate`` must agree on what a
file holds (a search record ``{"candidate": {...}, ...}``, a bare candidate dict, or a model YAML such as the
``candidate.yaml`` retrain writes), and on the model YAML the trainer's ``--model``/``--student`` is given.
"""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from mot_kd.errors import InputError
from mot_kd.models.yolo_backbone import resolve_model_cfg
from mot_kd.nas.space import candidate_cfg, check_candidate
from mot_kd.utils.io import atomic_write_text


def read_candidate(path: str | Path, where: str) -> dict:
    """The checked candidate dict of a JSON file (a search record or a bare candidate); ``where`` names the flag."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{where} {path}: no such file")
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{where} {path}: not JSON ({exc.msg} at line {exc.lineno})") from None
    return check_candidate(data.get("candidate", data) if isinstance(data, dict) else data, f"{where} {path}")


def candidate_model_cfg(candidate: dict) -> dict:
    """The model YAML dict of a candidate: its rows plus the candidate itself (kept in checkpoints' arch)."""
    return {**candidate_cfg(candidate), "candidate": candidate}


def read_model_file(path: str | Path, where: str) -> dict:
    """``{"cfg": model YAML dict, "id_dim": int | None}`` of a candidate JSON or a model YAML.

    A candidate fixes its embedding size (``id_dim``, a searched choice); a plain model YAML leaves it to the
    training settings (None). Anything else (a missing file, another YAML, a malformed candidate) is an error.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{where}: {path}: no such file")
    if path.suffix == ".json":
        candidate = read_candidate(path, f"{where}:")
        return {"cfg": candidate_model_cfg(candidate), "id_dim": candidate["id_dim"]}
    if path.suffix not in (".yaml", ".yml"):
        raise InputError(f"{where}: {path}: expected a NAS candidate (.json) or a model YAML (.yaml)")
    try:
        cfg = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        raise InputError(f"{where}: {path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(cfg, dict):
        raise InputError(f"{where}: {path}: not a model YAML (expected a mapping with backbone, neck, outputs)")
    try:
        resolve_model_cfg(cfg)
    except InputError as exc:
        raise InputError(f"{where}: {path}: not a model YAML ({exc})") from None
    if cfg.get("scales"):
        raise InputError(f"{where}: {path}: a scaled model YAML needs a scale; give a shipped name (e.g. yolov5n) "
                         "or a YAML with explicit channels")
    if "candidate" in cfg:
        candidate = check_candidate(cfg["candidate"], f"{where}: {path}: candidate")
        if {k: v for k, v in cfg.items() if k != "candidate"} != candidate_cfg(candidate):
            raise InputError(f"{where}: {path}: its rows differ from its candidate's (edited by hand?); write it "
                             "again from the candidate")
        return {"cfg": cfg, "id_dim": candidate["id_dim"]}
    return {"cfg": cfg, "id_dim": None}


def write_candidate_yaml(candidate: dict, path: str | Path) -> Path:
    """The model YAML the trainer's ``--model``/``--student`` builds the candidate from (atomic)."""
    path = Path(path)
    atomic_write_text(path, yaml.safe_dump(candidate_model_cfg(candidate), sort_keys=False))
    return path
