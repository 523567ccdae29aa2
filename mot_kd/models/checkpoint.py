"""Portable model checkpoints: plain dicts of tensors and builtins, rebuilt from their own ``arch``.

Why: CSTrack/YOLOv5 checkpoints pickle the model object, so they break when code moves and can run code on
load. Ours hold ``{"format", "arch", "state_dict", "num_ids", "names", "meta"}``, load with
``torch.load(weights_only=True)`` and rebuild the network from ``arch`` alone. Only the given model is saved:
a distilled student's checkpoint never contains its teacher (nor the training-only identity classifier).
"""
from __future__ import annotations

import os
import pickle
import re
import warnings
from pathlib import Path

import torch

from mot_kd.errors import InputError
from mot_kd.models.jde_model import JDEModel
from mot_kd.utils.io import atomic_path

FORMAT = "mot-kd/jde-model/1"
EXPECTED = f"a model checkpoint written by mot-kd (format {FORMAT!r}, e.g. runs/NAME/weights/best.pt)"
_BUILTINS = (str, int, float, bool, type(None))


def save_checkpoint(model: JDEModel, path: str | os.PathLike, num_ids: int = 0, meta: dict | None = None) -> Path:
    """Write ``model`` atomically to ``path``; ``meta`` (builtins/tensors only) records training facts."""
    if not isinstance(model, JDEModel):
        raise InputError(f"{path}: save_checkpoint needs a JDEModel, got {type(model).__name__}")
    ckpt = {"format": FORMAT, "arch": model.arch, "num_ids": int(num_ids), "names": list(model.names),
            "meta": dict(meta or {}),
            "state_dict": {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}}
    _check_plain(ckpt, "checkpoint")
    path = Path(path)
    with atomic_path(path) as tmp:
        torch.save(ckpt, tmp)
    return path


def load_plain(path: Path, expected: str) -> object:
    """``torch.load(weights_only=True)`` of ``path``, with its failures in our words.

    Why: torch's message for a file that pickles Python objects advises re-running with ``weights_only=False``,
    which would run code from the file; a mot-kd checkpoint never needs it, so the user is told what the file is
    not and what was ``expected`` instead.
    """
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickles in words meant for its own users
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if found:
            raise InputError(f"{path}: not a mot-kd checkpoint: it pickles Python objects ({found[1]}), which "
                             "mot-kd never loads (a YOLOv5/CSTrack or other project's checkpoint?); expected "
                             f"{expected}") from None
        raise InputError(f"{path}: not a mot-kd checkpoint (not a torch file, or a damaged one); "
                         f"expected {expected}") from None
    except Exception:  # torch raises many types (KeyError, EOFError, RuntimeError) for text, empty or cut files
        raise InputError(f"{path}: not a mot-kd checkpoint (not a torch file, or a damaged one); "
                         f"expected {expected}") from None


def read_checkpoint(path: str | os.PathLike) -> dict:
    """The validated checkpoint dict (tensors on CPU)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such model checkpoint")
    ckpt = load_plain(path, EXPECTED)
    if isinstance(ckpt, dict) and "job" in ckpt and "student" in ckpt:
        raise InputError(f"{path}: a training state (last.pt), not a model checkpoint: use weights/best.pt or "
                         f"weights/last_student.pt of that run (or --resume RUN to continue training it)")
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        found = f"a dict with keys {_some_keys(ckpt)}" if isinstance(ckpt, dict) else f"a {type(ckpt).__name__}"
        raise InputError(f"{path}: not a mot-kd checkpoint (it holds {found}); expected {EXPECTED}")
    missing = {"arch", "state_dict", "num_ids", "names", "meta"} - set(ckpt)
    if missing:
        raise InputError(f"{path}: model checkpoint lacks {', '.join(sorted(missing))}")
    return ckpt


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> JDEModel:
    """Rebuild the model from ``arch`` and load its weights (eval mode); ``model.num_ids``/``model.meta`` are set."""
    ckpt = read_checkpoint(path)
    try:
        model = JDEModel(ckpt["arch"])
    except InputError as exc:
        raise InputError(f"{path}: {exc}") from None
    try:
        model.load_state_dict(ckpt["state_dict"])
    except RuntimeError as exc:  # missing/unexpected keys or shape mismatches, one per line
        detail = " ".join(line.strip() for line in str(exc).splitlines()[1:3])
        raise InputError(f"{path}: weights do not match the architecture ({detail[:300]})") from None
    model.num_ids, model.meta = ckpt["num_ids"], ckpt["meta"]
    return model.to(device).eval()


def _some_keys(mapping: dict) -> str:
    keys = [str(k) for k in list(mapping)[:5]]
    return (", ".join(keys) or "none") + (f", ... ({len(mapping)} in all)" if len(mapping) > 5 else "")


def _check_plain(obj, where: str) -> None:
    """Refuse anything ``weights_only`` loading would reject, naming where it sits."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, _BUILTINS):
                raise InputError(f"{where}: key {k!r} is a {type(k).__name__}, not a builtin")
            _check_plain(v, f"{where}.{k}")
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            _check_plain(v, f"{where}[{i}]")
    elif not isinstance(obj, (*_BUILTINS, torch.Tensor)):
        raise InputError(f"{where}: {type(obj).__name__} cannot go in a portable checkpoint (tensors and builtins "
                         "only)")
