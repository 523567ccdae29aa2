"""Deployment: fused ONNX / OpenVINO export with embedded metadata, INT8 (PTQ and QAT with KD), deploy benchmark.

``python -m mot_kd.export --weights best.pt --format onnx`` (docs/deploy.md). The exported files load through
:func:`mot_kd.models.backends.load_model`, the same ``predict`` interface as a checkpoint.
"""
