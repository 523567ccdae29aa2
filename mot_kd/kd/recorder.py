"""Forward-hook recorder for tap specs: owns its hook handles, removes them, and stays out of model copies.

Why a recorder of our own: distillation must work on models it never saw, so taps are addressed by spec
(:mod:`mot_kd.kd.tapspec`) only. Records live for one forward of the model (a pre-hook on the root starts a
new one) and are taken once by ``kd()``; the student records only in training passes with grad enabled, so a
validation pass can never leave stale tensors behind. Each record keeps the tensor's autograd version, so a
tap modified in place before ``kd()`` (FairMOT's criterion calls ``sigmoid_()`` on its heatmap) is an error,
not a silently different tensor. The hooks are bound methods of the recorder, which a deep copy of a hooked
model (an EMA) shares instead of copying and which pickles (``torch.save(model)``) as an inert stand-in;
``remove()`` also clears the hooks such copies carry (copies of copies too). ``nn.DataParallel`` over several
GPUs runs per-GPU replicas that share the original's hook dicts: each replica holds only part of the batch, so
their forwards are noted and ``kd()`` refuses them instead of distilling a part (DDP runs the module itself).
"""
from __future__ import annotations

import weakref

import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.kd.tapspec import TapSpec


def resolve_module(modules: dict[str, nn.Module], name: str) -> nn.Module | None:
    """The module called ``name``; also under a DDP or one-GPU DataParallel wrapper (``module.`` prefix)."""
    return modules.get(name) if name in modules else modules.get(f"module.{name}")


def missing_modules(model: nn.Module, specs: list[TapSpec]) -> list[TapSpec]:
    """The specs whose module ``model`` does not have."""
    modules = dict(model.named_modules())
    return [s for s in specs if not s.module or resolve_module(modules, s.module) is None]


class _Detached:
    """What a pickled recorder becomes (``torch.save`` of a hooked model): its hooks do nothing and drop
    themselves from the loaded module at its first forward."""

    def _drop(self, module: nn.Module) -> None:
        for hooks in (module._forward_pre_hooks, module._forward_hooks):
            for key in [k for k, h in hooks.items() if getattr(h, "__self__", None) is self]:
                del hooks[key]

    def _on_start(self, module, args) -> None:
        self._drop(module)

    def _on_input(self, module, args) -> None:
        self._drop(module)

    def _on_output(self, module, args, output) -> None:
        self._drop(module)

    _on_end = _on_output


