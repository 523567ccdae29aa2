"""Per-layer channel counts of a structurally pruned model (``arch["widths"]``), so its checkpoint rebuilds.

Why: channel pruning (``mot_kd.prune``) narrows convolutions and batch norms inside the YAML's modules, so the
model YAML alone would rebuild the unpruned widths. A pruned model's ``arch`` therefore also lists every
convolution's ``[in, out, groups]`` and every batch norm's ``[features]`` by module name;
:func:`apply_widths` re-creates those tensors in a freshly built model before its weights are loaded.
"""
from __future__ import annotations

from torch import nn

from mot_kd.errors import InputError


def layer_widths(model: nn.Module) -> dict[str, list[int]]:
    """``{module name: [in, out, groups]}`` for each Conv2d and ``[features]`` for each BatchNorm2d."""
    widths = {}
    for name, m in model.named_modules():
        if isinstance(m, nn.Conv2d):
            widths[name] = [m.in_channels, m.out_channels, m.groups]
        elif isinstance(m, nn.BatchNorm2d):
            widths[name] = [m.num_features]
    return widths


def apply_widths(model: nn.Module, widths: dict) -> None:
    """Resize the named layers of a freshly built ``model`` in place (weights uninitialised: load them next)."""
    if not isinstance(widths, dict):
        raise InputError(f"model arch: widths must map module names to channel counts, got {type(widths).__name__}")
    modules = dict(model.named_modules())
    for name, counts in widths.items():
        m = modules.get(name)
        if not isinstance(m, (nn.Conv2d, nn.BatchNorm2d)):
            what = "no such module" if m is None else f"a {type(m).__name__}, not a Conv2d or BatchNorm2d"
            raise InputError(f"model arch: widths[{name!r}]: {what}")
        size = 3 if isinstance(m, nn.Conv2d) else 1
        if (not isinstance(counts, (list, tuple)) or len(counts) != size
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 1 for c in counts)):
            raise InputError(f"model arch: widths[{name!r}]: expected {size} positive integers, got {counts!r}")
        if isinstance(m, nn.Conv2d):
            _resize_conv(m, name, *counts)
        else:
            _resize_batchnorm(m, counts[0])


def _resize_conv(m: nn.Conv2d, name: str, c_in: int, c_out: int, groups: int) -> None:
    if c_in % groups or c_out % groups:
        raise InputError(f"model arch: widths[{name!r}]: {c_in} in / {c_out} out channels do not split into "
                         f"{groups} groups")
    m.in_channels, m.out_channels, m.groups = c_in, c_out, groups
    m.weight = nn.Parameter(m.weight.new_empty(c_out, c_in // groups, *m.kernel_size))
    if m.bias is not None:
        m.bias = nn.Parameter(m.bias.new_empty(c_out))


def _resize_batchnorm(m: nn.BatchNorm2d, features: int) -> None:
    m.num_features = features
    if m.affine:
        m.weight = nn.Parameter(m.weight.new_empty(features))
        m.bias = nn.Parameter(m.bias.new_empty(features))
    if m.track_running_stats:
        m.running_mean = m.running_mean.new_zeros(features)
        m.running_var = m.running_var.new_ones(features)
