"""Joint detector-embedder (CSTrack-style YOLOv5 n/s/m/l/x and a Ghost student), its JDE loss, portable checkpoints.

Tap names for distillation and the output/target contracts are documented in docs/models.md.
"""
from mot_kd.utils.cpu import flush_denormals
from mot_kd.models.checkpoint import load_checkpoint, read_checkpoint, save_checkpoint
from mot_kd.models.jde_model import JDEModel, build_model
from mot_kd.models.loss import JDELoss
from mot_kd.models.pretrained import build_pretrained, checkpoint_kind, load_ultralytics

__all__ = ["JDEModel", "JDELoss", "build_model", "build_pretrained", "checkpoint_kind", "load_checkpoint",
           "load_ultralytics", "read_checkpoint", "save_checkpoint"]

flush_denormals()
