"""The search space: a YAML of per-stage choices, candidates as plain dicts, and their standalone models.

Why candidates are plain dicts that rewrite the base model YAML's rows: the built network is then an ordinary
:class:`~mot_kd.models.JDEModel` whose ``arch["cfg"]`` holds the edited rows, so its checkpoint loads in every
CLI with no search code, and params/GFLOPs come from :func:`mot_kd.models.info.model_card` on the real model.
"""
from __future__ import annotations

import copy
import random
from dataclasses import dataclass
from pathlib import Path

from mot_kd.config import check_keys, did_you_mean, load_yaml
from mot_kd.errors import InputError
from mot_kd.models.jde_model import JDEModel
from mot_kd.models.yolo_backbone import resolve_model_cfg

BLOCKS = {"C3": (3, 5), "C3Ghost": (3,), "InvertedResidualSE": (3, 5)}  # block type -> kernels it allows
CHOICES = ("width", "depth", "block", "kernel", "neck_width", "neck_depth", "id_dim")
SPACE_KEYS = ("base", "stages", *CHOICES, "expand", "imgsz")
CANDIDATE_KEYS = ("base", "rows", "stages", "neck_width", "neck_depth", "id_dim", "expand")
STAGE_KEYS = ("block", "width", "depth", "kernel")


@dataclass(frozen=True)
class SearchSpace:
    """A validated search space; ``where`` (its file) prefixes every error about it."""

    where: str
    base: str
    stages: tuple[int, ...]
    choices: dict
    expand: int
    imgsz: tuple[int, int]

    def sample(self, rng: random.Random) -> dict:
        """One uniformly random candidate (a kernel only where the sampled block allows it)."""
        stages = []
        for _ in self.stages:
            block = rng.choice(self.choices["block"])
            kernels = [k for k in self.choices["kernel"] if k in BLOCKS[block]] or [3]
            stages.append({"block": block, "width": rng.choice(self.choices["width"]),
                           "depth": rng.choice(self.choices["depth"]), "kernel": rng.choice(kernels)})
        return self.candidate(stages, rng.choice(self.choices["neck_width"]), rng.choice(self.choices["neck_depth"]),
                              rng.choice(self.choices["id_dim"]))

    def candidate(self, stages: list[dict], neck_width: float, neck_depth: int, id_dim: int) -> dict:
        return {"base": self.base, "rows": list(self.stages), "stages": stages, "neck_width": neck_width,
                "neck_depth": neck_depth, "id_dim": id_dim, "expand": self.expand}

    def contains(self, candidate: dict, where: str = "candidate") -> None:
        """InputError naming the first key of ``candidate`` whose value is not one of this space's choices."""
        check_candidate(candidate, where)
        pairs = [(f"{where}.stages[{i}].{k}", k, s[k]) for i, s in enumerate(candidate["stages"]) for k in STAGE_KEYS]
        pairs += [(f"{where}.{k}", k, candidate[k]) for k in ("neck_width", "neck_depth", "id_dim")]
        for name, key, value in pairs:
            allowed = self.choices[key] if not (key == "kernel" and value == 3) else [3, *self.choices["kernel"]]
            if value not in allowed:
                raise InputError(f"{name}: {value!r} is not in the space {self.where} ({key}: {self.choices[key]})")
        fixed = (candidate["base"], candidate["rows"], candidate["expand"])
        if fixed != (self.base, list(self.stages), self.expand):
            raise InputError(f"{where}: base/rows/expand differ from the space {self.where}")


def load_space(path_or_name: str | Path | dict) -> SearchSpace:
    """Read and validate a search-space YAML (``configs/nas/<name>.yaml``, a path or a dict)."""
    data = load_yaml(path_or_name, "nas")
    where = "search space" if isinstance(path_or_name, dict) else str(path_or_name)
    check_keys(data, SPACE_KEYS, where)
    for key in SPACE_KEYS:
        if key not in data:
            raise InputError(f"{where}: missing key '{key}'")
    choices = {}
    for key in CHOICES:
        values = data[key]
        if not isinstance(values, list) or not values:
            raise InputError(f"{where}: {key}: expected a non-empty list of choices, got {values!r}")
        for v in values:
            _check_value(key, v, f"{where}: {key}")
        choices[key] = list(values)
    base_rows = _base_rows(data["base"], where)
    stages = data["stages"]
    if not isinstance(stages, list) or not stages or not all(isinstance(r, int) and not isinstance(r, bool)
                                                             for r in stages):
        raise InputError(f"{where}: stages: expected a non-empty list of backbone row indices, got {stages!r}")
    for r in stages:
        _check_stage_row(base_rows, r, f"{where}: stages")
    expand, imgsz = data["expand"], data["imgsz"]
    if not isinstance(expand, int) or isinstance(expand, bool) or expand < 1:
        raise InputError(f"{where}: expand: expected a positive integer, got {expand!r}")
    if (not isinstance(imgsz, list) or len(imgsz) != 2
            or not all(isinstance(v, int) and v >= 32 and v % 32 == 0 for v in imgsz)):
        raise InputError(f"{where}: imgsz: expected [W, H], multiples of 32, got {imgsz!r}")
    return SearchSpace(where, data["base"], tuple(stages), choices, expand, tuple(imgsz))


