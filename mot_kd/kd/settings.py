"""KD configuration: user config merged over ``configs/kd/default.yaml``, validated, plus loss schedules.

Why the shipped default is the schema: one source of truth for every key and its default; a typo in a user
config is an error naming the key and the closest valid one, never a silently ignored setting.
"""
from __future__ import annotations

from pathlib import Path

from mot_kd.config import did_you_mean, load_yaml
from mot_kd.errors import InputError
from mot_kd.kd.decoders import FAMILY_GROUPS, check_head
from mot_kd.kd.tapspec import parse_taps

OUR_LOSSES = ("erc", "key_feature", "pred_diff")
BASELINE_LOSSES = ("logit", "fitnet", "cwd", "fgd", "embedding")  # the field's generic KD, for comparison
LOSS_NAMES = OUR_LOSSES + BASELINE_LOSSES
HEAD_LOSSES = ("pred_diff", "logit")  # read the head taps of their head family, decoded
TAP_GROUPS = {"erc": ("embedding",), "key_feature": ("neck",), "fitnet": ("neck",), "cwd": ("neck",),
              "fgd": ("neck",), "embedding": ("embedding",)}
SCHEDULE_KEYS = ("enabled", "weight", "start_epoch", "warmup_epochs", "stop_epoch")
POSITIVE_KEYS = ("tau", "temperature", "box_temperature")
FRACTION_KEYS = ("env_background",)  # in [0, 1]


def _merge(base: dict, update: dict, where: str) -> dict:
    """Deep-merge ``update`` into a copy of ``base``; unknown keys raise InputError."""
    merged = dict(base)
    for key, value in update.items():
        if key not in base:
            raise InputError(f"{where}: unknown key '{key}'{did_you_mean(key, base)}")
        if isinstance(base[key], dict) and base[key]:  # nested sections merge; teacher_taps ({}) is replaced
            if not isinstance(value, dict):
                raise InputError(f"{where}.{key}: expected a mapping, got {type(value).__name__}")
            merged[key] = _merge(base[key], value, f"{where}.{key}")
        else:
            merged[key] = value
    return merged


def _names(value, where: str) -> list[str | dict]:
    """Validated taps of one group in their plain config form (see mot_kd.kd.tapspec), so a resolved config
    stays JSON-serialisable and loads again unchanged."""
    return [spec.to_config() for spec in parse_taps(value, where)]


def _check_loss(name: str, cfg: dict, where: str) -> None:
    if not isinstance(cfg["enabled"], bool):
        raise InputError(f"{where}.enabled: expected true/false, got {cfg['enabled']!r}")
    for key, value in cfg.items():
        if key == "enabled" or (key == "stop_epoch" and value is None):
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}.{key}: expected a number, got {value!r}")
        if key in POSITIVE_KEYS and value <= 0:
            raise InputError(f"{where}.{key}: must be > 0, got {value}")
        if key not in POSITIVE_KEYS and value < 0:
            raise InputError(f"{where}.{key}: must be >= 0, got {value}")
        if key in FRACTION_KEYS and value > 1:
            raise InputError(f"{where}.{key}: must be in [0, 1], got {value}")
    if cfg["stop_epoch"] is not None and cfg["stop_epoch"] <= cfg["start_epoch"]:
        raise InputError(f"{where}.stop_epoch: must be > start_epoch ({cfg['start_epoch']}), got {cfg['stop_epoch']}")


def load_kd_config(cfg: str | Path | dict | None) -> dict:
    """Merged, validated KD config; ``cfg`` is None (defaults), a YAML path, a shipped name or a dict."""
    where = "kd config" if cfg is None or isinstance(cfg, dict) else str(cfg)
    user = load_yaml(cfg, "kd") if cfg is not None else {}
    if isinstance(user, dict) and "reg_max" in user:
        raise InputError(f"{where}: 'reg_max' is now head.reg_max (head: {{family: ultralytics, reg_max: N}})")
    merged = _merge(load_yaml("default", "kd"), user, where)
    merged["taps"] = {group: None if v is None else _names(v, f"{where}.taps.{group}")
                      for group, v in merged["taps"].items()}
    if not isinstance(merged["teacher_taps"], dict):
        raise InputError(f"{where}.teacher_taps: expected a mapping of tap group to taps")
    teacher = dict(merged["taps"])
    for group, value in merged["teacher_taps"].items():
        if group not in teacher:
            raise InputError(f"{where}.teacher_taps: unknown tap group '{group}'; groups: {', '.join(teacher)}")
        teacher[group] = None if value is None else _names(value, f"{where}.teacher_taps.{group}")
    merged["teacher_taps"] = teacher
    if merged["adapter"] not in ("auto", "always"):
        raise InputError(f"{where}.adapter: expected 'auto' or 'always', got {merged['adapter']!r}")
    merged["head"] = check_head(merged["head"], f"{where}.head")
    size = merged["build_input_size"]
    if size is not None and (not isinstance(size, list) or len(size) != 2
                             or not all(isinstance(v, int) and v > 0 for v in size)):
        raise InputError(f"{where}.build_input_size: expected [H, W] positive integers or null, got {size!r}")
    for name in LOSS_NAMES:
        _check_loss(name, merged["losses"][name], f"{where}.losses.{name}")
    if any(merged["losses"][n]["enabled"] for n in HEAD_LOSSES):
        _check_head_taps(merged, where)
    if len(merged["taps"]["embedding"]) != 1 or len(merged["teacher_taps"]["embedding"]) != 1:
        raise InputError(f"{where}: taps.embedding must name exactly one module")
    if len(merged["taps"]["neck"]) != len(merged["teacher_taps"]["neck"]):
        raise InputError(f"{where}: taps.neck and teacher_taps.neck list different numbers of levels")
    _check_schemes(merged, where)
    return merged


