"""The tracker limits BLAS to one thread during ``update`` by itself and restores the caller's setting."""
from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info, threadpool_limits

import trackers.jde_tracker as jde_tracker
from mot_kd.errors import InputError
from trackers import JDETracker
from trackers.bench_speed import crowd


def blas_threads_now() -> list[int]:
    counts = [info["num_threads"] for info in threadpool_info() if info["user_api"] == "blas"]
    assert counts, "numpy should have loaded a BLAS library"
    return counts


def spy_on_association(monkeypatch) -> list[list[int]]:
    """Record the BLAS thread counts seen inside the appearance product and every assignment."""
    seen = []
    for name in ("embedding_distance", "linear_assignment"):
        real = getattr(jde_tracker, name)

        def spy(*args, _real=real):
            seen.append(blas_threads_now())
            return _real(*args)

        monkeypatch.setattr(jde_tracker, name, spy)
    return seen


@pytest.mark.parametrize("limit, inside", [(1, 1), (None, 2)], ids=["shipped", "process_setting"])
def test_update_runs_with_the_blas_limit_and_restores_it(monkeypatch, limit, inside):
    seen = spy_on_association(monkeypatch)
    with threadpool_limits(2, user_api="blas"):  # the caller's setting, as numpy's default on a 2+ core machine
        tracker = JDETracker(blas_threads=limit)
        for boxes, scores, emb in crowd(frames=5, targets=12, detections=10, dim=8):
            tracker.update(boxes, scores, emb)
            assert blas_threads_now() == [2] * len(blas_threads_now())  # restored after every frame
    assert len(seen) >= 5 * 3  # stage 1 (embeddings + assignment), stage 2, stage 3 ... per frame
    assert all(counts == [inside] * len(counts) for counts in seen)


def test_limit_is_restored_when_update_raises():
    with threadpool_limits(2, user_api="blas"):
        with pytest.raises(InputError, match="boxes: NaN"):
            JDETracker().update(np.array([[0, 0, np.nan, 10]]), np.array([0.9]))
        assert set(blas_threads_now()) == {2}


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "1"])
def test_bad_blas_threads_is_an_input_error(bad):
    with pytest.raises(InputError, match="blas_threads: must be a positive integer or None"):
        JDETracker(blas_threads=bad)
