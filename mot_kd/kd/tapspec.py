"""Tap specs: which tensor of a module's forward a KD tap records, parsed from config and applied to values.

Why more than a module name: the tensors worth distilling in foreign codebases sit in list/tuple/dict outputs
(YOLO ``Detect`` returns a list of levels), are built inside another module's ``forward`` (CSTrack's CCN outputs
exist only as the inputs of the ``Detect`` convolutions), are channels-last (CSTrack's SAAN embedding) or come
from a module that runs several times per forward (HRNet). A spec names all of that in config:

* ``"module.name"``: the module's output; ``"module.name[0]"``, ``"module.name['hm']"``, ``"m[0][1]"``: an element
  of a list/tuple/dict output (chainable);
* ``{module: NAME, index: 0 | 'key' | [..], input: i, layout: BCHW | BHWC, call: k}``: ``input`` records the
  module's positional input ``i`` instead of its output (``index`` then applies to that input), ``layout: BHWC``
  permutes a (B, H, W, C) tensor to (B, C, H, W), ``call`` (0-based) picks one call of a module that runs
  several times per forward.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

import torch

from mot_kd.errors import InputError

LAYOUTS = ("BCHW", "BHWC")
SPEC_KEYS = ("module", "index", "input", "layout", "call")
_STRING_TAP = re.compile(r"([^\[\]\s]+)((?:\[[^\[\]]*\])*)")
_BRACKET = re.compile(r"\[([^\[\]]*)\]")


@dataclass(frozen=True)
class TapSpec:
    """One tap; ``layout`` None = not declared (BCHW assumed, a channels-last tensor is detected where possible)."""

    module: str
    index: tuple[int | str, ...] = ()
    input: int | None = None
    layout: str | None = None
    call: int | None = None

    @property
    def label(self) -> str:
        """Unique readable name used for records, messages and adapter keys; a plain module name stays itself."""
        text = self.module + (f"@input{self.input}" if self.input is not None else "")
        text += "".join(f"[{i!r}]" for i in self.index)
        text += f"@call{self.call}" if self.call is not None else ""
        return text + ("@BHWC" if self.layout == "BHWC" else "")

    def __str__(self) -> str:
        return self.label

    def to_config(self) -> str | dict:
        """Plain config form that parses back to this spec: a string where one suffices, else a mapping."""
        if self.input is None and self.layout is None and self.call is None:
            return self.module + "".join(f"[{i!r}]" for i in self.index)
        out: dict = {"module": self.module}
        if self.index:
            out["index"] = list(self.index)
        out.update({k: getattr(self, k) for k in ("input", "layout", "call") if getattr(self, k) is not None})
        return out

    def select(self, value, role: str) -> torch.Tensor:
        """The tensor this spec names inside ``value`` (the module's output or chosen input); InputError if none."""
        where = f"{role} tap '{self.label}'"
        path = ""
        for key in self.index:
            if isinstance(value, dict):
                if key not in value:
                    raise InputError(f"{where}: {self._what()}{path} is a dict without key {key!r}; keys: "
                                     f"{', '.join(repr(k) for k in value)}")
            elif isinstance(value, (list, tuple)):
                if not isinstance(key, int) or not -len(value) <= key < len(value):
                    raise InputError(f"{where}: {self._what()}{path} is a {type(value).__name__} of "
                                     f"{len(value)}; index {key!r} is out of range")
            else:
                raise InputError(f"{where}: {self._what()}{path} is {describe_value(value)}; an index applies "
                                 "only to a list/tuple/dict")
            value, path = value[key], f"{path}[{key!r}]"
        if isinstance(value, torch.Tensor):
            if self.layout == "BHWC" and value.dim() != 4:
                raise InputError(f"{where}: layout BHWC needs a 4-D (B, H, W, C) tensor, got {tuple(value.shape)}")
            return value
        raise InputError(f"{where}: {self._what()}{path} is {describe_value(value)}, not a tensor; "
                         f"{_index_hint(self, value)}")

    def _what(self) -> str:
        return "module output" if self.input is None else f"module input {self.input}"


def _index_hint(spec: TapSpec, value) -> str:
    if isinstance(value, dict) and value:
        key = next(iter(value))
        return f"select an element, e.g. {TapSpec(spec.module, spec.index + (key,), spec.input).label!r}"
    if isinstance(value, (list, tuple)) and value:
        return f"select an element, e.g. {TapSpec(spec.module, spec.index + (0,), spec.input).label!r}"
    return "tap a module whose output (or input: i) is a tensor"


def describe_value(value, depth: int = 2) -> str:
    """Short structural description of a module output: 'Tensor(1, 18, 8, 8)', "tuple[2]: [0] Tensor(..), [1] None"."""
    if isinstance(value, torch.Tensor):
        return f"Tensor{tuple(value.shape)}"
    if value is None:
        return "None"
    if isinstance(value, (list, tuple, dict)):
        items = list(value.items()) if isinstance(value, dict) else list(enumerate(value))
        head = f"{type(value).__name__}[{len(items)}]"
        if depth == 0 or not items:
            return head
        shown = ", ".join(f"[{k!r}] {describe_value(v, depth - 1)}" for k, v in items[:6])
        return f"{head}: {shown}" + (", ..." if len(items) > 6 else "")
    return type(value).__name__


def _index_item(value, where: str) -> int | str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise InputError(f"{where}: an index is an integer or a string key, got {value!r}")
    return value


def _parse_string(text: str, where: str) -> tuple[str, tuple[int | str, ...]]:
    match = _STRING_TAP.fullmatch(text.strip())
    if not match:
        raise InputError(f"{where}: cannot parse tap {text!r}; expected 'module.name', 'module.name[0]' or "
                         "\"module.name['key']\"")
    index = []
    for item in _BRACKET.findall(match.group(2)):
        item = item.strip()
        if re.fullmatch(r"-?\d+", item):
            index.append(int(item))
        elif len(item) >= 2 and item[0] == item[-1] and item[0] in "'\"":
            index.append(item[1:-1])
        else:
            raise InputError(f"{where}: tap {text!r}: index [{item}] must be an integer or a quoted key, "
                             f"e.g. ['{item}']")
    return match.group(1), tuple(index)


def _nonnegative(mapping: dict, key: str, where: str) -> int | None:
    value = mapping.get(key)
    if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 0):
        raise InputError(f"{where}.{key}: expected a non-negative integer (0-based), got {value!r}")
    return value


