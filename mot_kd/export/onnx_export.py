"""FP32 ONNX export of a mot-kd model: fused copy, traced like ultralytics' exporter, slimmed, metadata embedded.

Follows ``ultralytics.engine.exporter.Exporter.export_onnx``: the TorchScript exporter (``dynamo=False``), the
opset of ``best_onnx_opset``, ``onnxslim.slim``, the IR version capped at 10 for ONNX Runtime, metadata as
``metadata_props``. Outputs: ``dets`` (B, 4 + nc, A) and ``embedding`` (B, id_dim, H/8, W/8), see
:class:`mot_kd.export.fuse.DeployModel`. Written atomically: a failed export leaves no file.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from loguru import logger

from mot_kd.export.fuse import deploy_copy
from mot_kd.models import JDEModel
from mot_kd.models.backends.metadata import KEY, build_metadata, dump_metadata
from mot_kd.utils.io import atomic_path

INPUT, OUTPUTS = "images", ("dets", "embedding")


def trace_to_onnx(module: torch.nn.Module, imgsz: tuple[int, int], path: Path, dynamic_batch: bool = False) -> None:
    """Trace ``module`` on a zero batch of (W, H) ``imgsz`` into ``path`` (no simplification, no metadata)."""
    import onnx
    from ultralytics.utils.export.engine import best_onnx_opset

    w, h = imgsz
    axes = {INPUT: {0: "batch"}, **{o: {0: "batch"} for o in OUTPUTS}} if dynamic_batch else None
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and tracer warnings about fixed shapes
        torch.onnx.export(module, torch.zeros(1, 3, h, w), str(path), opset_version=best_onnx_opset(onnx),
                          input_names=[INPUT], output_names=list(OUTPUTS), dynamic_axes=axes, dynamo=False)


def finish_onnx(proto, meta: dict, path: Path, slim: bool = True):
    """Slim the graph, embed ``meta``, cap the IR version and save to ``path``."""
    import onnx

    if slim:
        import onnxslim

        proto = onnxslim.slim(proto)
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = KEY, dump_metadata(meta)
    if getattr(proto, "ir_version", 0) > 10:
        proto.ir_version = 10
    onnx.checker.check_model(proto)
    onnx.save(proto, str(path))
    return proto


def export_onnx(model: JDEModel, out: str | Path, imgsz: tuple[int, int], dynamic_batch: bool = False,
                slim: bool = True, extra_meta: dict | None = None) -> Path:
    """Export ``model`` at (W, H) ``imgsz`` to ``out`` (FP32, Conv+BN fused); returns ``out``."""
    import onnx

    out = Path(out)
    with atomic_path(out) as tmp:
        trace_to_onnx(deploy_copy(model), imgsz, tmp, dynamic_batch)
        meta = build_metadata(model, imgsz, "fp32", dynamic_batch, extra_meta)
        finish_onnx(onnx.load(str(tmp)), meta, tmp, slim)
    logger.info(f"exported {out} ({out.stat().st_size / 1e6:.1f} MB, fp32, {imgsz[0]}x{imgsz[1]})")
    return out
