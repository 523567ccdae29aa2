"""Tracker settings: ``configs/tracker/default.yaml`` overlaid with a user config (name, path or dict).

Unknown keys and out-of-range values are rejected up front, so a typo never silently falls back to a
default threshold.
"""
from __future__ import annotations

from pathlib import Path

from mot_kd.config import load_yaml
from mot_kd.errors import InputError
from trackers.kalman import BOX_MODELS

#: key -> (low, high) allowed closed range; thresholds are costs or scores.
_RANGES = {
    "det_thresh": (0.0, 1.0), "low_thresh": (0.0, 1.0), "new_track_thresh": (0.0, 1.0),
    "track_buffer": (0, 10_000), "appearance_match_thresh": (0.0, float("inf")),
    "appearance_weight": (0.0, 1.0), "motion_gate": (0.0, float("inf")), "feature_ema": (0.0, 1.0),
    "iou_only_match_thresh": (0.0, 1.0), "iou_match_thresh": (0.0, 1.0), "low_match_thresh": (0.0, 1.0),
    "unconfirmed_match_thresh": (0.0, 1.0), "duplicate_thresh": (0.0, 1.0), "min_box_area": (0.0, float("inf")),
    "max_aspect_ratio": (0.0, float("inf")), "iou_fusion_match_thresh": (0.0, 1.0), "proximity_gate": (0.0, 1.0),
    "appearance_gate": (0.0, 2.0),
}
#: key -> allowed values
_CHOICES = {"kalman_box": BOX_MODELS, "appearance_fusion": ("iou", "motion")}


def load_tracker_config(cfg: str | Path | dict | None = None) -> dict:
    """Defaults from default.yaml, overridden by ``cfg``; raises InputError on unknown keys or bad values."""
    merged = load_yaml("default", "tracker")
    source = "tracker config" if cfg is None or isinstance(cfg, dict) else str(cfg)
    user = load_yaml(cfg, "tracker") if cfg is not None else {}
    unknown = sorted(set(user) - set(merged))
    if unknown:
        raise InputError(f"{source}: unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(merged))}")
    merged.update(user)
    for key, choices in _CHOICES.items():
        if merged[key] not in choices:
            raise InputError(f"{source}: {key} must be one of {', '.join(choices)}, got {merged[key]!r}")
    if not isinstance(merged["use_embeddings"], bool):
        raise InputError(f"{source}: use_embeddings must be true or false, got {merged['use_embeddings']!r}")
    for key, (low, high) in _RANGES.items():
        value = merged[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
            raise InputError(f"{source}: {key} must be a number in [{low}, {high}], got {value!r}")
    if merged["low_thresh"] > merged["det_thresh"]:
        raise InputError(f"{source}: low_thresh ({merged['low_thresh']}) must not exceed det_thresh "
                         f"({merged['det_thresh']})")
    return merged
