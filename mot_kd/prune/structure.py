"""What Torch-Pruning may prune in a :class:`~mot_kd.models.JDEModel`, and the channel ratio that meets a FLOPs goal.

Why Torch-Pruning (DepGraph): the couplings through C3 residuals, Concat, SPPF, the decoupling modules and the
embedding head are traced from the autograd graph, never written by hand. The model's interface is kept: the
last convolution of every box/class branch (``4 * reg_max`` and ``nc`` outputs), the DFL projection and the
embedding projection (``id_dim``) are ignored layers, and the decoupling modules' ``mix`` weights are named so
the library neither warns about nor prunes them. With per-layer (local) pruning every layer keeps the same
fraction of its channels whatever the importance, so the FLOPs of a ratio are a property of the structure (and
of which layers the importance can rank) and the ratio for a goal is searched on pruned copies.
"""
from __future__ import annotations

import copy
from typing import Callable

import torch
import torch_pruning as tp
from loguru import logger
from torch import nn

from mot_kd.errors import InputError
from mot_kd.models import JDEModel
from mot_kd.models.decouple import CrossCorrelationDecouple
from mot_kd.models.info import model_card
from mot_kd.models.widths import layer_widths

MAX_TRIES = 6


def interface_layers(model: JDEModel) -> list[nn.Module]:
    """Layers whose output channels are the model's outputs: box/class logits, DFL bins, the embedding."""
    detect = model.head.detect
    return [*(cv[-1] for cv in detect.cv2), *(cv[-1] for cv in detect.cv3), detect.dfl, model.embedding.fuse[-1]]


def make_pruner(model: JDEModel, importance: tp.importance.Importance, ratio: float, imgsz: tuple[int, int],
                round_to: int | None = None) -> tp.pruner.MetaPruner:
    """A one-step local pruner removing ``ratio`` of the channels of every prunable layer of ``model``.

    ``round_to`` keeps channel counts multiples of it (Torch-Pruning's option): SIMD kernels run odd widths
    slower, so the FLOPs saved turn into less time saved without it.
    """
    mix = [m.mix for m in model.modules() if isinstance(m, CrossCorrelationDecouple)]
    example = torch.zeros(1, 3, imgsz[1], imgsz[0], device=next(model.parameters()).device)
    was_training = model.training
    model.eval()
    try:
        return tp.pruner.MetaPruner(model, example, importance=importance, pruning_ratio=ratio,
                                    ignored_layers=[*interface_layers(model), *mix],
                                    unwrapped_parameters=[(p, 0) for p in mix], round_to=round_to)
    finally:
        model.train(was_training)


ImportanceFor = Callable[[JDEModel], tp.importance.Importance]  # the importance bound to one model copy


def smallest_layer(model: JDEModel, importance: tp.importance.Importance, imgsz: tuple[int, int]) -> tuple[str, int]:
    """(name, channels) of the prunable layer with the fewest output channels (groups ``importance`` can rank)."""
    pruner = make_pruner(model, importance, 0.0, imgsz)
    names = {m: n for n, m in model.named_modules()}
    sizes = []
    for group in pruner.DG.get_all_groups(ignored_layers=pruner.ignored_layers,
                                          root_module_types=pruner.root_module_types):
        root = group[0].dep.target.module
        channels = pruner.DG.get_out_channels(root)
        # the groups MetaPruner.step ranks: its own size check (which skips one-channel layers), then importance
        if pruner._check_pruning_ratio(group) and importance(group) is not None:
            sizes.append((channels, names[root]))
    if not sizes:
        raise InputError("model: Torch-Pruning found no prunable layer")
    channels, name = min(sizes)
    return name, channels


