"""YOLOv5 backbone + PAN neck built from an ultralytics-style YAML with ultralytics' own ``parse_model``.

Why not ``ultralytics.nn.tasks.DetectionModel``: the tracker needs the neck outputs split into detection
and identity branches before any head, and stable module names for distillation taps. So the YAML rows
(without a Detect row) are parsed by ultralytics and run here by their ``from`` indices, exactly as
``BaseModel._predict_once`` does, in two named parts: ``backbone`` and ``neck`` (whose ``p3/p4/p5`` taps
output the PAN features).
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import torch
from torch import nn
from ultralytics.nn.tasks import parse_model

from mot_kd.config import CONFIG_ROOT, did_you_mean, load_yaml, resolve_config
from mot_kd.models import blocks  # noqa: F401  (registers the search space's row modules with ultralytics)
from mot_kd.errors import InputError

LEVELS = ("p3", "p4", "p5")
_SCALED_NAME = re.compile(r"(?P<base>.*?\d)(?P<scale>[nsmlx])(?P<rest>.*)")  # yolov5s-ghost -> yolov5-ghost, s


class Tap(nn.Identity):
    """A named no-op: its forward output is the tensor that distillation hooks read under its module name."""


def resolve_model_cfg(name: str | Path | dict, scale: str | None = None) -> tuple[dict, str | None]:
    """Return (model YAML dict, scale) for a shipped name (``yolov5s``, ``yolov5s-ghost``), a YAML path or a dict.

    A scaled name picks ``configs/models/<base><rest>.yaml`` with scale letter ``<scale>``, as ultralytics does
    for ``yolov5s.yaml`` -> ``yolov5.yaml`` + ``s``.
    """
    if isinstance(name, dict):
        cfg = copy.deepcopy(name)
    else:
        try:
            path = resolve_config(name, "models")
        except InputError:
            path, scale = _scaled_config(str(name), scale)
        cfg = load_yaml(path, "models")
    _check_cfg(cfg, name)
    scales = cfg.get("scales")
    if scales:
        scale = scale or cfg.get("scale")
        if scale not in scales:
            raise InputError(f"model {name!r}: scale {scale!r} not in the config's scales {sorted(scales)}")
    elif scale is not None:
        raise InputError(f"model {name!r}: scale {scale!r} given but the config has no scales table")
    return cfg, scale


def _scaled_config(name: str, scale: str | None) -> tuple[Path, str]:
    """``yolov5s-ghost`` -> (configs/models/yolov5-ghost.yaml, "s"), else InputError listing shipped models."""
    shipped = CONFIG_ROOT / "models"
    if Path(name).suffix in (".yaml", ".yml") and Path(name).parent != Path("."):
        raise InputError(f"{name}: no such model YAML file")
    match = _SCALED_NAME.fullmatch(Path(name).stem)
    path = shipped / f"{match['base']}{match['rest']}.yaml" if match else None
    if path is None or not path.is_file():
        available = sorted(p.stem for p in shipped.glob("*.yaml"))
        names = [f"{m[1]}{letter}{m[2]}" for m in (re.fullmatch(r"(.*?\d)(.*)", a) for a in available) if m
                 for letter in "nsmlx"]  # yolov5-ghost -> yolov5n-ghost ... yolov5x-ghost
        hint = did_you_mean(Path(name).stem, names, listing=None)
        raise InputError(f"model {name!r}: not a model YAML file nor a shipped model{hint}; shipped: "
                         f"{', '.join(available)} (scales n/s/m/l/x, e.g. yolov5s, yolov5s-ghost)")
    if scale is not None and scale != match["scale"]:
        raise InputError(f"model {name!r}: scale {scale!r} contradicts the name's scale {match['scale']!r}")
    return path, match["scale"]


def _check_cfg(cfg: dict, name) -> None:
    for key in ("backbone", "neck", "outputs"):
        if not isinstance(cfg.get(key), list) or not cfg[key]:
            raise InputError(f"model {name!r}: config needs a non-empty list {key!r}")
    if len(cfg["outputs"]) != len(LEVELS):
        raise InputError(f"model {name!r}: 'outputs' must name {len(LEVELS)} layers (P3, P4, P5), got {cfg['outputs']}")


class LayerGraph(nn.Module):
    """Ultralytics layers run in order; each reads the cached outputs its ``f`` ('from') indices name."""

    def __init__(self, layers: list[nn.Module], keep: set[int]):
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.keep = frozenset(keep)

    def run(self, x, cache: list) -> torch.Tensor:
        for m in self.layers:
            if m.f != -1:
                x = cache[m.f] if isinstance(m.f, int) else [x if j == -1 else cache[j] for j in m.f]
            x = m(x)
            cache.append(x if m.i in self.keep else None)
        return x


class Backbone(LayerGraph):
    def forward(self, images: torch.Tensor) -> list:
        """Return the layer-output cache (kept entries only) that the neck reads from."""
        cache: list = []
        self.run(images, cache)
        return cache


class PanNeck(LayerGraph):
    def __init__(self, layers: list[nn.Module], keep: set[int], outputs: list[int]):
        super().__init__(layers, keep)
        self.outputs = tuple(outputs)
        for level in LEVELS:
            setattr(self, level, Tap())

    def forward(self, cache: list) -> tuple[torch.Tensor, ...]:
        cache = list(cache)
        self.run(cache[-1], cache)
        return tuple(getattr(self, level)(cache[i]) for level, i in zip(LEVELS, self.outputs))


def build_trunk(cfg: dict, scale: str | None, in_channels: int = 3) -> tuple[Backbone, PanNeck, list[int]]:
    """Parse the YAML rows with ultralytics; return backbone, neck and the P3/P4/P5 channel counts."""
    d = copy.deepcopy({k: v for k, v in cfg.items() if k not in ("backbone", "neck")})
    d.update(backbone=copy.deepcopy(cfg["backbone"]), head=copy.deepcopy(cfg["neck"]), scale=scale)
    try:
        seq, save = parse_model(d, ch=in_channels, verbose=False)
    except (KeyError, TypeError, ValueError, IndexError) as exc:
        raise InputError(f"model config: ultralytics could not parse its rows ({type(exc).__name__}: {exc})") from None
    layers = list(seq)
    outputs = [int(i) for i in cfg["outputs"]]
    if not all(0 <= i < len(layers) for i in outputs):
        raise InputError(f"model config: outputs {outputs} outside the {len(layers)} layers")
    keep = set(save) | set(outputs) | {len(cfg["backbone"]) - 1}
    n_back = len(cfg["backbone"])
    backbone = Backbone(layers[:n_back], keep)
    neck = PanNeck(layers[n_back:], keep, outputs)
    channels = _output_channels(backbone, neck, in_channels)
    return backbone, neck, channels


@torch.no_grad()
def _output_channels(backbone: Backbone, neck: PanNeck, in_channels: int) -> list[int]:
    """Channels of P3/P4/P5 from one tiny forward (robust to any row layout); also checks strides 8/16/32."""
    was_training = backbone.training
    backbone.eval()
    neck.eval()
    try:
        feats = neck(backbone(torch.zeros(1, in_channels, 64, 64)))
    finally:
        backbone.train(was_training)
        neck.train(was_training)
    strides = [64 // f.shape[-1] for f in feats]
    if strides != [8, 16, 32]:
        raise InputError(f"model config: outputs have strides {strides}, expected [8, 16, 32]")
    return [f.shape[1] for f in feats]
