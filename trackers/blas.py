"""One BLAS thread for the tracker's small matrix products, set by the code instead of ``OPENBLAS_NUM_THREADS``.

A frame's products (tracks x D @ D x detections, batched 4x4 Kalman solves) take microseconds; OpenBLAS
waking its thread pool for them costs more than it saves, and on a loaded machine ~10x more (512-d
association 10.6 ms/frame vs 3.5 ms). Users run ``python -m trackers.track`` from their own shell, so the
tracker limits BLAS itself around each update and restores the previous setting afterwards (torch's own
threads are untouched: only ``user_api="blas"`` libraries are limited). threadpoolctl's plain
``threadpool_limits`` re-scans the loaded libraries on every call (~100 us); a controller made once per
tracker costs a few microseconds per enter/exit.
"""
from __future__ import annotations

import contextlib

from threadpoolctl import ThreadpoolController


class BlasLimit:
    """The BLAS libraries loaded when this was made (made once per tracker: a library loaded later, e.g. by a
    model imported after the tracker was created, is not limited); ``limit`` caps them during a block."""

    def __init__(self, threads: int | None):
        self.threads = threads
        self._controller = ThreadpoolController() if threads is not None else None

    def limit(self) -> contextlib.AbstractContextManager:
        """Context limiting BLAS to ``threads`` (restored on exit); a no-op when ``threads`` is None."""
        if self._controller is None:
            return contextlib.nullcontext()
        return self._controller.limit(limits=self.threads, user_api="blas")
