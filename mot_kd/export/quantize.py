"""INT8 post-training static quantization with ONNX Runtime (QDQ, per-channel weights), calibrated on MOT frames.

Calibration frames are read through the data layer (``find_sequences`` + ``read_image``) and letterboxed by
the same ``preprocess`` the trackers use, so the activation ranges are those seen at tracking time. The whole
network is quantized (activations too, not only ultralytics' Conv/MatMul: on this CPU Conv-only QDQ is slower
than FP32, the Q/DQ pairs around every SiLU cost more than the INT8 convolutions save), but the decode tail
(DFL, anchors, sigmoid scores, outside ``/model/``) stays FP32 as in ultralytics' ``onnx_int8_quantize``: one
INT8 scale spanning box pixels and probabilities would round every score away. ``keep_fp32`` keeps the
layers most sensitive to rounding in FP32 too.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
from loguru import logger
from tqdm import tqdm

from mot_kd.data.images import read_image
from mot_kd.data.motchallenge import find_sequences, split_range
from mot_kd.errors import InputError
from mot_kd.models.predict import preprocess
from mot_kd.utils.io import atomic_path

#: groups of sensitive layers that ``keep_fp32`` may name -> node-name patterns of the exported graph
SENSITIVE = {
    "first": None,  # the first convolution (raw pixels in), found by position
    "head": re.compile(r"/head/.*cv[23]\.\d+\.2/Conv$"),  # last conv of each box/class branch (head outputs)
    "embedding": re.compile(r"/embedding/fuse/fuse\.2/Conv$"),  # the embedding projection
    "attention": re.compile(r"^/model/p[345]/|^/model/embedding/(spatial|channel)"),  # decoupling + SAAN attention
}
#: kept in FP32 unless told otherwise: a 3-channel INT8 convolution is slower than FP32 here (yolov5n 320x192,
#: one thread: 11.9 ms with the first conv in FP32, 13.0 ms with it in INT8, 16.1 ms all FP32)
DEFAULT_FP32 = ("first",)
NETWORK = "/model/"  # node-name prefix of the network; the decode tail of DeployModel lies outside it


def calibration_frames(root: str | Path, count: int, imgsz: tuple[int, int], split: str = "full") -> np.ndarray:
    """``count`` letterboxed frames (N, 3, H, W) float32, spread evenly over every sequence under ``root``
    (``split``: only those frames, e.g. ``train_half`` when the other half is evaluated)."""
    if count < 1:
        raise InputError(f"--calib-frames: expected at least 1 frame, got {count}")
    root = Path(root)
    if not root.exists():
        raise InputError(f"--calib {root}: no such calibration data folder")
    sequences = find_sequences(root, "all")
    ranges = [(seq, split_range(seq.seq_length, split)) for seq in sequences]
    frames = [(seq, f) for seq, (first, last) in ranges for f in range(first, last + 1)]
    pick = np.unique(np.linspace(0, len(frames) - 1, min(count, len(frames))).round().astype(int))
    batch = [preprocess([read_image(frames[i][0].image_path(frames[i][1]))], imgsz)[0].numpy()
             for i in tqdm(pick, desc="calibration frames", leave=False)]
    logger.info(f"calibration: {len(batch)} frames from {len(sequences)} sequences under {root}")
    return np.concatenate(batch).astype(np.float32)


def check_groups(groups) -> tuple[str, ...]:
    """The ``--keep-fp32`` layer groups, each one of :data:`SENSITIVE`."""
    unknown = [g for g in groups if g not in SENSITIVE]
    if unknown:
        raise InputError(f"--keep-fp32: unknown layer group {unknown[0]!r}; choose from {', '.join(SENSITIVE)}")
    return tuple(groups)


def fp32_nodes(graph, keep_fp32: tuple[str, ...] = ()) -> list[str]:
    """Names of the nodes left in FP32: the decode tail and the ``keep_fp32`` groups."""
    check_groups(keep_fp32)
    convs = [n.name for n in graph.node if n.op_type == "Conv"]
    keep = {n.name for n in graph.node if not n.name.startswith(NETWORK)}
    for group in keep_fp32:
        pattern = SENSITIVE[group]
        keep.update(convs[:1] if pattern is None else [n.name for n in graph.node if pattern.search(n.name)])
    return sorted(keep)


def quantize_int8(fp32_onnx: str | Path, out: str | Path, frames: np.ndarray, keep_fp32: tuple[str, ...] = (),
                  method: str = "minmax", how: str = "ptq") -> Path:
    """Write the INT8 QDQ model of ``fp32_onnx`` calibrated on ``frames`` to ``out`` (metadata kept, precision int8)."""
    import onnx
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)

    from mot_kd.export.onnx_export import finish_onnx
    from mot_kd.models.backends.metadata import KEY, parse_metadata

    methods = {"minmax": CalibrationMethod.MinMax, "percentile": CalibrationMethod.Percentile,
               "entropy": CalibrationMethod.Entropy}
    if method not in methods:
        raise InputError(f"--calib-method: unknown method {method!r}; choose from {', '.join(methods)}")
    proto = onnx.load(str(fp32_onnx))
    meta = parse_metadata({p.key: p.value for p in proto.metadata_props}.get(KEY), fp32_onnx)
    name = proto.graph.input[0].name

    class Frames(CalibrationDataReader):
        def __init__(self):
            self.rewind()

        def get_next(self):
            return next(self.items, None)

        def rewind(self):
            self.items = iter({name: frames[i:i + 1]} for i in range(len(frames)))

    out = Path(out)
    with atomic_path(out) as tmp:
        quantize_static(str(fp32_onnx), str(tmp), Frames(), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        nodes_to_exclude=fp32_nodes(proto.graph, keep_fp32), calibrate_method=methods[method],
                        extra_options={"ActivationSymmetric": False, "WeightSymmetric": True})
        meta = {**meta, "precision": "int8", "int8": {"method": how, "calib": method, "frames": len(frames),
                                                      "keep_fp32": list(keep_fp32)}}
        finish_onnx(onnx.load(str(tmp)), meta, tmp, slim=False)
    logger.info(f"INT8 ({how}, {len(frames)} calibration frames, fp32 kept: {', '.join(keep_fp32) or 'none'}) -> {out}")
    return out
