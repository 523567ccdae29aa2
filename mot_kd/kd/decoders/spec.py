"""The ``head`` section of the KD config: which decoder reads the head taps, and its parameters.

Why checked here, before any model is seen: a wrong family or parameter must fail with the key's name, and a
key meant for another family (``anchors`` on a centernet head) is a mistake, never silently ignored.
"""
from __future__ import annotations

from mot_kd.config import did_you_mean
from mot_kd.errors import InputError

# Per family: its own keys and their defaults (None = required); the tap groups it decodes.
FAMILY_KEYS = {
    "ultralytics": {"reg_max": 16},
    "yolo_anchor": {"anchors": None, "box": "yolov5", "conf": "sigmoid"},
    "centernet": {"wh": "ltrb"},
}
FAMILY_GROUPS = {"ultralytics": ("box", "cls"), "yolo_anchor": ("pred",), "centernet": ("cls", "box", "offset")}
CHOICES = {"box": ("yolov5", "yolov3", "delta"), "conf": ("sigmoid", "softmax2"), "wh": ("ltrb", "size")}


def _positive_int(value, where: str, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise InputError(f"{where}: expected an integer >= {minimum}, got {value!r}")
    return value


def _anchors(value, where: str) -> list[list[float]]:
    """Per level a flat list of w, h pairs in input pixels (the YOLO yaml / darknet cfg form)."""
    if not isinstance(value, list) or not value:
        raise InputError(f"{where}: expected a list of levels, each [w1, h1, w2, h2, ...] in input pixels, "
                         f"e.g. [[8, 24, 11, 34, 16, 48], [32, 96, 45, 135, 64, 192]], got {value!r}")
    for i, level in enumerate(value):
        if (not isinstance(level, list) or not level or len(level) % 2
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in level)):
            raise InputError(f"{where}[{i}]: expected an even-length list of positive anchor w, h values in input "
                             f"pixels, got {level!r}")
    return [[float(v) for v in level] for level in value]


def check_head(head: dict, where: str) -> dict:
    """Validated ``head`` with the family's defaults filled in; other families' keys must stay null."""
    family = head["family"]
    if family not in FAMILY_KEYS:
        raise InputError(f"{where}.family: unknown head family {family!r}"
                         f"{did_you_mean(family, FAMILY_KEYS, 'families', always_list=True)}")
    checked = dict(head, nc=_positive_int(head["nc"], f"{where}.nc"))
    for other, keys in FAMILY_KEYS.items():
        for key in keys:
            if other != family and head[key] is not None:
                raise InputError(f"{where}.{key}: used by head family {other} only, not {family}; remove it")
    for key, default in FAMILY_KEYS[family].items():
        value = default if head[key] is None else head[key]
        if value is None:
            raise InputError(f"{where}.{key}: required by head family {family}")
        if key in CHOICES and value not in CHOICES[key]:
            raise InputError(f"{where}.{key}: expected one of {', '.join(CHOICES[key])}, got {value!r}")
        checked[key] = value
    if family == "ultralytics":
        checked["reg_max"] = _positive_int(checked["reg_max"], f"{where}.reg_max", minimum=2)
    if family == "yolo_anchor":
        checked["anchors"] = _anchors(checked["anchors"], f"{where}.anchors")
        if checked["conf"] == "softmax2" and checked["nc"] != 1:
            raise InputError(f"{where}.conf: softmax2 (JDE's 2-logit confidence) has no class channels; nc must be 1")
    return checked