def check_candidate(candidate: dict, where: str = "candidate") -> dict:
    """InputError naming the first malformed key of a candidate dict (types, block names, kernels)."""
    if not isinstance(candidate, dict):
        raise InputError(f"{where}: expected a dict, got {type(candidate).__name__}")
    check_keys(candidate, CANDIDATE_KEYS, where)
    for key in CANDIDATE_KEYS:
        if key not in candidate:
            raise InputError(f"{where}: missing key '{key}'")
    stages, rows = candidate["stages"], candidate["rows"]
    if not isinstance(stages, list) or not isinstance(rows, list) or len(stages) != len(rows) or not stages:
        raise InputError(f"{where}.stages: expected one dict per row of rows {rows!r}")
    for i, stage in enumerate(stages):
        if not isinstance(stage, dict):
            raise InputError(f"{where}.stages[{i}]: expected a dict, got {type(stage).__name__}")
        check_keys(stage, STAGE_KEYS, f"{where}.stages[{i}]")
        for key in STAGE_KEYS:
            if key not in stage:
                raise InputError(f"{where}.stages[{i}]: missing key '{key}'")
            _check_value(key, stage[key], f"{where}.stages[{i}].{key}")
        if stage["kernel"] not in BLOCKS[stage["block"]]:
            raise InputError(f"{where}.stages[{i}].kernel: {stage['block']} allows kernel "
                             f"{'/'.join(map(str, BLOCKS[stage['block']]))}, got {stage['kernel']}")
    for key in ("neck_width", "neck_depth", "id_dim"):
        _check_value(key, candidate[key], f"{where}.{key}")
    _check_value("depth", candidate["expand"], f"{where}.expand")
    return candidate


def candidate_cfg(candidate: dict) -> dict:
    """The model YAML dict (explicit channels and depths, no scales table) a candidate's model is built from."""
    cfg = _base_cfg(candidate["base"])
    base_rows = cfg["backbone"]
    for r in candidate["rows"]:
        _check_stage_row(base_rows, r, "candidate.rows")
    backbone, neck = copy.deepcopy(base_rows), copy.deepcopy(cfg["neck"])
    out = _channels(base_rows[0][3][0], candidate["stages"][0]["width"])
    backbone[0][3][0] = out  # the stem follows the first stage's width
    for r, stage in zip(candidate["rows"], candidate["stages"]):
        c = _channels(base_rows[r][3][0], stage["width"])
        down = backbone[r - 1]
        backbone[r - 1] = [down[0], 1, "GhostConv" if stage["block"] == "C3Ghost" else "Conv", [c, *down[3][1:]]]
        backbone[r] = [-1, *_stage_row(stage, c, candidate["expand"])]
        out = c
    for row in backbone[max(candidate["rows"]) + 1:]:
        if row[2] in ("Conv", "SPPF", "C3"):  # rows after the last searched stage keep its width (SPPF)
            row[3][0] = out
    for row in neck:
        if row[2] in ("Conv", "C3"):
            row[3][0] = _channels(row[3][0], candidate["neck_width"])
        if row[2] == "C3":
            row[1] = candidate["neck_depth"]
    cfg = {k: v for k, v in cfg.items() if k != "scales"}
    cfg.update(backbone=backbone, neck=neck)
    return cfg


def build_candidate(candidate: dict, nc: int = 1, names: list[str] | None = None) -> JDEModel:
    """The candidate as a standalone model; ``arch["candidate"]`` keeps the dict (checkpoints, retrain)."""
    check_candidate(candidate)
    names = list(names) if names is not None else ["pedestrian"] if nc == 1 else [f"class{i}" for i in range(nc)]
    return JDEModel({"name": "nas", "cfg": candidate_cfg(candidate), "scale": None, "nc": nc,
                     "id_dim": candidate["id_dim"], "names": names, "candidate": copy.deepcopy(candidate)})


def _stage_row(stage: dict, c: int, expand: int) -> list:
    block, n, k = stage["block"], stage["depth"], stage["kernel"]
    if block == "InvertedResidualSE":
        return [1, "InvertedResidualStage", [c, n, k, expand]]
    if block == "C3" and k != 3:  # ultralytics' C3k takes explicit (c1, c2, n, shortcut, g, e, k)
        return [1, "C3k", [c, c, n, True, 1, 0.5, k]]
    return [n, block, [c]]


def _channels(base: int, width: float) -> int:
    """Base channels times a width multiplier, to a multiple of 8 (as ultralytics' make_divisible), >= 8."""
    return max(8, int(round(base * width / 8)) * 8)


def _base_rows(base, where: str) -> list:
    if not isinstance(base, str):
        raise InputError(f"{where}: base: expected a model name (e.g. yolov5), got {base!r}")
    try:
        return _base_cfg(base)["backbone"]
    except InputError as exc:
        raise InputError(f"{where}: base: {exc}") from None


def _base_cfg(base: str) -> dict:
    """The base model YAML (``configs/models/<base>.yaml``), checked as the model builder checks it."""
    cfg = load_yaml(base, "models")
    resolve_model_cfg({**cfg, "scales": None})
    return cfg


def _check_stage_row(rows: list, r, where: str) -> None:
    if not (isinstance(r, int) and 1 <= r < len(rows)) or rows[r][2] != "C3" or rows[r - 1][2] != "Conv":
        raise InputError(f"{where}: row {r!r} is not a C3 stage after a downsampling Conv in the base model")


def _check_value(key: str, value, where: str) -> None:
    if key == "block":
        if value not in BLOCKS:
            raise InputError(f"{where}: unknown block type {value!r}{did_you_mean(value, BLOCKS, 'known')}")
        return
    if key in ("width", "neck_width"):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and 0 < value <= 4
    elif key == "kernel":
        ok = value in (3, 5) and not isinstance(value, bool)
    elif key == "id_dim":
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 2
    else:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
    if not ok:
        expected = {"width": "a number in (0, 4]", "neck_width": "a number in (0, 4]", "kernel": "3 or 5",
                    "id_dim": "an integer >= 2"}.get(key, "a positive integer")
        raise InputError(f"{where}: expected {expected}, got {value!r}")
