"""Bench presets (``configs/bench/<name>.yaml``): data, models, configurations, seeds, tuning grid, cost model.

Why a strict schema: a preset defines hours of compute; a typo must stop the bench before it starts, with
a message naming the preset file and the key, never run the wrong experiment silently.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from mot_kd.config import load_extended, resolve_config
from mot_kd.data.synthetic_render import SceneConfig
from mot_kd.errors import InputError
from mot_kd.models.yolo_backbone import resolve_model_cfg
from mot_kd.nas.files import read_model_file  # the one reader of candidate files (nas retrain, the bench)

# Student configuration name -> KD config shipped in configs/kd/ (None: trained without KD).
CONFIGURATIONS = {
    "none": None,
    "all": "default",
    "erc": "erc_only",
    "key_feature": "key_feature_only",
    "pred_diff": "pred_diff_only",
    "no_erc": "no_erc",
    "no_key_feature": "no_key_feature",
    "no_pred_diff": "no_pred_diff",
    # the field's generic KD methods (docs/kd.md "Baselines")
    "logit": "logit",
    "fitnet": "fitnet",
    "cwd": "cwd",
    "fgd": "fgd",
    "embedding": "embedding",
    "best_baselines": "best_baselines",
    # the schemes of issue 15 (docs/kd.md): the three losses + fused-model distillation; + mutual learning, where
    # every architecture listing `mutual` trains together in one run (one teacher forward per batch)
    "fused": "fused",
    "mutual": "default",
}
METRICS = ("IDF1", "MOTA", "MT", "HOTA", "IDSW")
# student_checkpoint -> the trainer's checkpoint a student is evaluated with (the teacher: always best.pt).
CHECKPOINTS = {"best": "best.pt", "last": "last_student.pt"}
SETS = ("train", "tune", "val")
_KEYS = {"extends", "description", "data", "hyp", "eval", "teacher", "students", "student_epochs", "seeds", "kd",
         "tune", "cost", "device", "student_checkpoint", "models", "versus"}
_REQUIRED = {"data", "hyp", "teacher", "students", "student_epochs", "seeds", "cost"}
_SCENE_KEYS = set(SceneConfig.__dataclass_fields__) - {"width", "height", "frames"}
_VALUE_SECTIONS = ("data", "hyp", "eval", "teacher", "kd")  # settings: null there is a value, not a removal


@dataclass(frozen=True)
class Preset:
    name: str
    path: Path
    data: dict  # {width, height, frames, scene: {...}, train|tune|val: {seqs, seed}}
    hyp: dict  # merged over configs/train/default.yaml by the trainer
    eval: dict  # {conf, iou, tracker}
    teacher: dict  # {model, epochs, seed}
    students: dict[str, tuple[str, ...]]  # architecture -> configurations (keys of CONFIGURATIONS)
    student_epochs: int
    seeds: tuple[int, ...]
    kd: dict  # merged over every KD configuration (before tuned values)
    tune: dict | None  # {student, seed, select_by, grid: {point: overrides}}
    cost: dict  # {train_step_s: {arch: s}, teacher_forward_s, track_fps: {arch: fps}, hybrid_forward_s (fused)}
    device: str
    student_checkpoint: str = "best"  # key of CHECKPOINTS: best (on the tune set) or last epoch
    models: dict = field(default_factory=dict)  # student name -> {cfg (model YAML dict), id_dim or None}
    versus: dict = field(default_factory=dict)  # student -> reference student, compared per shared configuration

    @property
    def imgsz(self) -> tuple[int, int]:
        return tuple(self.hyp["imgsz"])

    def sequence_names(self, which: str) -> list[str]:
        """Sequence folder names of one set: TRAIN-01.., TUNE-01.., VAL-01.. (one data root holds all three)."""
        return [f"{which.upper()}-{i:02d}" for i in range(1, self.data[which]["seqs"] + 1)]


def _int(value, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _mapping(value, where: str, keys: set[str] | None = None, required: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a mapping, got {value!r}")
    if keys is not None and set(value) - keys:
        raise InputError(f"{where}: unknown key(s) {', '.join(sorted(set(value) - keys))}; known: "
                         f"{', '.join(sorted(keys))}")
    missing = sorted(required - set(value))
    if missing:
        raise InputError(f"{where}: missing key(s) {', '.join(missing)}")
    return dict(value)


def _positive_numbers(value, where: str) -> dict:
    table = _mapping(value, where)
    for key, number in table.items():
        if isinstance(number, bool) or not isinstance(number, (int, float)) or number <= 0:
            raise InputError(f"{where}.{key}: expected a positive number, got {number!r}")
    return table


def _data(value, where: str) -> dict:
    data = _mapping(value, where, {"width", "height", "frames", "scene", *SETS}, {"width", "height", "frames", *SETS})
    for key in ("width", "height", "frames"):
        _int(data[key], f"{where}.{key}")
    data["scene"] = _mapping(data.get("scene", {}), f"{where}.scene", _SCENE_KEYS)
    try:
        SceneConfig(width=data["width"], height=data["height"], frames=data["frames"], **data["scene"]).validate()
    except InputError as exc:
        raise InputError(f"{where}: {exc}") from None
    seeds = []
    for which in SETS:
        part = _mapping(data[which], f"{where}.{which}", {"seqs", "seed"}, {"seqs", "seed"})
        _int(part["seqs"], f"{where}.{which}.seqs")
        seeds.append(_int(part["seed"], f"{where}.{which}.seed", 0))
        data[which] = part
    if len(set(seeds)) != len(seeds):
        raise InputError(f"{where}: train, tune and val need different seeds (different people), got {seeds}")
    return data


def _models(value, where: str, students: dict) -> dict:
    """``models: {name: file}``: students whose architecture is a NAS candidate JSON or a model YAML.

    The file is read now (paths relative to the working folder): a missing or wrong file stops the bench before
    anything runs, and the run fingerprints pin the model's rows, not the path (an edited file makes runs stale).
    """
    models = {}
    for name, path in _mapping(value if value is not None else {}, where).items():
        here = f"{where}.{name}"
        if name not in students:
            raise InputError(f"{here}: not one of the preset's students ({', '.join(students)})")
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", name):
            raise InputError(f"{here}: a models: name is a folder name: letters, digits, '_', '.', '-' only")
        try:
            resolve_model_cfg(name)
        except InputError:
            pass
        else:
            raise InputError(f"{here}: {name} is a shipped model; give this architecture its own name")
        if not isinstance(path, str) or not path:
            raise InputError(f"{here}: expected a file path (a NAS candidate .json or a model .yaml), got {path!r}")
        if not Path(path).is_file():
            raise InputError(f"{here}: {path}: no such file (candidates: `python -m mot_kd.nas search` writes "
                             "best.json, `nas pick` pick_N.json; paths are relative to the working folder)")
        models[name] = read_model_file(path, here)
    return models


def _versus(value, where: str, students: dict) -> dict:
    """``versus: {student: reference}``: the report compares the two architectures' rows of each configuration
    both train (e.g. a searched student against yolov5n at equal GFLOPs, with and without KD)."""
    pairs = _mapping(value if value is not None else {}, where)
    for arch, ref in pairs.items():
        for name in (arch, ref):
            if name not in students:
                raise InputError(f"{where}.{arch}: {name!r} is not one of the preset's students "
                                 f"({', '.join(students)})")
        if arch == ref or not set(students[arch]) & set(students[ref]):
            raise InputError(f"{where}.{arch}: needs another student sharing a configuration with it, got {ref!r}")
    return pairs


def _students(value, where: str) -> dict[str, tuple[str, ...]]:
    """``{architecture: (configurations)}``; see load_preset for the rules on 'none' and 'mutual'."""
    students = _mapping(value, f"{where}: students")
    if not students:
        raise InputError(f"{where}: students: expected {{architecture: [configurations]}}, got nothing")
    for arch, configurations in students.items():
        here = f"{where}: students.{arch}"
        if not isinstance(configurations, list) or not configurations:
            raise InputError(f"{here}: expected a list of configurations, got {configurations!r}")
        unknown = sorted(set(map(str, configurations)) - set(CONFIGURATIONS))
        if unknown:
            raise InputError(f"{here}: unknown configuration(s) {', '.join(unknown)}; "
                             f"known: {', '.join(CONFIGURATIONS)}")
        students[arch] = tuple(configurations)
    return students


def _tune(value, where: str, students: tuple[str, ...]) -> dict | None:
    if value is None:
        return None
    tune = _mapping(value, where, {"student", "seed", "select_by", "grid"}, {"student", "grid"})
    if tune["student"] not in students:
        raise InputError(f"{where}.student: {tune['student']!r} is not one of the preset's students {list(students)}")
    tune["seed"] = _int(tune.get("seed", 0), f"{where}.seed", 0)
    select_by = tune.get("select_by", ["IDF1", "MOTA"])
    if not isinstance(select_by, list) or not select_by or set(select_by) - {"IDF1", "MOTA", "HOTA"}:
        raise InputError(f"{where}.select_by: expected a list from IDF1, MOTA, HOTA, got {select_by!r}")
    tune["select_by"] = list(select_by)
    grid = _mapping(tune["grid"], f"{where}.grid")
    if not grid:
        raise InputError(f"{where}.grid: needs at least one point")
    for point, overrides in grid.items():
        _mapping(overrides if overrides is not None else {}, f"{where}.grid.{point}", {"losses"})
        grid[point] = overrides or {}
    tune["grid"] = grid
    return tune


def load_preset(name_or_path: str | Path) -> Preset:
    """Load and check a preset: a name shipped in ``configs/bench/`` (smoke, cpu, gpu) or a YAML path."""
    path = resolve_config(name_or_path, "bench")
    raw = load_extended(path, "bench", _VALUE_SECTIONS)
    raw = _mapping(raw, str(path), _KEYS, _REQUIRED)
    where = str(path)
    students = _students(raw["students"], where)
    models = _models(raw.get("models"), f"{where}: models", students)
    for arch, configurations in students.items():
        # 'none' is every student's reference row; a models: student may skip it (e.g. the candidates whose
        # retrained KD score only checks the search's ranking, `nas correlate`): no-KD runs would double their cost
        if arch not in models:
            try:
                resolve_model_cfg(arch)
            except InputError as exc:
                raise InputError(f"{where}: students.{arch}: {exc}; or name its file under models:") from None
            if "none" not in configurations or len(configurations) < 2:
                raise InputError(f"{where}: students.{arch}: expected a list holding 'none' and at least one KD "
                                 f"configuration, got {list(configurations)!r}")
        elif "mutual" in configurations:
            raise InputError(f"{where}: students.{arch}: a models: student cannot join 'mutual' (one team shares one "
                             "id_dim; a candidate brings its own)")
    team = [arch for arch, configurations in students.items() if "mutual" in configurations]
    if len(team) == 1:
        raise InputError(f"{where}: students.{team[0]}: configuration 'mutual' trains the students that list it "
                         "together; list it for at least two architectures")
    seeds = raw["seeds"]
    if not isinstance(seeds, list) or not seeds or len(set(seeds)) != len(seeds):
        raise InputError(f"{where}: seeds: expected a list of distinct integers, got {seeds!r}")
    teacher = _mapping(raw["teacher"], f"{where}: teacher", {"model", "epochs", "seed"}, {"model", "epochs"})
    _int(teacher["epochs"], f"{where}: teacher.epochs")
    teacher["seed"] = _int(teacher.get("seed", 0), f"{where}: teacher.seed", 0)
    hyp = _mapping(raw["hyp"], f"{where}: hyp", required={"imgsz"})
    if "epochs" in hyp or "seed" in hyp:
        raise InputError(f"{where}: hyp: set epochs with teacher.epochs/student_epochs and seeds with seeds:, "
                         "not in hyp")
    needed = {"train_step_s", "teacher_forward_s", "track_fps"}
    cost = _mapping(raw["cost"], f"{where}: cost", needed | {"hybrid_forward_s"}, needed)
    if "hybrid_forward_s" in cost:  # fused configuration: per fuse point and step (hybrid forward + its backward)
        _positive_numbers({"hybrid_forward_s": cost["hybrid_forward_s"]}, f"{where}: cost")
    elif any("fused" in c for c in students.values()):
        raise InputError(f"{where}: cost.hybrid_forward_s: needed for the fused configuration's time estimate")
    cost["train_step_s"] = _positive_numbers(cost["train_step_s"], f"{where}: cost.train_step_s")
    cost["track_fps"] = _positive_numbers(cost["track_fps"], f"{where}: cost.track_fps")
    _positive_numbers({"teacher_forward_s": cost["teacher_forward_s"]}, f"{where}: cost")
    for arch in (teacher["model"], *students):
        for table in ("train_step_s", "track_fps"):
            if arch not in cost[table]:
                raise InputError(f"{where}: cost.{table}: no entry for {arch} (needed for the time estimate)")
    checkpoint = raw.get("student_checkpoint", "best")
    if checkpoint not in CHECKPOINTS:
        raise InputError(f"{where}: student_checkpoint: expected one of {', '.join(CHECKPOINTS)}, got {checkpoint!r}")
    return Preset(
        name=path.stem, path=path, data=_data(raw["data"], f"{where}: data"), hyp=hyp,
        eval=_mapping(raw.get("eval", {}), f"{where}: eval", {"conf", "iou", "tracker"}), teacher=teacher,
        students=students, student_epochs=_int(raw["student_epochs"], f"{where}: student_epochs"),
        seeds=tuple(_int(s, f"{where}: seeds", 0) for s in seeds),
        kd=_mapping(raw.get("kd", {}), f"{where}: kd"), tune=_tune(raw.get("tune"), f"{where}: tune", tuple(students)),
        cost=cost, device=str(raw.get("device", "auto")), student_checkpoint=checkpoint, models=models,
        versus=_versus(raw.get("versus"), f"{where}: versus", students))