def pruned_copy(model: JDEModel, importance_for: ImportanceFor, ratio: float, imgsz: tuple[int, int],
                round_to: int | None = None) -> JDEModel:
    """A deep copy of ``model`` with ``ratio`` of each layer's channels removed; ``arch["widths"]`` records them."""
    clone = copy.deepcopy(model)
    if ratio > 0:
        make_pruner(clone, importance_for(clone), ratio, imgsz, round_to).step()
        clone.arch = {**clone.arch, "widths": layer_widths(clone)}
    return clone


def gflops(model: JDEModel, imgsz: tuple[int, int]) -> float:
    return model_card(model, imgsz)["gflops"]


def gflops_floor(model: JDEModel, importance_for: ImportanceFor, imgsz: tuple[int, int]) -> tuple[float, float, str]:
    """(u, GFLOPs, layer) where the smallest prunable ``layer`` keeps one channel: no goal below is reachable."""
    name, channels = smallest_layer(copy.deepcopy(model), importance_for(model), imgsz)
    u_min = (1.0 / channels) ** 2
    return u_min, gflops(pruned_copy(model, importance_for, 1.0 - u_min ** 0.5, imgsz), imgsz), \
        f"{name} ({channels} channels)"


def check_reachable(model: JDEModel, importance_for: ImportanceFor, goal: float, imgsz: tuple[int, int],
                    what: str) -> tuple[float, float]:
    """InputError naming the layer that would lose every channel when ``goal`` GFLOPs is out of reach."""
    u_min, floor, layer = gflops_floor(model, importance_for, imgsz)
    if floor > goal:
        raise InputError(f"{what}: would remove every channel of layer {layer}: {goal:.4g} GFLOPs asked, one "
                         f"channel per layer still costs {floor:.4g}")
    return u_min, floor


def prune_to_gflops(model: JDEModel, importance_for: ImportanceFor, goal: float, imgsz: tuple[int, int],
                    what: str, tolerance: float = 0.02, round_to: int | None = None) -> tuple[JDEModel, float]:
    """A pruned copy of ``model`` with at most ``goal`` GFLOPs (and within ``tolerance`` of it), and its ratio.

    Why the secant on ``u = (1 - ratio)^2``: a convolution's FLOPs scale with its input times its output
    channels, so the model's FLOPs are nearly linear in ``u`` (plus the kept interface layers) and the goal is
    met in two or three pruned copies instead of a dozen bisection steps. A goal below what one channel per
    layer leaves is an InputError naming the layer that would lose every channel.
    """
    above = [(1.0, gflops(model, imgsz))]  # (u, GFLOPs) points over the goal; u = 1 is the unpruned model
    low, best, u_min = None, None, None
    aim = goal * (1 - tolerance / 2)
    u = aim / above[0][1]  # first guess: every FLOP scales with u
    for _ in range(MAX_TRIES):
        if u_min is None and u < 0.25:  # deep pruning: is the goal reachable at all?
            u_min, floor = check_reachable(model, importance_for, goal, imgsz, what)
            low = low or (u_min, floor)
        u = max(u, u_min or 0.0)
        clone = pruned_copy(model, importance_for, 1.0 - u ** 0.5, imgsz, round_to)
        cost = gflops(clone, imgsz)
        logger.debug(f"ratio {1 - u ** 0.5:.3f}: {cost:.4g} GFLOPs (goal {goal:.4g})")
        if cost <= goal:
            if cost >= goal * (1 - tolerance):
                return clone, 1.0 - u ** 0.5
            low, best = (u, cost), (clone, 1.0 - u ** 0.5)
        else:
            above.append((u, cost))
        (u0, f0), (u1, f1) = (low, above[-1]) if low else above[-2:]  # interpolate, else extrapolate
        u = u0 + (aim - f0) * (u1 - u0) / (f1 - f0)
    if best is None:
        raise InputError(f"{what}: no channel ratio met {goal:.4g} GFLOPs within {MAX_TRIES} tries")
    logger.warning(f"{what}: {gflops(best[0], imgsz):.4g} GFLOPs after {MAX_TRIES} tries ({goal:.4g} asked)")
    return best
