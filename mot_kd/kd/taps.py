"""Tap finder: every module's output (type, shape, stride) on a sample input, likely taps marked per group.

Why: a user distilling a model they did not write must name its taps. One dry run with temporary hooks
shows every module's output (list/tuple/dict outputs per element, in index syntax), tensors that exist only
as a module's input (built inside another module's ``forward``: tap them with ``input: i``), modules that
run more than once (``call: k``) and channels-last maps (``layout: BHWC``), in execution order. Marks:
``neck`` = the last 4-D feature feeding further modules at strides 8/16/32, ``embedding`` = the last 4-D map
with 64-512 channels at stride 4/8 (a model output preferred), ``head`` = model-output tensors (used by no
further module) with few channels or 5-D (YOLO ``(B, na, H, W, 5 + nc)``). The same rows back the
suggestions of KDHooks' missing-tap error.

Usage: ``python -m mot_kd.kd.taps --factory package.module:function [--input H W] [--eval]``.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
from dataclasses import dataclass, field

import torch
from torch import nn

from mot_kd.config import did_you_mean
from mot_kd.errors import InputError, cli_entry
from mot_kd.kd.tapspec import TapSpec, describe_value, grid_stride

NECK_STRIDES = (8, 16, 32)
NECK_MIN_CHANNELS = 8
EMBEDDING_STRIDES = (4, 8)
EMBEDDING_CHANNELS = (64, 512)
HEAD_MAX_CHANNELS = 64
GROUP_MARKS = {"neck": "neck", "embedding": "embedding"}  # every other group (head outputs) -> "head"


@dataclass
class TapRow:
    """One line of the finder: ``tap`` is what to write in the KD config."""

    tap: str
    module: str
    module_type: str
    value: str
    order: int
    tensor: torch.Tensor | None = None
    stride: int | None = None
    channels_last: bool = False
    final: bool = False
    calls: int = 1
    marks: list[str] = field(default_factory=list)

    @property
    def channels(self) -> int | None:
        if self.tensor is None or self.tensor.dim() < 4:
            return None
        if self.channels_last or self.tensor.dim() == 5:  # (B, H, W, C) or YOLO's (B, na, H, W, 5 + nc)
            return int(self.tensor.shape[-1])
        return int(self.tensor.shape[1])


def _elements(value, path=(), depth: int = 3):
    """(index path, value) of every leaf of a nested list/tuple/dict output."""
    if isinstance(value, (list, tuple, dict)) and depth > 0:
        for key, item in (value.items() if isinstance(value, dict) else enumerate(value)):
            yield from _elements(item, path + (key,), depth - 1)
    else:
        yield path, value


def _tensors(value) -> list[torch.Tensor]:
    return [v for _, v in _elements(value) if isinstance(v, torch.Tensor)]


def _dry_run(model: nn.Module, images: torch.Tensor, training: bool):
    """Events in execution order, ('in', name, module, index, tensor) and ('out', name, module, output) of each
    module's first call; call counts; ids of every tensor some module call returned; ids of the tensors some
    module call consumed (took in and did not pass through, as an identity tap point or list module does)."""
    names = {}
    for name, module in model.named_modules():
        names.setdefault(id(module), name)
    events, calls, keep, produced, consumed = [], {}, [], {id(images)}, set()

    def pre(module, args):
        if calls.get(names[id(module)], 0) == 0:
            events.extend(("in", names[id(module)], module, i, arg) for i, arg in enumerate(args))

    def post(module, args, output):
        name = names[id(module)]
        calls[name] = calls.get(name, 0) + 1
        keep.append(output)  # tensors stay alive, so their ids stay unique during the run
        out = {id(t) for t in _tensors(output)}
        produced.update(out)
        consumed.update(id(t) for t in _tensors(args) if id(t) not in out)
        if calls[name] == 1:
            events.append(("out", name, module, output))

    handles = [h for n, m in model.named_modules() if n
               for h in (m.register_forward_pre_hook(pre), m.register_forward_hook(post))]
    modes = [(m, m.training) for m in model.modules()]
    buffers = [(b, b.clone()) for b in model.buffers()]
    try:
        model.train(training)
        with torch.no_grad():
            model(images)
    finally:
        for handle in handles:
            handle.remove()
        for module, mode in modes:
            module.training = mode
        with torch.no_grad():
            for buffer, saved in buffers:  # a training-mode run updates BN statistics: put them back
                buffer.copy_(saved)
    return events, calls, produced, consumed


def describe_taps(model: nn.Module, input_size=(256, 320), training: bool = True, batch: int = 2) -> list[TapRow]:
    """Rows for every module output (per element) and every module input built inside a forward, marked."""
    device = next(model.parameters(), torch.empty(0)).device
    image = torch.zeros(batch, 3, *input_size, device=device)
    events, calls, produced, consumed = _dry_run(model, image, training)
    convs = {id(t) for e in events if e[0] == "out" and isinstance(e[2], nn.Conv2d) for t in _tensors(e[3])}
    inputs = {}
    for event in events:
        if event[0] == "in":
            inputs.setdefault(event[1], []).extend(_tensors(event[4]))
    rows, seen_inputs = [], set()
    for order, event in enumerate(events):
        if event[0] == "in":
            _, name, module, i, arg = event
            for path, value in _elements(arg):
                if isinstance(value, torch.Tensor) and id(value) not in produced and id(value) not in seen_inputs:
                    seen_inputs.add(id(value))  # built inside a forward: reachable only as this module's input
                    spec = TapSpec(name, path, input=i)
                    rows.append(_row(_config_text(spec), name, module, value, order, input_size, consumed))
            continue
        _, name, module, output = event
        if not isinstance(output, torch.Tensor):
            rows.append(TapRow(name, name, type(module).__name__, describe_value(output, depth=0), order,
                               calls=calls[name]))
        for path, value in _elements(output):
            if path or isinstance(value, torch.Tensor):
                tap = TapSpec(name, path).to_config()
                rows.append(_row(tap, name, module, value, order, input_size, consumed, calls[name]))
    _mark(rows, convs, inputs)
    return rows


def _config_text(spec: TapSpec) -> str:
    cfg = spec.to_config()
    return cfg if isinstance(cfg, str) else "{" + ", ".join(f"{k}: {v}" for k, v in cfg.items()) + "}"


def _row(tap, name, module, value, order, input_size, consumed, calls: int = 1) -> TapRow:
    if not isinstance(value, torch.Tensor):
        return TapRow(tap, name, type(module).__name__, describe_value(value, depth=0), order, calls=calls)
    row = TapRow(tap, name, type(module).__name__, describe_value(value), order, value, calls=calls,
                 final=id(value) not in consumed)
    if value.dim() in (4, 5):
        row.stride = grid_stride(input_size, value.shape[2:4])
        if row.stride is None and value.dim() == 4:
            row.stride = grid_stride(input_size, value.shape[1:3])
            row.channels_last = row.stride is not None
    return row


def _mark(rows: list[TapRow], convs: set[int], inputs: dict[str, list[torch.Tensor]]) -> None:
    """Mark likely taps. A tensor several modules return is marked once: on the outermost of the modules that
    produced it (a container and its last child), not on a later module passing it through (a head returning
    its input features). Heads: model-output tensors of a bare convolution (or 5-D); neck: the features those
    head modules take in, else the last fed-forward feature per stride; embedding: see the module docstring."""
    producers: dict[int, list[TapRow]] = {}
    for row in rows:
        if row.tensor is not None and row.stride is not None:
            first = producers.setdefault(id(row.tensor), [row])[0]
            if row is not first and first.module.startswith(row.module + "."):
                producers[id(row.tensor)].append(row)
    outermost = sorted((chain[-1] for chain in producers.values()), key=lambda r: r.order)
    heads = [r for r in outermost if r.final and (r.tensor.dim() == 5 or (
        id(r.tensor) in convs and not r.channels_last and r.channels <= HEAD_MAX_CHANNELS))]
    for row in heads:
        row.marks.append("head")
    by_id = {id(r.tensor): r for r in outermost}
    fed = {id(t): by_id[id(t)] for h in heads for t in inputs.get(h.module, []) if id(t) in by_id}
    necks = [r for r in fed.values() if r not in heads and r.tensor.dim() == 4 and not r.channels_last
             and r.channels >= NECK_MIN_CHANNELS]
    for stride in NECK_STRIDES if not necks else sorted({r.stride for r in necks}):
        neck = necks or [r for r in outermost if r.tensor.dim() == 4 and not r.channels_last and not r.final
                         and r.channels >= NECK_MIN_CHANNELS]
        neck = [r for r in neck if r.stride == stride]
        if neck:
            neck[-1].marks.append("neck")
    emb = [r for r in outermost if r.tensor.dim() == 4 and r.stride in EMBEDDING_STRIDES
           and EMBEDDING_CHANNELS[0] <= r.channels <= EMBEDDING_CHANNELS[1]]
    emb = [r for r in emb if r.final] or emb  # a model output is the likelier embedding
    for stride in EMBEDDING_STRIDES:
        last = [r for r in emb if r.stride == stride][-1:]
        for row in last:
            row.marks.append("embedding (layout: BHWC)" if row.channels_last else "embedding")


def format_taps(rows: list[TapRow], input_size, training: bool, model: nn.Module) -> str:
    """The finder's table: one line per row, then the modules the forward never ran."""
    h, w = input_size
    lines = [f"taps of {type(model).__name__} on a {h}x{w} input ({'training' if training else 'eval'} mode), "
             "execution order; stride relative to the input; candidate = likely tap of that KD group"]
    table = [("tap", "module", "output", "stride", "candidate")]
    for r in rows:
        stride = "" if r.stride is None else f"{r.stride}" + (" (BHWC)" if r.channels_last else "")
        notes = list(r.marks) + ([f"runs {r.calls}x per forward: add call: 0..{r.calls - 1}"] if r.calls > 1 else [])
        table.append((r.tap, r.module_type, r.value, stride, ", ".join(notes)))
    widths = [min(60, max(len(row[i]) for row in table)) for i in range(4)]
    lines += ["  ".join(c.ljust(wd) for c, wd in zip(row[:4], widths)) + "  " + row[4] for row in table]
    ran = {r.module for r in rows}
    idle = [n for n, m in model.named_modules()
            if n and n not in ran and not isinstance(m, (nn.ModuleList, nn.ModuleDict))]  # containers never run
    if idle:
        lines.append(f"not run in this forward: {', '.join(idle[:20])}" + (f" ... ({len(idle) - 20} more)"
                                                                            if len(idle) > 20 else ""))
    return "\n".join(line.rstrip() for line in lines)