def _check_schemes(merged: dict, where: str) -> None:
    """The ``fused`` and ``mutual`` sections: schedules like the losses', fuse points that can be re-entered."""
    fused, mutual = merged["fused"], merged["mutual"]
    _check_loss("fused", {k: v for k, v in fused.items() if k != "points"}, f"{where}.fused")
    if mutual["enabled"] not in ("auto", True, False):
        raise InputError(f"{where}.mutual.enabled: expected auto, true or false, got {mutual['enabled']!r}")
    _check_loss("mutual", dict(mutual, enabled=mutual["enabled"] is True), f"{where}.mutual")
    points = fused["points"]
    if not isinstance(points, list) or not points or not all(isinstance(p, str) for p in points):
        raise InputError(f"{where}.fused.points: expected a non-empty list of tap groups, got {points!r}")
    for point in points if fused["enabled"] else ():
        responses = ("embedding", *FAMILY_GROUPS[merged["head"]["family"]])
        if point not in merged["taps"] or point in responses:
            groups = [g for g in merged["taps"] if merged["taps"][g] is not None and g not in responses]
            hint = did_you_mean(point, groups, "feature tap groups", always_list=True)
            raise InputError(f"{where}.fused.points: '{point}' is not a feature tap group before the head and "
                             f"embedding{hint}")
        for side in ("taps", "teacher_taps"):
            if merged[side][point] is None:
                raise InputError(f"{where}.{side}.{point}: fused point '{point}' needs its taps; set them")
            for spec in parse_taps(merged[side][point], f"{where}.{side}.{point}"):
                if spec.index or spec.input is not None or spec.call is not None or spec.layout == "BHWC":
                    raise InputError(f"{where}.{side}.{point}: tap '{spec.label}' cannot be re-entered: a fuse point "
                                     "must be a module's whole (B, C, H, W) output, without index/input/call/layout")
        if len(merged["taps"][point]) != len(merged["teacher_taps"][point]):
            raise InputError(f"{where}: taps.{point} and teacher_taps.{point} list different numbers of levels")


def tap_groups(cfg: dict, loss: str) -> tuple[str, ...]:
    """Tap groups a loss reads; pred_diff reads those of its head family (``head.family``), fused its fuse
    points and the responses (head family and embedding)."""
    if loss == "fused":
        return (*cfg["fused"]["points"], *FAMILY_GROUPS[cfg["head"]["family"]], "embedding")
    return FAMILY_GROUPS[cfg["head"]["family"]] if loss in HEAD_LOSSES else TAP_GROUPS[loss]


def _check_head_taps(merged: dict, where: str) -> None:
    """The head family's tap groups are set, for teacher and student alike, with matching level counts."""
    family = merged["head"]["family"]
    for group in FAMILY_GROUPS[family]:
        for side in ("taps", "teacher_taps"):
            if merged[side][group] is None:
                raise InputError(f"{where}.{side}.{group}: head family {family} decodes taps "
                                 f"{', '.join(FAMILY_GROUPS[family])}; set {group}")
        if len(merged["taps"][group]) != len(merged["teacher_taps"][group]):
            raise InputError(f"{where}: taps.{group} and teacher_taps.{group} list different numbers of levels")
    if family == "ultralytics" and len(merged["taps"]["box"]) != len(merged["taps"]["cls"]):
        raise InputError(f"{where}: taps.box and taps.cls must list the same levels")
    if family == "yolo_anchor" and len(merged["taps"]["pred"]) != len(merged["head"]["anchors"]):
        raise InputError(f"{where}: taps.pred lists {len(merged['taps']['pred'])} levels but head.anchors "
                         f"{len(merged['head']['anchors'])}")
    if family == "centernet":
        for group in FAMILY_GROUPS[family]:
            if len(merged["taps"][group]) != 1:
                raise InputError(f"{where}.taps.{group}: head family centernet has one level (stride 4), "
                                 f"got {len(merged['taps'][group])} taps")


def schedule_factor(cfg: dict, epoch: float | None) -> float:
    """Weight multiplier of one loss at ``epoch`` (None = always full weight when enabled)."""
    if not cfg["enabled"]:
        return 0.0
    if epoch is None:
        return 1.0
    if epoch < cfg["start_epoch"] or (cfg["stop_epoch"] is not None and epoch >= cfg["stop_epoch"]):
        return 0.0
    if cfg["warmup_epochs"] > 0:
        return min(1.0, (epoch - cfg["start_epoch"]) / cfg["warmup_epochs"])
    return 1.0