class TapRecorder:
    """Records the tensors named by ``specs`` on one model.

    ``training_only=True`` (student): record only when the module is in training mode and grad is enabled.
    ``training_only=False`` (teacher): record only while :attr:`armed` is set, i.e. inside KDHooks' own
    teacher call. Setting ``forced`` records unconditionally (used for the one dry run at construction).
    """

    def __init__(self, model: nn.Module, specs: list[TapSpec], role: str, training_only: bool):
        self.role = role
        self.training_only = training_only
        self.armed = False
        self.forced = False
        self.records: dict[str, tuple[torch.Tensor, int, bool]] = {}  # label -> (tensor, autograd version,
        # modified in place later in the same forward)
        self._specs = {s.label: s for s in specs}
        self._calls: dict[int, int] = {}  # id(module) -> calls in the current forward
        self._taps: dict[int, tuple[nn.Module, list[TapSpec]]] = {}
        self._copies: dict[tuple[int, int], weakref.ref] = {}  # (id(hook dict of a copy), hook id) -> dict
        self._replicas: dict[int, set[int]] = {}  # id(shared hook dict) -> ids of DataParallel replicas seen
        missing = missing_modules(model, list(self._specs.values()))
        if missing:  # KDHooks checks first and suggests candidates; this guards direct use
            raise InputError(f"{role} taps not found in {type(model).__name__}: "
                             + ", ".join(f"'{s.module}'" for s in missing))
        modules = dict(model.named_modules())
        self._modules = {label: resolve_module(modules, spec.module) for label, spec in self._specs.items()}
        for label, spec in self._specs.items():
            self._taps.setdefault(id(self._modules[label]), (self._modules[label], []))[1].append(spec)
        self._root = model
        self._handles = [model.register_forward_pre_hook(self._on_start), model.register_forward_hook(self._on_end)]
        for module, taps in self._taps.values():
            self._handles.append(module.register_forward_pre_hook(self._on_input))
            if any(s.input is None for s in taps):
                self._handles.append(module.register_forward_hook(self._on_output))

    def __deepcopy__(self, memo):
        """A deep copy of a hooked model shares this recorder (its hooks ignore modules they were not
        registered on); the copy's hook dicts, already in ``memo`` while their entries are copied, are noted
        so that :meth:`remove` clears them too. The sources are the model's hook dicts and those of the copies
        noted so far, as a copy of a copy (ultralytics saves ``deepcopy(ema.ema)``) carries the same hooks;
        copies that are gone are forgotten here."""
        self._copies = {k: ref for k, ref in self._copies.items() if ref() is not None}
        sources = [(h.hooks_dict_ref(), h.id) for h in self._handles]
        sources += [(ref(), key) for (_, key), ref in self._copies.items()]
        for original, key in sources:
            copied = memo.get(id(original)) if original is not None else None
            if copied is not None and copied is not original:
                self._copies[(id(copied), key)] = weakref.ref(copied)
        return self

    def __reduce__(self):
        return _Detached, ()

    def _replica(self, module: nn.Module) -> bool:
        """Whether ``module`` is a DataParallel replica (hooks fire on it, not on our module); noted for take()."""
        if not getattr(module, "_is_replica", False):
            return False
        if self._should_record(module):
            self._replicas.setdefault(id(module._forward_pre_hooks), set()).add(id(module))
        return True

    def _owned(self, module: nn.Module) -> list[TapSpec] | None:
        entry = self._taps.get(id(module))
        return entry[1] if entry is not None and entry[0] is module and self._should_record(module) else None

    def _on_start(self, module, args) -> None:
        if module is self._root and self._should_record(module):  # a new forward: records and call counts reset
            self.records.clear()
            self._calls.clear()
            self._replicas.clear()
        else:
            self._replica(module)

    def _on_end(self, module, args, output) -> None:
        if module is self._root and self._should_record(module):  # who modified a tap in place: forward or after
            for label, (tensor, version, _) in self.records.items():
                if version >= 0 and tensor._version != version:
                    self.records[label] = (tensor, version, True)

    def _on_input(self, module, args) -> None:
        taps = None if self._replica(module) else self._owned(module)
        if taps is None:
            return
        call = self._calls[id(module)] = self._calls.get(id(module), 0) + 1
        for spec in taps:
            if spec.input is not None and spec.call in (None, call - 1):
                if spec.input >= len(args):
                    raise InputError(f"{self.role} tap '{spec.label}': '{spec.module}' got {len(args)} positional "
                                     f"inputs, no input {spec.input}")
                self._record(spec, spec.select(args[spec.input], self.role))

    def _on_output(self, module, args, output) -> None:
        taps = self._owned(module)
        if taps is None:
            return
        call = self._calls.get(id(module), 1)
        for spec in taps:
            if spec.input is None and spec.call in (None, call - 1):
                self._record(spec, spec.select(output, self.role))

    def _record(self, spec: TapSpec, tensor: torch.Tensor) -> None:
        self.records[spec.label] = (tensor, -1 if tensor.is_inference() else tensor._version, False)

    def _should_record(self, module: nn.Module) -> bool:
        if self.forced:
            return True
        if self.training_only:
            return module.training and torch.is_grad_enabled()
        return self.armed

    def take(self, labels: list[str]) -> dict[str, torch.Tensor]:
        """The recorded (B, C, H, W)-permuted-if-BHWC tensors for ``labels``; all records are then forgotten."""
        try:
            if self._replicas:
                gpus = max(len(ids) for ids in self._replicas.values())
                raise InputError(f"{self.role} taps: nn.DataParallel over {gpus} GPUs runs replicas KD cannot see; "
                                 "use DistributedDataParallel or one GPU")
            for label in labels:
                self._check_calls(self._specs[label])
            missing = [n for n in labels if n not in self.records]
            if missing:
                hint = ("call student(images) in training mode with grad enabled before kd(images, targets)"
                        if self.training_only else "the teacher forward did not reach these modules")
                raise InputError(f"{self.role} taps not recorded this step: {', '.join(missing)}; {hint}")
            return {n: self._checked(self._specs[n], *self.records[n]) for n in labels}
        finally:
            self.records.clear()
            self._calls.clear()
            self._replicas.clear()

    def _check_calls(self, spec: TapSpec) -> None:
        calls = self._calls.get(id(self._modules[spec.label]), 0)
        if spec.call is None and calls > 1:
            raise InputError(f"{self.role} tap '{spec.label}': module '{spec.module}' ran {calls} times in one "
                             f"forward; say which call to record with {{module: {spec.module}, call: 0..{calls - 1}}}")
        if spec.call is not None and calls and spec.call >= calls:
            raise InputError(f"{self.role} tap '{spec.label}': module '{spec.module}' ran {calls} time(s) in one "
                             f"forward, so call: {spec.call} (0-based) never happened")

    def _checked(self, spec: TapSpec, tensor: torch.Tensor, version: int, in_forward: bool) -> torch.Tensor:
        if version >= 0 and tensor._version != version:
            if in_forward:
                hint = ("later in the model's own forward (e.g. an inplace ReLU or `+=` after this module); tap "
                        "the module that modifies it, or a module whose output is not modified in place")
            else:
                hint = ("after the forward, before kd(); call kd(images, targets) before the criterion (it may "
                        "modify outputs in place, e.g. sigmoid_()) or tap a module whose output is not modified")
            raise InputError(f"{self.role} tap '{spec.label}': the recorded tensor was modified in place "
                             f"(autograd version {version} -> {tensor._version}) {hint}")
        return tensor.permute(0, 3, 1, 2) if spec.layout == "BHWC" else tensor

    def remove(self) -> None:
        """Remove every hook this recorder registered, on the model and on deep copies of it, and drop records."""
        for handle in self._handles:
            handle.remove()
        for (_, key), ref in self._copies.items():
            hooks = ref()
            if hooks is not None:
                hooks.pop(key, None)
        self._handles.clear()
        self._copies.clear()
        self.records.clear()