def closest_names(wanted: str, available: list[str], limit: int = 12) -> str:
    """Comma-separated module names, closest matches to ``wanted`` first (for error messages)."""
    close = difflib.get_close_matches(wanted, available, n=limit, cutoff=0.3)
    rest = [n for n in available if n not in close]
    shown = close + rest[: max(0, limit - len(close))]
    more = len(available) - len(shown)
    return ", ".join(shown) + (f", ... ({more} more)" if more > 0 else "")


def _candidate_text(rows: list[TapRow], mark: str) -> str:
    found = [r for r in rows if any(m.startswith(mark) for m in r.marks)]
    return ", ".join(f"{r.tap} {r.value} s{r.stride}" + (" (BHWC)" if r.channels_last else "") for r in found)


def missing_taps_message(missing: list[tuple[str, str, TapSpec]], models: dict[str, nn.Module],
                         input_size: tuple[int, int] | None) -> str:
    """One line naming every missing tap, with candidates by output shape from a dry run of the model that lacks
    it (by spelling when no input size is known or the dry run fails)."""
    names = {role: [n for n, _ in model.named_modules() if n] for role, model in models.items()}
    text = "taps not found: " + ", ".join(f"{role} {group} tap '{s.label}'{did_you_mean(s.module, names[role], None)}"
                                          for role, group, s in missing)
    hints = []
    for role in dict.fromkeys(role for role, _, _ in missing):
        rows = None
        if input_size is not None:
            try:
                rows = describe_taps(models[role], input_size, training=False, batch=1)
            except Exception:  # noqa: BLE001 - a model that cannot run here still gets name suggestions
                rows = None
        for group in dict.fromkeys(g for r, g, _ in missing if r == role):
            mark = GROUP_MARKS.get(group, "head")
            candidates = _candidate_text(rows, mark) if rows else ""
            if candidates:
                hints.append(f"{role} {group} candidates by output on a {input_size[0]}x{input_size[1]} input: "
                             f"{candidates}")
            else:
                hints += [f"{role} '{s.module}' closest names: {closest_names(s.module, names[role], 6)}"
                          for r, g, s in missing if r == role and g == group]
    return "; ".join([text] + hints) + "; every module's output: python -m mot_kd.kd.taps --factory module:function"


