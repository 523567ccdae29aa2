"""What every launcher shares: the task description and the one way a failed task stops the whole launch."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Protocol

from mot_kd.errors import InputError


@dataclass(frozen=True)
class Task:
    """One independent run: ``fn(*args)`` in a worker, with ``cpus`` cores and ``gpus`` GPUs (Ray's request)."""

    name: str
    fn: Callable
    args: tuple
    log: Path  # where the worker writes its output (named in failures)
    cpus: int = 1
    gpus: float = 0.0


class Launcher(Protocol):
    def run(self, tasks: list[Task], on_done: Callable[[Task, object], None]) -> None:
        """Run ``tasks``; ``on_done(task, result)`` as each finishes; the first failure stops the launch."""


def failure(task: Task, error: BaseException) -> Exception:
    """The exception to raise for a failed task: an InputError keeps its one line, naming the run and its log."""
    if isinstance(error, InputError):
        return InputError(f"{task.name}: {error} (log: {task.log})")
    return RuntimeError(f"run {task.name} failed ({type(error).__name__}: {error}); see {task.log}")
