"""scipy's exact Hungarian solver (the one TrackEval uses), loaded without importing ``scipy.optimize``.

``import scipy.optimize`` costs ~0.3 s of start-up (it pulls in scipy.linalg, sparse, linprog, ...) for one
C function: ``linear_sum_assignment`` is defined in the self-contained extension ``scipy/optimize/_lsap``,
which loads in under 1 ms (without even ``import scipy``). Same function, same optimum on ties, so counts stay
TrackEval's; ``lap`` is not an option (it breaks exact ties differently). If a scipy release moves the
extension, renames its function or fails to load it, the public import is used (setup.py pins scipy).
"""
from __future__ import annotations

import importlib.machinery
import importlib.util
from pathlib import Path
from typing import Callable

_SOLVER: list[Callable] = []  # filled on first use (and inherited by forked pool workers)


def linear_sum_assignment(cost, maximize: bool = False):
    """``scipy.optimize.linear_sum_assignment``, loaded on first use and without ``scipy.optimize``."""
    if not _SOLVER:
        _SOLVER.append(_load())
    return _SOLVER[0](cost, maximize=maximize)


def _load() -> Callable:
    """The private extension's function; the public import where a scipy release moved, renamed or changed it."""
    scipy = importlib.util.find_spec("scipy")  # locates the package without running its __init__
    folder = Path(scipy.submodule_search_locations[0]) / "optimize"
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        path = folder / f"_lsap{suffix}"
        if path.is_file():
            try:
                spec = importlib.util.spec_from_file_location("scipy.optimize._lsap", path)
                module = importlib.util.module_from_spec(spec)
                spec.loader.exec_module(module)
                return module.linear_sum_assignment
            except (ImportError, AttributeError):
                break
    from scipy.optimize import linear_sum_assignment as public

    return public
