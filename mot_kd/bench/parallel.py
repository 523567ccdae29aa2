"""Run independent bench runs side by side in worker processes (``--jobs N``).

Why processes and one torch thread each: the bench's runs are small (320x192, batch 8), where torch's
intra-op threading scales poorly; N single-threaded runs on N cores finish ~N times sooner than one run
using all of them. Each worker writes its trainer's log and progress bars to ``<run>/bench.log`` so the
console shows one line per finished run instead of N interleaved bars.
"""
from __future__ import annotations

import ctypes
import multiprocessing
import signal
import sys
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path
from typing import Callable

from loguru import logger

from mot_kd.bench.presets import Preset
from mot_kd.errors import InputError


def threads_per_job(jobs: int, cores: int) -> int:
    """Torch threads for each of ``jobs`` workers sharing ``cores`` (at least one)."""
    return max(1, cores // jobs)


def _die_with_parent() -> None:
    """Worker initializer: on Linux, get SIGTERM when the bench process dies (kill, crash), so no orphaned
    worker keeps training into a run folder that a restarted bench would also write."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass  # not Linux: Ctrl-C still reaches the workers through the process group


def _run_in_worker(preset: Preset, out: Path, device: str | None, spec, threads: int) -> dict:
    """Worker entry point: one run, its output to ``<run>/bench.log``."""
    import torch

    from mot_kd.bench.runner import Runner

    torch.set_num_threads(threads)
    spec.folder.mkdir(parents=True, exist_ok=True)
    log = open(spec.folder / "bench.log", "a", buffering=1)  # noqa: SIM115 (lives as long as the worker's run)
    sys.stdout = sys.stderr = log
    logger.remove()
    logger.add(log, level="INFO")
    try:
        return Runner(preset, out, device).run_one(spec)
    finally:
        logger.remove()
        log.close()
        sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def run_parallel(preset: Preset, out: Path, device: str | None, specs: list, jobs: int, threads: int,
                 on_done: Callable[[object, dict], None]) -> None:
    """Run ``specs`` in ``jobs`` spawned workers; ``on_done(spec, record)`` as each finishes.

    The first failure stops the bench: runs not yet started are cancelled, the running ones finish (their
    folders stay resumable) and the failure is raised here, an InputError keeping its one-line message.
    """
    context = multiprocessing.get_context("spawn")  # no forked torch/OpenMP state in the workers
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context, initializer=_die_with_parent) as pool:
        futures = {pool.submit(_run_in_worker, preset, out, device, spec, threads): spec for spec in specs}
        pending = set(futures)
        while pending:
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in done:
                spec, error = futures[future], future.exception()
                if error is not None:
                    for other in pending:
                        other.cancel()
                    if isinstance(error, InputError):
                        raise InputError(f"{spec.name}: {error} (log: {spec.folder / 'bench.log'})") from None
                    raise RuntimeError(f"bench run {spec.name} failed; see {spec.folder / 'bench.log'}") from error
                on_done(spec, future.result())
