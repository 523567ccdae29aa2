"""OpenVINO IR (``model.xml`` + ``model.bin``) from an exported ONNX file, FP32 or INT8 QDQ, metadata as rt_info.

Why convert the ONNX file instead of the torch model: one traced graph for both runtimes, so the INT8 QDQ
model calibrated by ONNX Runtime runs in OpenVINO unchanged (it executes Q/DQ pairs as INT8 kernels).
"""
from __future__ import annotations

import importlib.util
import os
import tempfile
from pathlib import Path

from loguru import logger

from mot_kd.errors import InputError
from mot_kd.models.backends.metadata import KEY, dump_metadata, parse_metadata


MISSING = "--format openvino: needs the openvino package (pip install -e '.[openvino]')"


def require_openvino() -> None:
    """Refuse up front (before calibration or QAT run) where the package is missing; found, not imported."""
    if importlib.util.find_spec("openvino") is None:
        raise InputError(MISSING)


def onnx_to_openvino(onnx_path: str | Path, out_xml: str | Path) -> Path:
    """Write ``out_xml`` and its ``.bin`` beside it (both or neither); FP32 weights are kept as FP32."""
    try:
        import openvino as ov
    except ImportError:
        raise InputError(MISSING) from None
    import onnx

    out_xml = Path(out_xml)
    proto = onnx.load(str(onnx_path), load_external_data=False)
    meta = parse_metadata({p.key: p.value for p in proto.metadata_props}.get(KEY), onnx_path)
    model = ov.convert_model(str(onnx_path))
    model.set_rt_info(dump_metadata({**meta, "runtime": "openvino"}), [KEY])
    out_xml.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_xml.parent, prefix=".openvino-") as tmp:
        tmp = Path(tmp)
        ov.save_model(model, str(tmp / out_xml.name), compress_to_fp16=False)
        os.replace(tmp / out_xml.with_suffix(".bin").name, out_xml.with_suffix(".bin"))
        os.replace(tmp / out_xml.name, out_xml)  # the .xml last: a reader finding it finds its .bin too
    logger.info(f"OpenVINO IR -> {out_xml} (+ {out_xml.with_suffix('.bin').name}, {meta['precision']})")
    return out_xml
