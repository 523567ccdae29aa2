"""Converters from the target formats of CSTrack/SOTS, JDE and FairMOT training loops to KDHooks' targets.

Why: KDHooks takes one layout, (M, 7) rows ``[batch_idx, cls, identity, cx, cy, w, h]`` with boxes normalised
to the input (docs/ARCHITECTURE.md, identity -1 = none); a loop that already has its own batch converts it
with one call. Each converter checks the layout it expects and says so in a one-line error otherwise.
"""
from __future__ import annotations

import torch

from mot_kd.errors import InputError

CSTRACK = "(M, 6) [image, id, cx, cy, w, h], id 0 = none, boxes normalised"
JDE = "(B, N, 6) zero-padded [cls, id, cx, cy, w, h], id -1 = none, boxes normalised, plus lengths (B,) or (B, 1)"
FAIRMOT = ("FairMOT batch dict: hm (B, nc, H, W), ind (B, K), wh (B, K, 4 ltrb | 2), reg (B, K, 2), reg_mask (B, K), "
           "ids (B, K)")


def _rows(batch_idx, cls, identity, boxes) -> torch.Tensor:
    columns = [batch_idx, cls, identity]
    return torch.cat([torch.stack([c.float() for c in columns], 1), boxes.float()], 1)


def _normalised(boxes: torch.Tensor, layout: str, name: str) -> None:
    if len(boxes) and (not torch.isfinite(boxes).all() or boxes.min() < -0.5 or boxes.max() > 1.5
                       or (boxes[:, 2:] < 0).any()):
        raise InputError(f"{name}: boxes must be finite, normalised to [0, 1] with w, h >= 0 (got values in "
                         f"[{float(boxes.min()):.3g}, {float(boxes.max()):.3g}]); expected {layout}")


def _integers(x: torch.Tensor, name: str, what: str, layout: str, low: int) -> None:
    if len(x) and (not torch.equal(x, x.round()) or x.min() < low):
        raise InputError(f"{name}: {what} must be integers >= {low}; expected {layout}")


def from_cstrack(targets: torch.Tensor) -> torch.Tensor:
    """SOTS/CSTrack ``LoadImagesAndLabels.collate_fn`` targets -> (M, 7). Their id 0 means "no identity" (the
    loader maps -1 to 0 and the ID loss ignores 0), so identity = id - 1 and -1 for id 0; one class (0)."""
    if not isinstance(targets, torch.Tensor) or targets.dim() != 2 or targets.shape[1] != 6:
        raise InputError(f"from_cstrack: expected {CSTRACK}, got {_describe(targets)}")
    targets = targets.detach()
    _integers(targets[:, 0], "from_cstrack", "image indices (column 0)", CSTRACK, 0)
    _integers(targets[:, 1], "from_cstrack", "ids (column 1)", CSTRACK, 0)
    _normalised(targets[:, 2:6], CSTRACK, "from_cstrack")
    ids = targets[:, 1]
    return _rows(targets[:, 0], torch.zeros_like(ids), torch.where(ids > 0, ids - 1, -1), targets[:, 2:6])


