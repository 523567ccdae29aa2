"""Task bodies for the launcher tests, in a module with light imports (spawned and Ray workers import it)."""
from __future__ import annotations

from pathlib import Path

from mot_kd.errors import InputError


def square(x: int, mark: str | None = None) -> int:
    """``x * x``; ``mark``: a file written to record that the task ran."""
    if mark:
        Path(mark).write_text(str(x))
    return x * x


def bad_input(where: str) -> None:
    raise InputError(f"{where}: no such file")


def crash() -> None:
    raise ZeroDivisionError("boom")


def die() -> None:
    """The worker process exits (as a crash or an OOM kill does): no Python exception reaches the launcher."""
    import os

    os._exit(3)
