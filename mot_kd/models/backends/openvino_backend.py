"""OpenVINO runtime backend for IR files (``model.xml`` + ``model.bin``) written by ``python -m mot_kd.export``.

OpenVINO is an optional extra (``pip install -e '.[openvino]'``); without it a ``.xml`` is a one-line error.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from mot_kd.errors import InputError
from mot_kd.models.backends.base import ExportedModel
from mot_kd.models.backends.metadata import KEY, parse_metadata


class OpenVINOModel(ExportedModel):
    kind = "openvino"

    def __init__(self, path: str | Path, device: str = "cpu", threads: int | None = None):
        try:
            import openvino as ov
        except ImportError:
            raise InputError(f"{path}: OpenVINO IR needs the openvino package (pip install -e '.[openvino]')") from None
        path = Path(path)
        if not path.is_file() or not path.with_suffix(".bin").is_file():
            raise InputError(f"{path}: no such OpenVINO IR (needs {path.name} and {path.with_suffix('.bin').name})")
        if str(device) != "cpu":
            raise InputError(f"--device {device}: the OpenVINO backend runs on the CPU here (use --device cpu)")
        core = ov.Core()
        try:
            model = core.read_model(str(path))
        except Exception as exc:
            detail = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
            raise InputError(f"{path}: not a readable OpenVINO IR (damaged or truncated?): {detail}") from None
        text = model.get_rt_info([KEY]).astype(str) if model.has_rt_info([KEY]) else None
        super().__init__(path, parse_metadata(text, path))
        config = {"INFERENCE_PRECISION_HINT": "f32"}  # OpenVINO would run FP32 layers in bf16 on AMX/AVX512-BF16 CPUs
        if threads:
            config["INFERENCE_NUM_THREADS"] = int(threads)
        self.compiled = core.compile_model(model, "CPU", config)
        self.request = self.compiled.create_infer_request()

    def run(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        out = self.request.infer({0: batch})
        dets, emb = (np.asarray(out[o]) for o in self.compiled.outputs)
        return dets, emb