def from_jde(targets: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """JDE ``collate_fn`` output (``targets, targets_len``): the first ``lengths[b]`` rows of image b."""
    if not isinstance(targets, torch.Tensor) or targets.dim() != 3 or targets.shape[2] != 6:
        raise InputError(f"from_jde: expected {JDE}, got targets {_describe(targets)}")
    if not isinstance(lengths, torch.Tensor) or lengths.numel() != targets.shape[0]:
        raise InputError(f"from_jde: expected {JDE}, got lengths {_describe(lengths)} for {targets.shape[0]} images")
    lengths = lengths.detach().reshape(-1)
    if not len(lengths):  # an empty batch has no objects (min/max of nothing would raise)
        return targets.new_zeros((0, 7), dtype=torch.float32)
    if not torch.equal(lengths, lengths.round()) or lengths.min() < 0 or lengths.max() > targets.shape[1]:
        raise InputError(f"from_jde: lengths must be integers in [0, {targets.shape[1]}]; expected {JDE}")
    keep = torch.arange(targets.shape[1], device=targets.device)[None] < lengths[:, None].to(targets.device)
    rows = targets.detach()[keep]
    batch_idx = torch.arange(targets.shape[0], device=targets.device)[:, None].expand_as(keep)[keep]
    _integers(rows[:, 0], "from_jde", "classes (column 0)", JDE, 0)
    _integers(rows[:, 1], "from_jde", "ids (column 1)", JDE, -1)
    _normalised(rows[:, 2:6], JDE, "from_jde")
    return _rows(batch_idx, rows[:, 0], rows[:, 1], rows[:, 2:6])


def from_fairmot(batch: dict) -> torch.Tensor:
    """FairMOT ``JointDataset`` batch -> (M, 7): objects where ``reg_mask`` is set, centre = cell of ``ind`` +
    ``reg``, box from ``wh`` (ltrb side distances or w, h, in heatmap cells), class = the heatmap channel that
    peaks (1) at the centre cell, identity = ``ids`` (-1 = none)."""
    keys = ("hm", "ind", "wh", "reg", "reg_mask", "ids")
    if not isinstance(batch, dict):
        raise InputError(f"from_fairmot: expected a {FAIRMOT}, got {_describe(batch)}")
    absent = [k for k in keys if not isinstance(batch.get(k), torch.Tensor)]
    if absent:
        raise InputError(f"from_fairmot: expected a {FAIRMOT}; missing or not tensors: {', '.join(absent)}")
    hm, ind, wh, reg, mask, ids = (batch[k].detach() for k in keys)
    b, k = ind.shape if ind.dim() == 2 else (None, None)
    if (hm.dim() != 4 or b is None or hm.shape[0] != b or wh.shape[:2] != (b, k) or wh.dim() != 3
            or wh.shape[2] not in (2, 4) or reg.shape != (b, k, 2) or mask.shape != (b, k) or ids.shape != (b, k)):
        shapes = ", ".join(f"{n} {tuple(batch[n].shape)}" for n in keys)
        raise InputError(f"from_fairmot: expected a {FAIRMOT}; got {shapes}")
    if ind.dtype.is_floating_point or ind.dtype.is_complex or ind.dtype == torch.bool:  # .long() would truncate
        raise InputError(f"from_fairmot: ind must be an integer tensor (y * W + x cell indices), got {ind.dtype}; "
                         f"expected {FAIRMOT}")
    height, width = hm.shape[2:]
    keep = mask > 0
    cell = ind[keep].long()
    if len(cell) and (cell.min() < 0 or cell.max() >= height * width):
        raise InputError(f"from_fairmot: ind must index the {height}x{width} heatmap (y * W + x); expected {FAIRMOT}")
    batch_idx = torch.arange(b, device=ind.device)[:, None].expand_as(keep)[keep]
    cx, cy = (cell % width).float() + reg[keep][:, 0], (cell // width).float() + reg[keep][:, 1]
    sizes = wh[keep].float()
    if wh.shape[2] == 4:  # ltrb from the (clipped) centre
        x1, y1, x2, y2 = cx - sizes[:, 0], cy - sizes[:, 1], cx + sizes[:, 2], cy + sizes[:, 3]
        boxes = torch.stack([(x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1], 1)
    else:
        boxes = torch.stack([cx, cy, sizes[:, 0], sizes[:, 1]], 1)
    boxes = boxes / torch.tensor([width, height, width, height], dtype=boxes.dtype, device=boxes.device)
    cls = hm.flatten(2)[batch_idx, :, cell].argmax(1) if len(cell) else cell
    return _rows(batch_idx, cls, ids[keep], boxes)


def _describe(x) -> str:
    return f"shape {tuple(x.shape)}" if isinstance(x, torch.Tensor) else type(x).__name__
