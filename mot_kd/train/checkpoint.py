"""Training-state checkpoints (``last.pt``): written atomically, loaded with ``weights_only=True``.

``last.pt`` holds everything needed to continue exactly (student, criterion incl. the ID classifier,
KD adapters, optimizer, AMP scaler, EMA, RNG, epoch/step counters, results so far, the job description);
a several-student run keeps one per student under ``students`` in the run's one ``last.pt``.
The deployable student (``best.pt``/``last_student.pt``) is a portable model checkpoint from
``mot_kd.models`` and never contains the teacher.
"""
from __future__ import annotations

from pathlib import Path

import torch

from mot_kd.errors import InputError
from mot_kd.models.checkpoint import load_plain
from mot_kd.utils.io import atomic_path

EXPECTED = "the training state mot_kd.train writes after every epoch (runs/NAME/weights/last.pt)"


def save_training_state(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_training_state(run_dir: Path) -> dict:
    path = Path(run_dir) / "weights" / "last.pt"
    if not path.is_file():
        raise InputError(f"--resume {run_dir}: no checkpoint at {path} (nothing to resume)")
    state = load_plain(path, EXPECTED)
    if not isinstance(state, dict) or "job" not in state or not ("student" in state or "students" in state):
        raise InputError(f"{path}: not a mot-kd training state (no job/student entries); expected {EXPECTED}")
    return state
