"""The metadata an exported model carries so that the file alone is enough to track (no checkpoint beside it).

One JSON string under the key ``mot_kd`` (ONNX ``metadata_props``, OpenVINO ``rt_info``), checked on load:
a file without it (another project's ONNX) is refused rather than guessed at.
"""
from __future__ import annotations

import json

from mot_kd import __version__
from mot_kd.errors import InputError

KEY = "mot_kd"
FORMAT = "mot-kd/deploy/1"
_REQUIRED = {"format", "imgsz", "strides", "id_dim", "nc", "names", "version", "precision", "dynamic_batch"}


def build_metadata(model, imgsz: tuple[int, int], precision: str = "fp32", dynamic_batch: bool = False,
                   extra: dict | None = None) -> dict:
    """The metadata dict of an export of ``model`` (a JDEModel) at input ``imgsz`` (W, H)."""
    return {"format": FORMAT, "version": __version__, "arch": model.arch.get("name"), "imgsz": list(imgsz),
            "strides": list(model.strides), "id_dim": model.id_dim, "nc": model.nc, "names": list(model.names),
            "precision": precision, "dynamic_batch": bool(dynamic_batch),
            "trained_imgsz": (model.meta or {}).get("imgsz"), **(extra or {})}


def dump_metadata(meta: dict) -> str:
    return json.dumps(meta, sort_keys=True)


def parse_metadata(text: str | None, path) -> dict:
    """The validated metadata from its JSON text (None: the file has none)."""
    hint = "export it with `python -m mot_kd.export --weights best.pt --format onnx`"
    if text is None:
        raise InputError(f"{path}: no mot-kd metadata (key {KEY!r}): not exported by mot-kd; {hint}")
    try:
        meta = json.loads(text)
    except json.JSONDecodeError:
        raise InputError(f"{path}: mot-kd metadata is not valid JSON; {hint}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise InputError(f"{path}: mot-kd metadata format {found!r}, expected {FORMAT!r}; {hint}")
    missing = _REQUIRED - set(meta)
    if missing:
        raise InputError(f"{path}: mot-kd metadata lacks {', '.join(sorted(missing))}; {hint}")
    return meta
