"""Inference backends behind one ``predict`` interface, picked by the model file's type.

``load_model(path)`` returns an object with ``predict(images, imgsz, conf, iou)``, ``meta`` (``imgsz`` the
input size to use), ``names`` and ``id_dim``: a :class:`JDEModel` for ``.pt`` checkpoints, an ONNX Runtime
session for ``.onnx``, the OpenVINO runtime for ``.xml`` IR. Trackers and the evaluator call only this, so
they never import onnxruntime or OpenVINO themselves.
"""
from __future__ import annotations

import os
from pathlib import Path

from mot_kd.errors import InputError

SUFFIXES = {".pt": "torch", ".pth": "torch", ".onnx": "onnxruntime", ".xml": "openvino"}


def backend_for(path: str | os.PathLike) -> str:
    """The backend name for a model file, by its suffix."""
    suffix = Path(path).suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"{path}: unknown model file type {suffix or '(no suffix)'!r}; expected a mot-kd "
                         "checkpoint (.pt), an ONNX model (.onnx) or an OpenVINO IR (.xml)")
    return SUFFIXES[suffix]


def load_model(path: str | os.PathLike, device="cpu", threads: int | None = None):
    """The model in ``path`` behind the predict interface (``threads``: ONNX Runtime/OpenVINO intra-op threads)."""
    kind = backend_for(path)
    if kind == "torch":
        from mot_kd.models.checkpoint import load_checkpoint

        return load_checkpoint(path, device)
    if kind == "onnxruntime":
        from mot_kd.models.backends.onnx_backend import OnnxModel

        return OnnxModel(path, device, threads)
    from mot_kd.models.backends.openvino_backend import OpenVINOModel

    return OpenVINOModel(path, device, threads)