def parse_tap(value, where: str) -> TapSpec:
    """A :class:`TapSpec` from a config value (string or mapping, see the module docstring)."""
    if isinstance(value, TapSpec):
        return value
    if isinstance(value, str) and value.strip():
        return TapSpec(*_parse_string(value, where))
    if not isinstance(value, dict):
        raise InputError(f"{where}: expected a module name or a mapping {{module: NAME, index, input, layout, "
                         f"call}}, got {value!r}")
    unknown = [k for k in value if k not in SPEC_KEYS]
    if unknown:
        raise InputError(f"{where}: unknown tap key '{unknown[0]}'; valid keys: {', '.join(SPEC_KEYS)}")
    module = value.get("module")
    if not isinstance(module, str) or not module.strip() or "[" in module:
        raise InputError(f"{where}.module: expected a module name (put element selection in index:), got {module!r}")
    raw_index = value.get("index", [])
    raw_index = raw_index if isinstance(raw_index, list) else [raw_index]
    index = tuple(_index_item(i, f"{where}.index") for i in raw_index)
    layout = value.get("layout")
    if layout is not None and layout not in LAYOUTS:
        raise InputError(f"{where}.layout: expected one of {', '.join(LAYOUTS)}, got {layout!r}")
    return TapSpec(module.strip(), index, _nonnegative(value, "input", where), layout,
                   _nonnegative(value, "call", where))


def parse_taps(value, where: str) -> list[TapSpec]:
    """One tap or a non-empty list of taps."""
    items = value if isinstance(value, list) else [value]
    if not items:
        raise InputError(f"{where}: expected a tap or a non-empty list of taps, got []")
    return [parse_tap(item, f"{where}[{i}]" if isinstance(value, list) else where) for i, item in enumerate(items)]


def grid_stride(image_size, grid) -> int | None:
    """The stride s with ``grid == image_size / s`` (both dims, one integer stride), else None."""
    (h, w), (gh, gw) = (int(v) for v in image_size), (int(v) for v in grid)
    if gh <= 0 or gw <= 0 or h % gh or w % gw or h // gh != w // gw:
        return None
    return h // gh


def layout_error(role: str, spec: TapSpec, tensor: torch.Tensor, image_size) -> str | None:
    """Why a 4-D tap's layout contradicts its declaration on an input of ``image_size``, or None.

    Decided only where the shapes tell: the grid of the input shows in dims 1-2 but not in dims 2-3 (or the
    reverse for a declared BHWC); when both or neither fit, the declaration stands.
    """
    if tensor.dim() != 4:
        return None
    raw = tensor.shape if spec.layout != "BHWC" else tensor.permute(0, 2, 3, 1).shape
    first, last = grid_stride(image_size, raw[1:3]), grid_stride(image_size, raw[2:4])
    h, w = image_size
    if spec.layout != "BHWC" and last is None and first is not None:
        return (f"{role} tap '{spec.label}': output {tuple(raw)} on a {h}x{w} input looks channels-last (B, H, W, C): "
                f"a stride-{first} grid in dims 1-2 and {raw[3]} channels last; declare it with "
                f"{{module: {spec.module}, layout: BHWC}}")
    if spec.layout == "BHWC" and first is None and last is not None:
        return (f"{role} tap '{spec.label}': declared layout BHWC, but its output {tuple(raw)} on a {h}x{w} input "
                f"has a stride-{last} grid in dims 2-3 (B, C, H, W); drop layout: BHWC")
    return None
