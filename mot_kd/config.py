"""Resolve and load YAML configs: a file path, or a name shipped under ``configs/<kind>/``."""
from __future__ import annotations

from pathlib import Path

import yaml

from mot_kd.errors import InputError

CONFIG_ROOT = Path(__file__).resolve().parent.parent / "configs"


def resolve_config(path_or_name: str | Path, kind: str) -> Path:
    """Return the YAML file for ``path_or_name``: an existing path, else ``configs/<kind>/<name>.yaml``."""
    path = Path(path_or_name)
    if path.is_file():
        return path
    shipped = CONFIG_ROOT / kind / f"{path.stem if path.suffix in ('.yaml', '.yml') else path.name}.yaml"
    if shipped.is_file():
        return shipped
    available = sorted(p.stem for p in (CONFIG_ROOT / kind).glob("*.yaml"))
    raise InputError(f"{path_or_name}: no such {kind} config file; shipped ones: {', '.join(available) or 'none'}")


def load_yaml(path_or_name: str | Path | dict, kind: str) -> dict:
    """Load a config as a dict (a dict passes through as a copy)."""
    if isinstance(path_or_name, dict):
        return dict(path_or_name)
    path = resolve_config(path_or_name, kind)
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: invalid YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def deep_merge(base: dict, update: dict) -> dict:
    """A copy of ``base`` with ``update`` merged in, nested mappings key by key (anything else replaced)."""
    merged = dict(base)
    for key, value in update.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(merged.get(key), dict) \
            else value
    return merged
