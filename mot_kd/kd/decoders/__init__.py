"""Head decoders (connectors): raw head taps of one family -> the family-independent :class:`Decoded` form.

``head.family`` in the KD config picks one: ``ultralytics`` (anchor-free DFL), ``yolo_anchor`` (YOLOv3/v5,
CSTrack, JDE) or ``centernet`` (FairMOT). Response losses only ever see :class:`Decoded`.
"""
from mot_kd.kd.decoders.base import Decoded, check_pair
from mot_kd.kd.decoders.centernet import CenterNetDecoder
from mot_kd.kd.decoders.spec import FAMILY_GROUPS, check_head
from mot_kd.kd.decoders.ultralytics import UltralyticsDecoder
from mot_kd.kd.decoders.yolo_anchor import YoloAnchorDecoder

DECODERS = {d.family: d for d in (UltralyticsDecoder, YoloAnchorDecoder, CenterNetDecoder)}


def build_decoder(head: dict):
    """The decoder of a validated ``head`` config section (see :func:`check_head`)."""
    return DECODERS[head["family"]](head)


__all__ = ["DECODERS", "Decoded", "FAMILY_GROUPS", "build_decoder", "check_head", "check_pair"]
