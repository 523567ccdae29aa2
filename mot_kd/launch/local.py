"""Local launcher (``--jobs N``): tasks in N spawned worker processes on this machine.

Why spawn and a parent-death signal: no forked torch/OpenMP state in the workers, and no orphaned worker that
keeps writing into a run folder a restarted launch would also write.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable

from mot_kd.errors import InputError
from mot_kd.launch.base import Task, failure


def _die_with_parent() -> None:
    """Worker initializer: on Linux, get SIGTERM when the launching process dies (kill, crash)."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: Ctrl-C still reaches the workers through the process group


class LocalLauncher:
    """``jobs`` worker processes; a task's ``cpus``/``gpus`` are not enforced (the caller sizes threads)."""

    def __init__(self, jobs: int = 1):
        self.jobs = jobs

    def run(self, tasks: list[Task], on_done: Callable[[Task, object], None]) -> None:
        """The first failure cancels the tasks not yet started; running ones finish; the failure is raised."""
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=self.jobs, mp_context=context, initializer=_die_with_parent) as pool:
            futures = {pool.submit(task.fn, *task.args): task for task in tasks}
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    task, error = futures[future], future.exception()
                    if error is not None:
                        for other in pending:
                            other.cancel()
                        raised = failure(task, error)
                        raise raised from (None if isinstance(raised, InputError) else error)
                    on_done(task, future.result())
