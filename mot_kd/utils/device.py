"""``--device`` strings (cpu, auto, 0, cuda:0, cuda) to a torch.device, with a one-line error."""
from __future__ import annotations

import torch

from mot_kd.errors import InputError


def parse_device(arg: str, local_rank: int | None = None) -> torch.device:
    """``local_rank`` (torchrun) overrides the CUDA index so each process gets its own GPU."""
    arg = str(arg).strip().lower()
    if arg == "auto":
        arg = "0" if torch.cuda.is_available() else "cpu"
    if arg == "cpu":
        return torch.device("cpu")
    index = arg.removeprefix("cuda").lstrip(":") or "0"
    if not index.isdigit():
        raise InputError(f"--device {arg}: expected cpu, auto, 0 or cuda:0")
    if not torch.cuda.is_available():
        raise InputError(f"--device {arg}: CUDA is not available on this machine (use --device cpu)")
    index = local_rank if local_rank is not None else int(index)
    if index >= torch.cuda.device_count():
        raise InputError(f"--device {arg}: only {torch.cuda.device_count()} CUDA device(s) here")
    return torch.device("cuda", index)
