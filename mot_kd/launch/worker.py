"""The worker side of a task: one run with a set number of torch threads, its output in the run's own log file.

Why: runs side by side on a few cores are fastest with one torch thread each (small convolutions scale poorly
with intra-op threads), and N interleaved progress bars are unreadable; each run writes its log, the launching
console shows one line per finished run.
"""
from __future__ import annotations

import sys
from pathlib import Path
from typing import Callable

from loguru import logger


def run_logged(log: Path, threads: int, fn: Callable, *args):
    """``fn(*args)`` with ``threads`` torch threads, its prints, progress bars and loguru lines appended to ``log``."""
    import torch

    torch.set_num_threads(threads)
    log.parent.mkdir(parents=True, exist_ok=True)
    stream = open(log, "a", buffering=1)  # noqa: SIM115 (lives as long as the worker's run)
    streams = sys.stdout, sys.stderr
    sys.stdout = sys.stderr = stream
    logger.remove()
    logger.add(stream, level="INFO")
    try:
        return fn(*args)
    finally:
        logger.remove()
        stream.close()
        sys.stdout, sys.stderr = streams
