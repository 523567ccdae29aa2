"""Run one function over jobs in a process pool, results in job order (deterministic output).

Sequences are independent, so the evaluator scores them in parallel when there are several, enough boxes for
the pool's start (forking workers; shipping in-memory arrays: ~0.04 s for 250k rows) to pay, and idle CPUs.
Workers are forked on Linux: they inherit the imported modules, where a spawned worker would import numpy
again. Results are the workers' return values unchanged (pickling keeps floats bit-exact), gathered by index.
"""
from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Callable, Sequence

from tqdm import tqdm

from mot_kd.errors import InputError

#: Below this many rows (gt + tracker) in all, the pool's start costs more than it saves (measured on the
#: MOT17-train-sized bench: ~250k rows take ~0.5 s serially).
POOL_MIN_ROWS = 20_000


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, which a container or taskset narrows)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def idle_cpus() -> int:
    """Available CPUs not busy with other work (1-minute load average): workers beyond these only queue."""
    busy = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(1, round(available_cpus() - busy))


def choose_workers(sizes: Sequence[int], requested: int | None = None) -> int:
    """``requested`` (capped at the number of jobs), or for None: a pool of min(jobs, idle CPUs) where it pays
    (measured on 2 CPUs with one busy elsewhere: a 2-worker pool was ~10% slower than in-process)."""
    if requested is not None:
        if requested < 1:
            raise InputError(f"workers={requested}: must be at least 1 (1 evaluates in this process)")
        return max(1, min(requested, len(sizes)))
    if len(sizes) < 2 or sum(sizes) < POOL_MIN_ROWS:
        return 1
    return min(len(sizes), idle_cpus())


def run_ordered(fn: Callable, jobs: Sequence[tuple], sizes: Sequence[int], workers: int | None = None,
                progress: bool = False, desc: str = "evaluate") -> list:
    """``[fn(*job) for job in jobs]``, in a pool of :func:`choose_workers` processes when that is more than 1.

    The biggest jobs start first (less idle time at the end); an exception is raised for the first failing
    job in job order, as the serial loop would.
    """
    workers = choose_workers(sizes, workers)
    if workers == 1:
        with _bar(len(jobs), desc, progress) as bar:
            return [_tick(bar, fn(*job)) for job in jobs]
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        order = sorted(range(len(jobs)), key=lambda i: -sizes[i])
        futures = {i: pool.submit(fn, *jobs[i]) for i in order}  # forks the workers before tqdm starts a thread
        with _bar(len(jobs), desc, progress) as bar:
            for _ in as_completed(futures.values()):
                bar.update()
    return [futures[i].result() for i in range(len(jobs))]


def _bar(total: int, desc: str, progress: bool) -> tqdm:
    """A context-managed bar: closed before an error propagates, so the error line is the terminal's last."""
    return tqdm(total=total, desc=desc, unit="seq", disable=not progress, leave=False)


def _tick(bar: tqdm, value):
    bar.update()
    return value
