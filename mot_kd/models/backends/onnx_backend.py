"""ONNX Runtime backend for ``.onnx`` files written by ``python -m mot_kd.export`` (FP32 or INT8 QDQ)."""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mot_kd.errors import InputError
from mot_kd.models.backends.base import ExportedModel
from mot_kd.models.backends.metadata import KEY, parse_metadata


class OnnxModel(ExportedModel):
    kind = "onnxruntime"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None):
        import onnxruntime as ort

        path = Path(path)
        if not path.is_file():
            raise InputError(f"{path}: no such ONNX model")
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads, options.inter_op_num_threads = int(threads), 1
        providers = ["CPUExecutionProvider"]
        if str(device) != "cpu":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise InputError(f"--device {device}: this onnxruntime has no CUDA provider (use --device cpu)")
            providers.insert(0, "CUDAExecutionProvider")
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... for damaged files
            detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path}: not a readable ONNX model (damaged or truncated?): {detail}") from None
        super().__init__(path, parse_metadata(self.session.get_modelmeta().custom_metadata_map.get(KEY), path))
        self.input_name = self.session.get_inputs()[0].name

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        dets, emb = self.session.run(None, {self.input_name: batch})
        return dets, emb
