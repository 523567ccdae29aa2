"""Run independent bench runs side by side: ``--jobs N`` local workers or ``--launcher ray`` (mot_kd.launch).

Why one torch thread per run on a CPU: the bench's runs are small (320x192, batch 8), where torch's intra-op
threading scales poorly; N single-threaded runs on N cores finish ~N times sooner than one run using all of
them. Each worker writes its trainer's log and progress bars to ``<run>/bench.log`` so the console shows one
line per finished run instead of N interleaved bars.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable

from mot_kd.bench.presets import Preset
from mot_kd.launch import Launcher, Task
from mot_kd.launch.worker import run_logged


def threads_per_job(jobs: int, cores: int) -> int:
    """Torch threads for each of ``jobs`` workers sharing ``cores`` (at least one)."""
    return max(1, cores // jobs)


def _run_in_worker(preset: Preset, out: Path, device: str | None, spec, threads: int) -> dict:
    """Worker entry point: one run, its output to ``<run>/bench.log``."""
    from mot_kd.bench.runner import Runner

    return run_logged(spec.folder / "bench.log", threads, lambda: Runner(preset, out, device).run_one(spec))


def run_parallel(preset: Preset, out: Path, device: str | None, specs: list, launcher: Launcher, threads: int,
                 gpus: float, on_done: Callable[[object, dict], None]) -> None:
    """Run ``specs`` with ``launcher`` (``threads`` CPUs and ``gpus`` GPUs each); ``on_done(spec, record)`` as each
    finishes. The first failure stops the bench (runs not started are cancelled; folders stay resumable)."""
    tasks = [Task(spec.name, _run_in_worker, (preset, out, device, spec, threads), spec.folder / "bench.log",
                  cpus=threads, gpus=gpus) for spec in specs]
    by_name = {spec.name: spec for spec in specs}
    launcher.run(tasks, lambda task, record: on_done(by_name[task.name], record))