def _one_line(exc: Exception) -> str:
    return f"{type(exc).__name__}: {(str(exc).strip().splitlines() or [''])[0]}"


def _load_factory(text: str) -> nn.Module:
    module_name, sep, attr = text.partition(":")
    if not sep or not module_name or not attr:
        raise InputError(f"--factory {text!r}: expected module:function, e.g. mot_kd.models:build_model")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except ImportError as exc:
        raise InputError(f"--factory {text!r}: cannot import {module_name} ({exc})") from None
    except AttributeError:
        raise InputError(f"--factory {text!r}: {module_name} has no attribute {attr!r}") from None
    if not callable(factory):
        raise InputError(f"--factory {text!r}: {attr} is not callable")
    try:
        model = factory()
    except Exception as exc:  # noqa: BLE001 - any failure of user code is a one-line input error here
        raise InputError(f"--factory {text!r}: calling {attr}() failed ({_one_line(exc)})") from None
    if not isinstance(model, nn.Module):
        raise InputError(f"--factory {text!r}: {attr}() returned {type(model).__name__}, not a torch.nn.Module")
    return model


@cli_entry
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mot_kd.kd.taps", description=__doc__.split("\n")[0])
    parser.add_argument("--factory", required=True, help="module:function returning the model (called with no args)")
    parser.add_argument("--input", nargs=2, type=int, default=[256, 320], metavar=("H", "W"),
                        help="sample input height and width (default 256 320)")
    parser.add_argument("--eval", action="store_true", help="run in eval mode (KD records the teacher in eval mode)")
    args = parser.parse_args(argv)
    if min(args.input) <= 0:
        raise InputError(f"--input {args.input[0]} {args.input[1]}: expected positive H W")
    model = _load_factory(args.factory)
    size = tuple(args.input)
    try:
        rows = describe_taps(model, size, training=not args.eval)
    except InputError:
        raise
    except Exception as exc:  # noqa: BLE001
        raise InputError(f"--factory {args.factory}: the model's forward on a (2, 3, {size[0]}, {size[1]}) input "
                         f"failed ({_one_line(exc)}); try another --input or --eval") from None
    print(format_taps(rows, size, not args.eval, model))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
