"""Start from the weights users have: ultralytics COCO checkpoints (``yolov5{n,s,m,l,x}u.pt``, ``yolov8*.pt``).

Why it maps exactly: our trunk is ultralytics' own YAML rows parsed by ultralytics (``yolo_backbone``), so
layer ``i`` of ``backbone`` + ``neck`` is layer ``i`` of their ``DetectionModel``, and our head is their
``Detect`` convolutions: ``cv2`` (box, DFL) loads as is, ``cv3`` (class) loads with its ``person`` row as our
class 0 when built in their (v5u/v8, "legacy") style, which :func:`build_pretrained` does. The CCN decoupling and
the embedding head have no COCO counterpart and stay fresh. BatchNorm takes the checkpoint's eps/momentum
(ultralytics: 1e-3/0.03; ours otherwise torch's 1e-5/0.1), without which the loaded trunk computes other
features. Anything that does not fit is an error naming the first layer that differs, never a partial load.

Safety: ultralytics checkpoints pickle the model object. They are read with ``torch.load(weights_only=True)``
and ultralytics' restricted-load allow-list (torch and ultralytics module classes only), so a file can name no
other code; only files the user names are read, and nothing is ever downloaded.
"""
from __future__ import annotations

import os
import pickletools
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

import torch
from loguru import logger
from torch import nn

from mot_kd.errors import InputError
from mot_kd.models.checkpoint import FORMAT, read_checkpoint
from mot_kd.models.jde_model import JDEModel
from mot_kd.models.yolo_backbone import resolve_model_cfg


@dataclass
class UltralyticsCheckpoint:
    """The parts of an ultralytics detection checkpoint that our model can take."""

    path: Path
    label: str  # e.g. "yolov5su (scale s)"
    scale: str | None
    layers: list[nn.Module]  # trunk rows, their indices are ours
    detect: nn.Module  # ultralytics Detect
    person: int  # index of the 'person' class
    nc: int
    batchnorm: dict  # {eps, momentum} their BatchNorm layers compute with


def checkpoint_kind(path: str | os.PathLike) -> str:
    """``"mot-kd"`` or ``"ultralytics"`` for a ``--weights`` file, else a one-line InputError saying what it is.

    Both kinds are recognised statically from the archive's pickle (nothing is unpickled, so the one real read
    is the load that follows): an ultralytics file by the classes it pickles, a mot-kd one by a pickle of
    tensors and builtins holding our format string and keys (:func:`read_checkpoint` validates it when it is
    loaded). Any other file goes to mot-kd's own checkpoint reader, whose errors say what else it is.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such checkpoint file")
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    except (ValueError, RuntimeError):  # not a torch.save zip archive: read_checkpoint says so
        names = None
    if any(n.startswith("ultralytics.") for n in names or []):
        return "ultralytics"
    if any(n.startswith("models.") for n in names or []):
        raise InputError(f"{path}: an original YOLOv5 (github.com/ultralytics/yolov5, anchor-based) checkpoint; use "
                         "the anchor-free ultralytics release of the same model, e.g. yolov5su.pt")
    if names == [] and _MOT_KD_STRINGS <= _pickled_strings(path):
        return "mot-kd"
    try:
        read_checkpoint(path)
    except InputError as exc:
        raise InputError(f"{exc} (or an ultralytics detection checkpoint such as yolov5su.pt)") from None
    return "mot-kd"


_MOT_KD_STRINGS = {FORMAT, "format", "arch", "state_dict", "num_ids", "names", "meta"}


def _pickled_strings(path: Path) -> set[str]:
    """The string constants of a torch.save archive's pickle, read with pickletools (nothing is executed)."""
    try:
        with zipfile.ZipFile(path) as archive:
            pkl = next((n for n in archive.namelist() if n.count("/") == 1 and n.endswith("/data.pkl")), None)
            data = archive.read(pkl) if pkl else b""
        return {arg for op, arg, _ in pickletools.genops(data) if isinstance(arg, str) and "UNICODE" in op.name}
    except (zipfile.BadZipFile, ValueError, OSError):  # unreadable: the full reader gives the error
        return set()


def _restricted_load(path: Path):
    """torch.load with weights_only and ultralytics' allow-list (torch/ultralytics classes only).

    Why not their ``torch_safe_load``: it renames ``yolov5s.pt`` to ``yolov5su.pt`` and downloads missing files.
    Their allow-list registers the file's classes with torch process-wide; that is undone afterwards, so every
    other ``weights_only`` load (ours included) stays as strict as before.
    """
    from ultralytics.nn.tasks import _SafeLoad

    before = torch.serialization.get_safe_globals()
    try:
        with _SafeLoad.loading(path):
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises UnpicklingError for refused globals, others for damaged files
        raise InputError(f"{path}: ultralytics checkpoint not loadable with weights_only ({type(exc).__name__}: "
                         f"{str(exc).strip().splitlines()[0][:200]})") from None
    finally:
        torch.serialization.clear_safe_globals()
        torch.serialization.add_safe_globals(before)


