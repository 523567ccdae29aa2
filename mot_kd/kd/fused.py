"""Fused-model (module-level) distillation: hybrid forwards of student modules inside the frozen teacher.

Why: when teacher and student differ module by module (a Ghost backbone under a YOLOv5 neck), matching only
outputs or features leaves the teacher's structure unused. At each fuse point (a tap group such as
``backbone`` -> neck or ``neck`` -> head) the student's features, adapted to the teacher's channels, replace the
teacher's own tensors and the rest of the teacher (eval mode, no grad to its weights) runs on them; the gap
between this hybrid's responses and the teacher's (decoded head by pred-diff, embedding by ERC) trains the
student modules up to the fuse point and the adapter to act like their teacher counterparts.

Re-entering needs nothing from the model: a forward hook on each teacher fuse module returns the replacement
(a hook's return value replaces the module's output), so it works on any model whose fuse point is the whole
tensor output of a module that runs once per forward (the tap specs and recorder check both) and that the
responses depend on (checked by autograd at construction).
The teacher's modules before the fuse point still run in the hybrid pass (their output is replaced), without
building a graph since the teacher's weights need no grad.
"""
from __future__ import annotations

import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.kd.adapters import LazyConnectors
from mot_kd.kd.losses.erc import erc_loss
from mot_kd.kd.losses.pred_diff import pred_diff_loss
from mot_kd.kd.recorder import TapRecorder, resolve_module
from mot_kd.kd.tapspec import TapSpec


class HybridForward(nn.Module):
    """Hybrid teacher passes for the fuse points ``points`` (name -> (student specs, teacher specs)).

    ``response_specs`` are the teacher's head and embedding taps (group -> specs) the hybrid is judged by; only
    the adapters are parameters of this module.
    """

    def __init__(self, teacher: nn.Module, points: dict[str, tuple[list[TapSpec], list[TapSpec]]],
                 response_specs: dict[str, list[TapSpec]], adapter: str, identity_taps: set[str]):
        super().__init__()
        self._teacher = (teacher,)  # not a submodule: its weights are never parameters here
        self.points = points
        self.response_labels = {g: [s.label for s in v] for g, v in response_specs.items()}
        self.connectors = LazyConnectors(adapter, identity_taps)
        modules = dict(teacher.named_modules())
        self._fuse_modules = {spec.label: resolve_module(modules, spec.module)
                              for _, t_specs in points.values() for spec in t_specs}
        self._replacements: dict[int, tuple[str, torch.Tensor]] | None = None  # id(module) -> (label, tensor)
        self.recorder = TapRecorder(teacher, list(dict.fromkeys(s for v in response_specs.values() for s in v)),
                                    "hybrid teacher", training_only=False)
        self._handles = [m.register_forward_hook(self._replace) for m in set(self._fuse_modules.values())]

    def _replace(self, module: nn.Module, args, output):
        if self._replacements is None or id(module) not in self._replacements:
            return None
        label, tensor = self._replacements[id(module)]
        if not isinstance(output, torch.Tensor):
            raise InputError(f"fused: teacher fuse point '{label}' outputs a {type(output).__name__}, not a tensor; "
                             "it cannot be re-entered (fuse at a module whose whole output is one tensor)")
        if output.shape != tensor.shape:
            raise InputError(f"fused: the adapted student feature for '{label}' is {tuple(tensor.shape)} but the "
                             f"teacher's is {tuple(output.shape)}; fuse points must share the grid")
        return tensor.to(output.dtype)

    def run(self, images: torch.Tensor, point: str, student: list[torch.Tensor],
            teacher: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The teacher's responses (label -> tensor) with the adapted ``student`` features at ``point``."""
        s_specs, t_specs = self.points[point]
        replaced = [self.connectors(s.label, x, t.shape[1]) for s, x, t in zip(s_specs, student, teacher)]
        return self._forward(images, {id(self._fuse_modules[t.label]): (t.label, x) for t, x in zip(t_specs, replaced)})

    def _forward(self, images: torch.Tensor, replacements: dict) -> dict[str, torch.Tensor]:
        teacher = self._teacher[0]
        self._replacements = replacements
        self.recorder.armed = True
        try:
            with torch.enable_grad():
                teacher(images)
        finally:
            self.recorder.armed, self._replacements = False, None
        return self.recorder.take(list(dict.fromkeys(n for v in self.response_labels.values() for n in v)))

    def check_reentry(self, images: torch.Tensor, point: str, teacher: list[torch.Tensor]) -> None:
        """Every fuse tensor of ``point`` must reach the responses: feed the teacher's own features back in as
        grad-requiring leaves and ask autograd which of them the responses depend on."""
        _, t_specs = self.points[point]
        with torch.enable_grad():
            leaves = [t.detach().clone().requires_grad_(True) for t in teacher]
            responses = self._forward(images, {id(self._fuse_modules[s.label]): (s.label, x)
                                               for s, x in zip(t_specs, leaves)})
            total = sum(v.float().sum() for v in responses.values() if v.requires_grad)
            grads = (torch.autograd.grad(total, leaves, allow_unused=True) if torch.is_tensor(total)
                     else [None] * len(leaves))
        unused = [s.label for s, g in zip(t_specs, grads) if g is None]
        if unused:
            raise InputError(f"fused.points: fuse point '{point}' cannot be re-entered: the teacher's head/embedding "
                             f"taps do not depend on '{', '.join(unused)}'; fuse at modules on the path from the input "
                             "to the head and embedding taps")

    def loss(self, images: torch.Tensor, point: str, student: list[torch.Tensor], teacher: list[torch.Tensor],
             teacher_responses: dict[str, list[torch.Tensor]], decode, targets: torch.Tensor, cfg: dict,
             pred_diff: dict, erc: dict) -> torch.Tensor:
        """Output gap of one fuse point: pred-diff(teacher head -> hybrid head) + ERC(teacher -> hybrid embedding).

        ``decode(group -> tensors)`` turns head taps into :class:`~mot_kd.kd.decoders.Decoded`.
        """
        hybrid = self.run(images, point, student, teacher)
        hybrid = {g: [hybrid[n].float() for n in names] for g, names in self.response_labels.items()}
        head = [g for g in hybrid if g != "embedding"]
        det, _ = pred_diff_loss(decode({g: teacher_responses[g] for g in head}), decode({g: hybrid[g] for g in head}),
                                **pred_diff)
        ident = erc_loss(teacher_responses["embedding"][0], hybrid["embedding"][0], targets, **erc)
        return cfg["det_weight"] * det + cfg["id_weight"] * ident

    def remove(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.recorder.remove()
