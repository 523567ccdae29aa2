"""Supernet training: single-path uniform sampling (one random candidate per step) distilled from the teacher.

Why KD on every path: the small paths of a one-shot supernet train badly on labels alone (BigNAS, LightTrack);
here each sampled path gets the JDE loss plus the teacher's three losses through :class:`~mot_kd.kd.KDHooks`,
hooked onto the path's standalone model (whose forward runs on the supernet's tensors). The key-feature
adapters depend only on the neck's channels, so one set per neck width is shared by all paths and trained
with them. ``sandwich=True`` (BigNAS' sandwich rule) adds the largest and the smallest path to each step.
The state (``weights/last.pt``) follows the trainer's conventions: tensors and builtins, atomic, resumable.
"""
from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Callable

import torch
from loguru import logger
from torch import nn
from tqdm import tqdm

from mot_kd.errors import InputError
from mot_kd.kd import KDHooks
from mot_kd.kd.settings import load_kd_config
from mot_kd.models.jde_model import STRIDES
from mot_kd.models.loss import JDELoss
from mot_kd.nas.supernet import Supernet
from mot_kd.train.checkpoint import load_training_state, save_training_state
from mot_kd.train.state import rng_state, set_rng_state


@dataclass(frozen=True)
class SupernetSettings:
    steps: int = 1000
    lr: float = 0.01
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 10.0
    sandwich: bool = False
    seed: int = 0
    save_every: int = 50


class SupernetTrainer:
    """``SupernetTrainer(supernet, teacher, num_ids, settings, out).fit(batch_at)``; ``batch_at(step)`` ->
    ``(images, targets)`` of that step, so a resumed run sees the same batches."""

    def __init__(self, supernet: Supernet, teacher: nn.Module, num_ids: int, settings: SupernetSettings,
                 out: str | Path, kd_cfg: str | Path | dict | None = None):
        self.net, self.teacher, self.s, self.out = supernet, teacher, settings, Path(out)
        cfg = load_kd_config(kd_cfg)
        self.kd_cfg = {**cfg, "build_input_size": None}  # adapters come from the shared sets below
        c = supernet.space.choices
        self.criteria = nn.ModuleDict({str(d): JDELoss(SimpleNamespace(nc=1, reg_max=16, strides=STRIDES, id_dim=d),
                                                       num_ids) for d in c["id_dim"]})
        self.connectors = nn.ModuleDict()
        for width in c["neck_width"]:  # one dry run per neck width creates that width's adapters
            cand = supernet.largest_per_block()[0]
            cand["neck_width"] = width
            kd = KDHooks(teacher, supernet.skeleton(cand), cfg)
            self.connectors[_width_key(width)] = kd.connectors
            kd.remove()
        params = [p for m in (supernet, self.criteria, self.connectors) for p in m.parameters() if p.requires_grad]
        self.optimizer = torch.optim.SGD(params, lr=settings.lr, momentum=settings.momentum,
                                         weight_decay=settings.weight_decay, nesterov=True)
        self.sampler = random.Random(settings.seed)
        self.step = 0

    def paths(self) -> list[dict]:
        """This step's candidates: one uniform sample, plus the largest and smallest with ``sandwich``."""
        space, c = self.net.space, self.net.space.choices
        sampled = [space.sample(self.sampler)]
        if self.s.sandwich:
            largest = self.sampler.choice(self.net.largest_per_block())
            block = self.sampler.choice(c["block"])
            smallest = space.candidate([{"block": block, "width": min(c["width"]), "depth": min(c["depth"]),
                                         "kernel": 3} for _ in space.stages], min(c["neck_width"]),
                                       min(c["neck_depth"]), min(c["id_dim"]))
            sampled = [largest, smallest, *sampled]
        return sampled

    def train_step(self, images: torch.Tensor, targets: torch.Tensor) -> dict:
        """One optimizer step over this step's paths; returns the mean loss parts."""
        self.net.train()
        self.optimizer.zero_grad(set_to_none=True)
        sums: dict[str, float] = {}
        paths = self.paths()
        teacher_taps = None
        for cand in paths:
            kd = KDHooks(self.teacher, self.net.skeleton(cand), self.kd_cfg)
            kd.connectors = self.connectors[_width_key(cand["neck_width"])]
            try:
                out = self.net(cand, images)
                loss, parts = self.criteria[str(cand["id_dim"])](out, targets)
                teacher_taps = kd.run_teacher(images) if teacher_taps is None else teacher_taps
                kd_loss, kd_parts = kd(images, targets, teacher_taps=teacher_taps)
                total = loss + kd_loss * images.shape[0]
                if not torch.isfinite(total):
                    raise InputError(f"supernet step {self.step}: non-finite loss; lower --lr")
                total.backward()
            finally:
                kd.remove()
            for k, v in {"loss": total, **parts, **{f"kd/{n}": x for n, x in kd_parts.items()}}.items():
                sums[k] = sums.get(k, 0.0) + float(v.detach()) / len(paths)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.s.grad_clip)
        self.optimizer.step()
        self.step += 1
        return sums

    def fit(self, batch_at: Callable[[int], tuple[torch.Tensor, torch.Tensor]]) -> list[dict]:
        rows = []
        bar = tqdm(range(self.step, self.s.steps), initial=self.step, total=self.s.steps, desc="supernet",
                   dynamic_ncols=True)
        for step in bar:
            images, targets = batch_at(step)
            rows.append(self.train_step(images, targets))
            bar.set_postfix(loss=f"{rows[-1]['loss']:.3g}")
            if self.step % self.s.save_every == 0 or self.step == self.s.steps:
                self.save()
        logger.info("supernet: {} steps done, state in {}", self.step, self.state_path)
        return rows

    @property
    def state_path(self) -> Path:
        return self.out / "weights" / "last.pt"

    def state_dict(self) -> dict:
        version, internal, gauss = self.sampler.getstate()
        return {"job": {"kind": "nas-supernet", "space": self.net.space.where, "settings": asdict(self.s)},
                "student": self.net.state_dict(), "criterion": self.criteria.state_dict(),
                "kd": self.connectors.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step,
                "rng": rng_state(), "sampler": [version, list(internal), gauss]}

    def save(self) -> None:
        self.state_path.parent.mkdir(parents=True, exist_ok=True)
        save_training_state(self.state_path, self.state_dict())

    def resume(self) -> None:
        """Continue from ``out/weights/last.pt`` exactly (weights, optimizer, sampler and torch RNG, step)."""
        state = load_training_state(self.out)
        if state["job"].get("kind") != "nas-supernet":
            raise InputError(f"{self.state_path}: a training state of another kind ({state['job'].get('kind')}), "
                             "not a supernet's")
        self.net.load_state_dict(state["student"])
        self.criteria.load_state_dict(state["criterion"])
        self.connectors.load_state_dict(state["kd"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.step = int(state["step"])
        set_rng_state(state["rng"])
        version, internal, gauss = state["sampler"]
        self.sampler.setstate((version, tuple(internal), gauss))


def _width_key(width: float) -> str:
    return str(width).replace(".", "_")
