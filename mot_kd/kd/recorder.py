"""Forward-hook recorder that captures named module outputs, owns its hook handles, and removes them.

Why a recorder of our own: distillation must work on models it never saw, so taps are addressed by module
name only. Records are overwritten at every forward (nothing accumulates over steps) and, for the student,
taken only in training passes with grad enabled, so a validation pass can never leave stale tensors behind.
"""
from __future__ import annotations

import difflib

import torch
from torch import nn

from mot_kd.errors import InputError


def closest_names(wanted: str, available: list[str], limit: int = 12) -> str:
    """Comma-separated module names, closest matches to ``wanted`` first (for error messages)."""
    close = difflib.get_close_matches(wanted, available, n=limit, cutoff=0.3)
    rest = [n for n in available if n not in close]
    shown = close + rest[: max(0, limit - len(close))]
    more = len(available) - len(shown)
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def find_modules(model: nn.Module, names: list[str], role: str) -> dict[str, nn.Module]:
    """Map each tap name to its module; InputError listing the available names when one is missing."""
    modules = dict(model.named_modules())
    available = [n for n in modules if n]
    found = {}
    for name in names:
        key = name if name in modules else f"module.{name}"  # the same names work under a DDP wrapper
        if not name or key not in modules:
            raise InputError(f"{role} tap '{name}': no module with this name in {type(model).__name__}; "
                             f"available (closest first): {closest_names(name, available)}")
        found[name] = modules[key]
    return found


class TapRecorder:
    """Records the forward outputs of named modules of one model.

    ``training_only=True`` (student): record only when the module is in training mode and grad is enabled.
    ``training_only=False`` (teacher): record only while :attr:`armed` is set, i.e. inside KDHooks' own
    teacher call. Setting ``forced`` records unconditionally (used for the one dry run at construction).
    """

    def __init__(self, model: nn.Module, names: list[str], role: str, training_only: bool):
        self.role = role
        self.training_only = training_only
        self.armed = False
        self.forced = False
        self.records: dict[str, torch.Tensor] = {}
        self._handles = [module.register_forward_hook(self._hook_for(name, module))
                         for name, module in find_modules(model, list(dict.fromkeys(names)), role).items()]

    def _hook_for(self, name: str, owner: nn.Module):
        def hook(module: nn.Module, args, output) -> None:
            if module is not owner or not self._should_record(module):  # deepcopies (EMA) share the hook
                return
            if not isinstance(output, torch.Tensor):
                raise InputError(f"{self.role} tap '{name}': module output is {type(output).__name__}, "
                                 "expected a tensor; tap a submodule that returns a tensor")
            self.records[name] = output
        return hook

    def _should_record(self, module: nn.Module) -> bool:
        if self.forced:
            return True
        if self.training_only:
            return module.training and torch.is_grad_enabled()
        return self.armed

    def take(self, names: list[str]) -> dict[str, torch.Tensor]:
        """Return the recorded tensors for ``names`` and forget all records (each record is used once)."""
        missing = [n for n in names if n not in self.records]
        if missing:
            self.records.clear()
            hint = ("call student(images) in training mode with grad enabled before kd(images, targets)"
                    if self.training_only else "the teacher forward did not reach these modules")
            raise InputError(f"{self.role} taps not recorded this step: {', '.join(missing)}; {hint}")
        taken = {n: self.records[n] for n in names}
        self.records.clear()
        return taken

    def remove(self) -> None:
        """Remove every hook this recorder registered and drop its records."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        self.records.clear()
