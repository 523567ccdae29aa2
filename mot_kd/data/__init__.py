"""Data layer: MOTChallenge/JDE readers, the training dataset, and the synthetic MOT generator.

The names below are importable from ``mot_kd.data`` directly (``from mot_kd.data import MOTTrainDataset``).
They load on first use: the dataset pulls in torch and OpenCV (~2 s), which the evaluator's CLI, reading
only ``mot_kd.data.mot_files``/``motchallenge``, must not pay for.
"""
from __future__ import annotations

import importlib

_EXPORTS = {
    "mot_files": ("read_mot_txt", "write_mot_txt", "format_result_rows", "read_seqinfo", "write_seqinfo"),
    "motchallenge": ("Sequence", "GroundTruth", "find_sequences", "select_sequences", "split_range", "read_gt",
                     "unique_by_gt", "global_identities", "DISTRACTOR_CLASSES"),
    "jde_labels": ("load_jde_set", "read_jde_labels"),
    "images": ("read_image",),
    "letterbox": ("LetterboxInfo", "boxes_to_letterbox", "boxes_from_letterbox"),  # letterbox() is the module's
    "augment": ("AugmentConfig",),
    "dataset": ("MOTSource", "JDESource", "MOTTrainDataset", "collate", "build_loader"),
    "data_config": ("DataConfig", "load_data_config"),
    "synthetic": ("generate_dataset", "generate_sequence"),
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module 'mot_kd.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"mot_kd.data.{module}"), name)
    globals()[name] = value  # later look-ups skip __getattr__
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