def read_ultralytics(path: str | os.PathLike) -> UltralyticsCheckpoint:
    """Load an ultralytics detection checkpoint (restricted unpickling) and find its trunk, head and person class."""
    from ultralytics.nn.modules import Detect
    from ultralytics.nn.tasks import guess_model_scale

    path = Path(path)
    if checkpoint_kind(path) != "ultralytics":
        raise InputError(f"{path}: a mot-kd model checkpoint, not an ultralytics one")
    ckpt = _restricted_load(path)
    model = (ckpt.get("ema") or ckpt.get("model")) if isinstance(ckpt, dict) else None
    if not isinstance(getattr(model, "model", None), nn.Sequential):
        raise InputError(f"{path}: an ultralytics file without a model ('ema'/'model' hold no ultralytics network)")
    yaml = getattr(model, "yaml", None) or {}
    scale = yaml.get("scale") or guess_model_scale(str(yaml.get("yaml_file") or "")) or None  # older files: by name
    label = Path(str(yaml.get("yaml_file") or type(model).__name__)).stem + (f" (scale {scale})" if scale else "")
    detect = model.model[-1]
    if not isinstance(detect, Detect) or not hasattr(detect, "cv2"):
        raise InputError(f"{path}: {label} ends in {type(detect).__name__}, not an ultralytics Detect head")
    names = getattr(model, "names", None) or {}
    names = names if isinstance(names, dict) else dict(enumerate(names))
    person = [i for i, n in names.items() if str(n).lower() == "person"]
    if not person:
        shown = ", ".join(str(n) for n in list(names.values())[:5])
        raise InputError(f"{path}: the checkpoint's {detect.nc} classes ({shown}{', ...' if len(names) > 5 else ''}) "
                         "have no 'person'; a COCO checkpoint names class 0 'person'")
    bn = next((m for m in model.modules() if isinstance(m, nn.BatchNorm2d)), None)
    return UltralyticsCheckpoint(path, label, scale, list(model.model)[:-1], detect, int(person[0]), int(detect.nc),
                                 {"eps": bn.eps, "momentum": bn.momentum} if bn else {})


def build_pretrained(name: str | Path | dict, weights: str | os.PathLike, id_dim: int = 512,
                     scale: str | None = None) -> JDEModel:
    """A model ``name`` (``yolov5s``, a YAML...) whose trunk and detection head start from an ultralytics checkpoint.

    The head's class branch is built in the checkpoint's style and width, and BatchNorm uses the checkpoint's
    eps/momentum (both recorded in ``model.arch``, so saved checkpoints rebuild the same network).
    """
    ckpt = read_ultralytics(weights)
    cfg, scale = resolve_model_cfg(name, scale)
    first = ckpt.detect.cv3[0][0]
    if not isinstance(first, nn.Sequential):  # v5u/v8 style: Conv 3x3, Conv 3x3, Conv2d
        cfg["legacy_cls_width"] = int(first.conv.out_channels)
    if ckpt.batchnorm:
        cfg["batchnorm"] = ckpt.batchnorm
    label = "custom" if isinstance(name, dict) else Path(str(name)).stem
    model = JDEModel({"name": label, "cfg": cfg, "scale": scale, "nc": 1, "id_dim": id_dim,
                      "names": list(cfg.get("names") or ["pedestrian"])[:1]})
    load_ultralytics(model, ckpt)
    return model


def load_ultralytics(model: JDEModel, weights: str | os.PathLike | UltralyticsCheckpoint) -> dict:
    """Copy the checkpoint's trunk and head into ``model``; log and return ``{"loaded": {part: (tensors, params)},
    "fresh": {...}}``. A trunk or box branch that differs is an InputError; a class branch of another style stays
    fresh (use :func:`build_pretrained` to build it in the checkpoint's style)."""
    ckpt = weights if isinstance(weights, UltralyticsCheckpoint) else read_ultralytics(weights)
    where = f"{ckpt.path}: {ckpt.label} into {model.arch.get('name')}"
    ours = list(model.backbone.layers) + list(model.neck.layers)
    pairs = {"backbone": [], "neck": [], "head.box": [], "head.cls": []}
    hint = _scale_hint(model, ckpt)
    for i, (mine, theirs) in enumerate(zip(ours, ckpt.layers)):
        at = f"{where}: layer {i} ({type(theirs).__name__})"
        if mine.f != theirs.f:
            raise InputError(f"{at}: reads layer(s) {theirs.f} in the checkpoint, {mine.f} here; {hint}")
        pairs["backbone" if i < len(model.backbone.layers) else "neck"] += _matched(mine, theirs, at, hint)
    if len(ours) != len(ckpt.layers) or list(model.neck.outputs) != list(ckpt.detect.f):
        raise InputError(f"{where}: trunks differ ({len(ckpt.layers)} layers feeding Detect from {ckpt.detect.f} in "
                         f"the checkpoint, {len(ours)} feeding {list(model.neck.outputs)} here)")
    det, reg_max = model.head.detect, f"the model's reg_max must be the checkpoint's {ckpt.detect.reg_max}"
    pairs["head.box"] = (_matched(det.cv2, ckpt.detect.cv2, f"{where}: head box branch (cv2)", reg_max)
                         + _matched(det.dfl, ckpt.detect.dfl, f"{where}: head DFL", reg_max))
    try:
        pairs["head.cls"] = _class_pairs(det.cv3, ckpt.detect.cv3, ckpt.person, where)
    except InputError as exc:
        logger.warning(f"{exc}: head.cls stays fresh (build_pretrained builds it in the checkpoint's style)")
        pairs["head.cls"] = []
    with torch.no_grad():
        for dst, src in (p for part in pairs.values() for p in part):
            dst.copy_(src)
    return _report(model, pairs, ckpt)


