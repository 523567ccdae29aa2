"""Weight-sharing supernet: one tensor per layer at its largest shape, every candidate a slice of them.

Why slices of shared tensors (single-path one-shot, Guo et al. 2020, as LightTrack trains its supernets): a
candidate's standalone model is built from the search space as usual, then run with
``torch.func.functional_call`` on views of the shared tensors (first channels of each dimension, the centre
of each kernel), so gradients and batch-norm statistics land in the supernet and extracting a candidate is
copying those same views into its model: its outputs equal the supernet path's exactly. Layers of a searched
stage are shared per block type (a C3 and a Ghost stage share nothing); everything else is shared by name.
Known limit: first-k slicing does not align channel segments behind a concatenation (see docs/nas.md).
"""
from __future__ import annotations

import copy
import json

import torch
from torch import nn
from torch.func import functional_call

from mot_kd.errors import InputError
from mot_kd.models.jde_model import JDEModel
from mot_kd.nas.space import BLOCKS, SearchSpace, build_candidate


class Supernet(nn.Module):
    """``supernet(candidate, images)`` -> the candidate's outputs; :meth:`extract` -> its standalone model."""

    def __init__(self, space: SearchSpace):
        super().__init__()
        self.space = space
        self.shared = nn.ParameterDict()
        self._buffer_keys: set[str] = set()
        self._skeleton: tuple[str, JDEModel] | None = None
        for cand in self.largest_per_block():
            model = build_candidate(cand)
            params = {n for n, _ in model.named_parameters()}
            for name, t in model.state_dict().items():
                self._grow(self.key(cand, name), t, name in params)

    def largest_per_block(self) -> list[dict]:
        """Per block type, the candidate with that block everywhere and every choice at its largest."""
        c = self.space.choices
        return [self.space.candidate([{"block": b, "width": max(c["width"]), "depth": max(c["depth"]),
                                       "kernel": max(k for k in [3, *c["kernel"]] if k in BLOCKS[b])}
                                      for _ in self.space.stages], max(c["neck_width"]), max(c["neck_depth"]),
                                     max(c["id_dim"])) for b in c["block"]]

    def key(self, candidate: dict, name: str) -> str:
        """The shared tensor's key: stage layers (downsampling row and block row) are prefixed by block type."""
        parts = name.split(".")
        if parts[:2] == ["backbone", "layers"]:
            row = int(parts[2])
            for r, stage in zip(candidate["rows"], candidate["stages"]):
                if row in (r - 1, r):
                    return f"{stage['block']}:{name.replace('.', ':')}"
        return name.replace(".", ":")

    def _grow(self, key: str, t: torch.Tensor, is_param: bool) -> None:
        old = self.shared[key] if key in self.shared else None
        if old is not None and old.shape == t.shape:
            return
        if old is not None:
            if old.ndim != t.ndim:
                raise InputError(f"supernet: tensor {key} has {old.ndim} and {t.ndim} dimensions in two candidates")
            if all(a >= b for a, b in zip(old.shape, t.shape)):
                return
            if not all(b >= a for a, b in zip(old.shape, t.shape)):
                raise InputError(f"supernet: tensor {key} is {tuple(old.shape)} and {tuple(t.shape)} in two largest "
                                 "candidates (neither holds the other)")
        self.shared[key] = nn.Parameter(t.detach().clone(), requires_grad=is_param and t.is_floating_point())
        if not is_param:
            self._buffer_keys.add(key)

    def skeleton(self, candidate: dict) -> JDEModel:
        """The candidate's standalone model (built once per candidate in a row; its own tensors are unused)."""
        self.space.contains(candidate)
        sig = json.dumps(candidate, sort_keys=True)
        if self._skeleton is None or self._skeleton[0] != sig:
            self._skeleton = (sig, build_candidate(candidate).to(next(iter(self.shared.values())).device))
        return self._skeleton[1]

    def tensors(self, candidate: dict, model: JDEModel) -> dict[str, torch.Tensor]:
        """``{state_dict name: view of the shared tensor}`` for ``model``, the candidate's standalone model."""
        out = {}
        for name, t in model.state_dict().items():
            key = self.key(candidate, name)
            if key not in self.shared:
                raise InputError(f"supernet: candidate layer {name} has no shared tensor (not in the space?)")
            out[name] = _slice(self.shared[key], t.shape, key)
        return out

    def forward(self, candidate: dict, images: torch.Tensor) -> dict:
        model = self.skeleton(candidate)
        model.train(self.training)
        return functional_call(model, self.tensors(candidate, model), (images,), strict=True)

    @torch.no_grad()
    def extract(self, candidate: dict) -> JDEModel:
        """The candidate as a standalone model holding a copy of its supernet weights (weight inheritance)."""
        model = build_candidate(copy.deepcopy(candidate))
        model.load_state_dict({k: v.detach().clone() for k, v in self.tensors(candidate, model).items()})
        return model.to(next(iter(self.shared.values())).device)


def _slice(t: torch.Tensor, shape: torch.Size, key: str) -> torch.Tensor:
    if t.ndim != len(shape) or any(s > m for s, m in zip(shape, t.shape)):
        raise InputError(f"supernet: {key} needs shape {tuple(shape)}, the shared tensor is {tuple(t.shape)}")
    index = []
    for dim, (s, m) in enumerate(zip(shape, t.shape)):
        start = (m - s) // 2 if dim >= 2 else 0  # kernels: the centre (a 3x3 inside a 5x5); channels: the first
        index.append(slice(start, start + s))
    return t[tuple(index)]

