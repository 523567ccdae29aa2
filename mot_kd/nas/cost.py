"""What a candidate costs (params, GFLOPs on the space's cost image) and the budget check against the space.

Why measured on the built model and not estimated: :func:`mot_kd.models.info.model_card` counts the real
network (thop, one forward), so a budget means the same number ``python -m mot_kd.models.info`` prints.
"""
from __future__ import annotations

import copy

from mot_kd.errors import InputError
from mot_kd.models.info import model_card
from mot_kd.nas.space import BLOCKS, SearchSpace, build_candidate


def candidate_cost(candidate: dict, imgsz: tuple[int, int]) -> dict:
    """``{"params", "gflops"}`` of the candidate's standalone model at ``imgsz`` = (W, H)."""
    return model_card(build_candidate(candidate), imgsz)


def smallest_candidate(space: SearchSpace) -> tuple[dict, dict]:
    """The candidate with the fewest GFLOPs, and its cost.

    Exact by additivity: at the narrowest widths, shallowest depths and smallest id_dim, a stage's block choice
    changes only that stage's layers, so the cheapest block is picked per stage independently.
    """
    c = space.choices
    stage = {"block": c["block"][0], "width": min(c["width"]), "depth": min(c["depth"]), "kernel": 3}
    best = space.candidate([dict(stage) for _ in space.stages], min(c["neck_width"]), min(c["neck_depth"]),
                           min(c["id_dim"]))
    best_cost = candidate_cost(best, space.imgsz)
    for i in range(len(space.stages)):
        for block in c["block"]:
            if block == best["stages"][i]["block"] or 3 not in BLOCKS[block]:
                continue
            trial = copy.deepcopy(best)
            trial["stages"][i]["block"] = block
            cost = candidate_cost(trial, space.imgsz)
            if cost["gflops"] < best_cost["gflops"]:
                best, best_cost = trial, cost
    return best, best_cost


def check_budget(space: SearchSpace, gflops: float | None, where: str = "--budget-gflops") -> dict:
    """InputError when no candidate fits under ``gflops``; returns the smallest candidate's cost."""
    _, cost = smallest_candidate(space)
    if gflops is not None and gflops < cost["gflops"]:
        w, h = space.imgsz
        raise InputError(f"{where}: {gflops:g} is below the smallest candidate of {space.where} "
                         f"({cost['gflops']:.3g} GFLOPs at {w}x{h})")
    return cost
