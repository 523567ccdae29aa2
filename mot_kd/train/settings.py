"""Hyper-parameters: shipped defaults (configs/train/default.yaml) < --hyp file < flags < --set k=v."""
from __future__ import annotations

import yaml

from mot_kd.config import did_you_mean, load_yaml
from mot_kd.data.augment import AugmentConfig
from mot_kd.data.data_config import KEYS as DATA_KEYS
from mot_kd.errors import InputError
from mot_kd.models.predict import check_imgsz


def parse_overrides(pairs: list[str]) -> dict:
    """``["lr0=0.001", "imgsz=[320, 192]"]`` -> dict, values parsed as YAML scalars/lists."""
    out = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set {pair!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise InputError(f"--set {pair!r}: value is not valid YAML") from None
    return out


def _check_type(key: str, value, default) -> None:
    """A value must have its default's type (ints pass for floats; ``augment`` may be null)."""
    if key == "augment" and value is None:
        return
    expected = (int, float) if isinstance(default, float) else type(default)
    if isinstance(value, bool) and expected is not bool or not isinstance(value, expected):
        raise InputError(f"{key}: expected {type(default).__name__} like the default {default!r}, got {value!r}")


def resolve_settings(hyp: str | None, flags: dict, overrides: list[str]) -> dict:
    defaults = load_yaml("default", "train")
    settings = dict(defaults)
    if hyp:
        settings.update(load_yaml(hyp, "train"))
    settings.update({k: v for k, v in flags.items() if v is not None})
    settings.update(parse_overrides(overrides))
    for key in settings:
        if key in DATA_KEYS and key not in defaults:
            raise InputError(f"unknown hyper-parameter '{key}': it is a data-config key; set `{key}: ...` in the "
                             f"--data YAML")
        if key not in defaults:
            raise InputError(f"unknown hyper-parameter '{key}'{did_you_mean(key, sorted(defaults), 'known')}")
    for key, default in defaults.items():
        _check_type(key, settings[key], default)
    if len(settings["imgsz"]) != 2 or not all(isinstance(v, int) for v in settings["imgsz"]):
        raise InputError(f"imgsz: expected [W, H], got {settings['imgsz']!r}")
    imgsz = check_imgsz(settings["imgsz"])
    if settings["augment"] is not None:
        AugmentConfig.from_dict(settings["augment"])  # its keys and values, before anything is built
    for key in ("epochs", "batch", "nbs", "val_interval", "max_bad_steps"):
        if not isinstance(settings[key], int) or settings[key] < 1:
            raise InputError(f"{key}: expected a positive integer, got {settings[key]!r}")
    settings["imgsz"] = list(imgsz)
    return settings
