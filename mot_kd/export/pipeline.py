"""One export call for the CLI and the deploy benchmark: FP32 ONNX, optional INT8 (PTQ, or QAT+KD then the same
quantizer), optional conversion to OpenVINO IR. Intermediate files live in a temporary folder beside ``out``,
so a failure at any step leaves neither them nor a partial ``out``.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mot_kd.errors import InputError
from mot_kd.models import JDEModel

FORMATS = {"onnx": ".onnx", "openvino": ".xml"}


@dataclass(frozen=True)
class Int8Settings:
    """INT8 options: calibration ``frames`` (N, 3, H, W) and the FP32 layer groups (the CLIs default to
    ``quantize.DEFAULT_FP32``); ``qat`` set = QAT+KD first."""

    frames: np.ndarray
    keep_fp32: tuple[str, ...] = ()
    method: str = "minmax"
    qat: object | None = None  # mot_kd.export.qat.QATSettings


def check_format(fmt: str, out: str | Path | None = None) -> str:
    if fmt not in FORMATS:
        raise InputError(f"--format {fmt}: unknown export format; choose {' or '.join(FORMATS)}")
    if out is not None and Path(out).suffix.lower() != FORMATS[fmt]:
        raise InputError(f"--out {out}: a {fmt} export is written to a {FORMATS[fmt]} file")
    return fmt


def export_model(model: JDEModel, out: str | Path, fmt: str = "onnx", imgsz: tuple[int, int] = (1088, 608),
                 dynamic_batch: bool = False, int8: Int8Settings | None = None) -> Path:
    """Export ``model`` to ``out`` (``.onnx`` or ``.xml``); returns ``out``."""
    from mot_kd.export.onnx_export import export_onnx

    check_format(fmt, out)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=".export-") as tmp:
        onnx_path = out if fmt == "onnx" else Path(tmp) / "model.onnx"
        extra = None
        if int8 is not None and int8.qat is not None:
            from mot_kd.export.qat import qat_finetune

            model, history = qat_finetune(model, int8.qat)
            terms = "kd+detection" if int8.qat.detection_loss else "kd"  # what the logged loss sums
            extra = {"qat": {"steps": int8.qat.steps, "loss_terms": terms, "loss_first": history[0],
                             "loss_last": history[-1]}}
        fp32 = export_onnx(model, Path(tmp) / "fp32.onnx" if int8 is not None else onnx_path, imgsz, dynamic_batch,
                           extra_meta=extra)
        if int8 is not None:
            from mot_kd.export.quantize import quantize_int8

            quantize_int8(fp32, onnx_path, int8.frames, int8.keep_fp32, int8.method,
                          how="qat+kd" if int8.qat is not None else "ptq")
        if fmt == "openvino":
            from mot_kd.export.openvino_export import onnx_to_openvino

            onnx_to_openvino(onnx_path, out)
    return out