def _matched(mine: nn.Module, theirs: nn.Module, where: str, hint: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(our tensor, their tensor) for every state entry of two modules that must be the same network."""
    kinds = [type(m).__name__ for m in mine.modules()], [type(m).__name__ for m in theirs.modules()]
    if kinds[0] != kinds[1]:
        diff = next(((a, b) for a, b in zip(*kinds) if a != b), (len(kinds[0]), len(kinds[1])))
        raise InputError(f"{where}: a different block ({diff[1]} in the checkpoint, {diff[0]} here); {hint}")
    a, b = mine.state_dict(keep_vars=True), theirs.state_dict()
    for key, t in a.items():
        if key not in b or b[key].shape != t.shape:
            found = tuple(b[key].shape) if key in b else "missing"
            raise InputError(f"{where}: {key} is {found} in the checkpoint, {tuple(t.shape)} here; {hint}")
    return [(t.data, b[key]) for key, t in a.items()]


def _class_pairs(mine: nn.ModuleList, theirs: nn.ModuleList, person: int, where: str) -> list:
    """The class branch without its last convolution as is, and the person row of that convolution as class 0."""
    pairs = []
    for level, (m, t) in enumerate(zip(mine, theirs)):
        pairs += _matched(m[:-1], t[:-1], f"{where}: head class branch (cv3.{level})", "another class-branch style")
        if m[-1].weight.shape[1:] != t[-1].weight.shape[1:]:
            raise InputError(f"{where}: head class branch (cv3.{level}) last conv takes {t[-1].weight.shape[1]} "
                             f"channels in the checkpoint, {m[-1].weight.shape[1]} here")
        row = slice(person, person + 1)
        pairs += [(m[-1].weight.data[:1], t[-1].weight[row]), (m[-1].bias.data[:1], t[-1].bias[row])]
    return pairs


def _scale_hint(model: JDEModel, ckpt: UltralyticsCheckpoint) -> str:
    ours = model.arch.get("scale")
    if ckpt.scale and ours and ckpt.scale != ours:
        suggestion = re.sub(rf"(\d){ours}", rf"\g<1>{ckpt.scale}", str(model.arch.get("name")), count=1)
        return f"the checkpoint is scale {ckpt.scale!r}, this model {ours!r} (use {suggestion})"
    return "the checkpoint's trunk is not this model's"


def _report(model: JDEModel, pairs: dict, ckpt: UltralyticsCheckpoint) -> dict:
    """Counts per part, logged: what came from the checkpoint and what stayed fresh."""
    param_ptrs = {p.data_ptr() for p in model.parameters()}
    loaded_ptrs = {dst.data_ptr() for part in pairs.values() for dst, _ in part}

    def count(tensors: list[torch.Tensor]) -> tuple[int, int]:
        return len(tensors), sum(t.numel() for t in tensors if t.data_ptr() in param_ptrs)

    loaded = {part: count([dst for dst, _ in pp]) for part, pp in pairs.items() if pp}
    fresh_tensors: dict[str, list] = {}
    for key, t in model.state_dict().items():
        if t.data_ptr() not in loaded_ptrs:
            fresh_tensors.setdefault(_part_of(key), []).append(t)
    fresh = {part: count(ts) for part, ts in fresh_tensors.items()}
    cls = f" (person = class {ckpt.person} -> class 0 {model.names[0]!r})" if "head.cls" in loaded else ""
    logger.info(f"{ckpt.path}: ultralytics {ckpt.label}, {ckpt.nc} classes -> {model.arch.get('name')}{cls}")
    for what, parts in (("loaded", loaded), ("fresh", fresh)):
        logger.info(f"{what}: " + ", ".join(f"{k} {n} tensors ({p / 1e6:.3f}M params)" for k, (n, p) in parts.items()))
    return {"loaded": loaded, "fresh": fresh}


_PARTS = {"head.detect.cv2": "head.box", "head.detect.dfl": "head.box", "head.detect.cv3": "head.cls"}


def _part_of(key: str) -> str:
    """State key -> the part named in the report (``backbone``, ``neck``, ``decouple``, ``head.box`` ...)."""
    return next((part for prefix, part in _PARTS.items() if key.startswith(prefix + ".")), key.split(".")[0])
