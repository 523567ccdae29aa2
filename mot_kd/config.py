"""Resolve and load YAML configs: a file path, or a name shipped under ``configs/<kind>/``."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable

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


def deep_merge(base: dict, update: dict, null_removes: bool = False) -> dict:
    """A copy of ``base`` with ``update`` merged in, nested mappings key by key (anything else replaced);
    with ``null_removes`` a key set to None in ``update`` removes the base's key (a variant dropping a part)."""
    merged = dict(base)
    for key, value in update.items():
        if value is None and null_removes:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value, null_removes)
        else:
            merged[key] = value
    return merged


def load_extended(path_or_name: str | Path, kind: str, value_sections: Iterable[str] = ()) -> dict:
    """Load a preset whose ``extends: BASE`` takes the base's keys (its own base's first) with this file's merged
    over them: mappings key by key, a key set to null removes the base's (e.g. a tuning grid point), except in
    ``value_sections`` (settings such as ``hyp``), where null is a value: ``hyp: {augment: null}`` is a setting.

    Why: a variant states only what differs from its base, and one resolver serves every kind of preset.
    """
    path = resolve_config(path_or_name, kind)
    return _extended(load_yaml(path, kind), path, kind, tuple(value_sections), (path.resolve(),))


def _extended(raw: dict, where: Path, kind: str, value_sections: tuple[str, ...], chain: tuple[Path, ...]) -> dict:
    if "extends" not in raw:
        return raw
    base_path = resolve_config(str(raw["extends"]), kind)
    if base_path.resolve() in chain:
        raise InputError(f"{where}: extends: {base_path} is already in the chain of presets "
                         f"({' -> '.join(p.name for p in chain)}), so the chain never ends")
    base = _extended(load_yaml(base_path, kind), base_path, kind, value_sections, chain + (base_path.resolve(),))
    own = {k: v for k, v in raw.items() if k not in ("extends", *value_sections)}
    values = {k: raw[k] for k in value_sections if k in raw}
    return deep_merge(deep_merge(base, own, null_removes=True), values)


def did_you_mean(name, choices: Iterable[str], listing: str | None = "valid keys", always_list: bool = False) -> str:
    """The hint after an unknown ``name``: `` (did you mean 'x'?)`` for a near miss, else (or also, with
    ``always_list``) ``; valid keys: a, b`` listing at most 10 choices and their count, so the error stays one
    short line however many choices there are. ``listing=None``: the near-miss hint or nothing."""
    choices = [str(c) for c in choices]
    close = difflib.get_close_matches(str(name), choices, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    if listing is None or close and not always_list:
        return hint
    more = f", ... ({len(choices)} in all)" if len(choices) > 10 else ""
    return f"{hint}; {listing}: {', '.join(choices[:10])}{more}"


def check_keys(mapping: dict, known: Iterable[str], where: str) -> None:
    """InputError naming the first key of ``mapping`` that is not in ``known``, with a did-you-mean hint."""
    known = list(known)
    for key in mapping:
        if key not in known:
            raise InputError(f"{where}: unknown key '{key}'{did_you_mean(key, known)}")
