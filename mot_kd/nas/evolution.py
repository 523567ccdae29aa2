"""Evolutionary search over candidates under a GFLOPs (and optional CPU-latency) budget.

Why evolution (as SPOS and LightTrack search their supernets): scoring a candidate is cheap with inherited
weights but not free, and the space is discrete and mixed (block types, widths, depths), which mutation and
crossover handle without any gradient through architecture choices. Generation 0 is uniform random samples
under the budget, so the JSONL also holds the random baseline the searched candidates are compared with.
"""
from __future__ import annotations

import copy
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from tqdm import tqdm

from mot_kd.errors import InputError
from mot_kd.nas.cost import candidate_cost, check_budget
from mot_kd.nas.space import BLOCKS, SearchSpace


@dataclass(frozen=True)
class EvolutionSettings:
    population: int = 16
    generations: int = 10
    parents: int = 4
    mutation_prob: float = 0.2
    crossover_share: float = 0.5
    seed: int = 0
    max_tries: int = 2000


def mutate(space: SearchSpace, candidate: dict, prob: float, rng: random.Random) -> dict:
    """Each choice re-drawn with probability ``prob`` (a kernel the new block does not allow drops to 3)."""
    child, fresh = copy.deepcopy(candidate), space.sample(rng)
    for stage, new in zip(child["stages"], fresh["stages"]):
        for key in ("block", "width", "depth", "kernel"):
            if rng.random() < prob:
                stage[key] = new[key]
        if stage["kernel"] not in BLOCKS[stage["block"]]:
            stage["kernel"] = 3
    for key in ("neck_width", "neck_depth", "id_dim"):
        if rng.random() < prob:
            child[key] = fresh[key]
    return child


def crossover(a: dict, b: dict, rng: random.Random) -> dict:
    """Per stage and per neck/embedding choice, the value of one parent at random."""
    child = copy.deepcopy(a)
    child["stages"] = [copy.deepcopy(rng.choice(pair)) for pair in zip(a["stages"], b["stages"])]
    for key in ("neck_width", "neck_depth", "id_dim"):
        child[key] = rng.choice((a[key], b[key]))
    return child


def evolve(space: SearchSpace, score: Callable[[dict], dict], budget_gflops: float | None, settings: EvolutionSettings,
           jsonl: str | Path, latency: Callable[[dict], float] | None = None,
           budget_latency_ms: float | None = None, min_gflops: float | None = None) -> list[dict]:
    """Run the search; every evaluated candidate is appended to ``jsonl`` as it is scored. Returns the records.

    ``min_gflops`` (optional) makes the budget a band, e.g. a reference's GFLOPs +-5%: a comparison "at equal
    FLOPs" then never pits the reference against a much cheaper candidate.

    A record: ``{"generation", "origin" (random|mutation|crossover), "candidate", "params", "gflops", "IDF1",
    "MOTA"[, "latency_ms"]}``; parents are the best by IDF1, then MOTA.
    """
    if settings.parents < 1 or settings.population < settings.parents:
        raise InputError(f"population {settings.population} / parents {settings.parents}: need 1 <= parents <= "
                         "population")
    check_budget(space, budget_gflops)
    if min_gflops is not None and budget_gflops is not None and min_gflops > budget_gflops:
        raise InputError(f"search.min_gflops: {min_gflops:g} is above budget_gflops {budget_gflops:g}")
    if budget_latency_ms is not None and latency is None:
        raise InputError("--budget-latency-ms needs a latency measure")
    rng, seen, records = random.Random(settings.seed), set(), []
    jsonl = Path(jsonl)
    jsonl.parent.mkdir(parents=True, exist_ok=True)
    jsonl.write_text("")

    def admit(cand: dict) -> dict | None:
        sig = json.dumps(cand, sort_keys=True)
        if sig in seen:
            return None
        seen.add(sig)
        cost = candidate_cost(cand, space.imgsz)
        if budget_gflops is not None and cost["gflops"] > budget_gflops:
            return None
        if min_gflops is not None and cost["gflops"] < min_gflops:
            return None
        if latency is not None:
            cost["latency_ms"] = latency(cand)
            if budget_latency_ms is not None and cost["latency_ms"] > budget_latency_ms:
                return None
        return cost

    bar = tqdm(total=settings.population * settings.generations, desc="search", dynamic_ncols=True)
    for generation in range(settings.generations):
        parents = sorted(records, key=lambda r: (r["IDF1"], r["MOTA"]), reverse=True)[:settings.parents]
        born, tries = 0, 0
        while born < settings.population:
            tries += 1
            if tries > settings.max_tries:
                where = "in the band [min_gflops, budget]" if min_gflops is not None else "under the budget"
                remedy = "widen the band" if min_gflops is not None else "raise the budget"
                raise InputError(f"search: only {born} new candidates {where} in {settings.max_tries} "
                                 f"tries (generation {generation}); {remedy} or widen the space")
            if not parents:
                origin, cand = "random", space.sample(rng)
            elif rng.random() < settings.crossover_share and len(parents) > 1:
                origin, cand = "crossover", crossover(*rng.sample([p["candidate"] for p in parents], 2), rng)
            else:
                origin, cand = "mutation", mutate(space, rng.choice(parents)["candidate"], settings.mutation_prob, rng)
            cost = admit(cand)
            if cost is None:
                continue
            record = {"generation": generation, "origin": origin, "candidate": cand, **cost, **score(cand)}
            records.append(record)
            with jsonl.open("a") as f:
                f.write(json.dumps(record) + "\n")
            born += 1
            bar.update(1)
            bar.set_postfix(best_idf1=f"{max(r['IDF1'] for r in records):.1f}")
    bar.close()
    return records
