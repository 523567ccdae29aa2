"""One BLAS thread for the tracker's small matrix products, set by the code instead of ``OPENBLAS_NUM_THREADS``.

A frame's products (tracks x D @ D x detections, batched 4x4 Kalman solves) take microseconds; OpenBLAS
waking its thread pool for them costs more than it saves, and on a loaded machine ~10x more (512-d
association 10.6 ms/frame vs 3.5 ms). Users run ``python -m trackers.track`` from their own shell, so the
tracker limits BLAS itself around each update and restores the previous setting afterwards (torch's own
threads are untouched: only ``user_api="blas"`` libraries are limited). threadpoolctl's plain
``threadpool_limits`` re-scans the loaded libraries on every call (~100 us); a controller made once costs
a few microseconds per enter/exit.
"""
from __future__ import annotations

import contextlib
from functools import lru_cache

from threadpoolctl import ThreadpoolController


@lru_cache(maxsize=1)
def _controller() -> ThreadpoolController:
    """The BLAS libraries loaded in this process (numpy's is loaded before any tracker exists)."""
    return ThreadpoolController()


def blas_threads(limit: int | None) -> contextlib.AbstractContextManager:
    """Context limiting BLAS to ``limit`` threads (restored on exit); ``None``: leave the process setting."""
    if limit is None:
        return contextlib.nullcontext()
    return _controller().limit(limits=limit, user_api="blas")
