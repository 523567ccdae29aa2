"""Evolutionary search: a 2-generation run on the smoke space, scored by the real tracker + evaluator on a tiny
synthetic tune set, stays under the budget, logs every candidate, and draws the Pareto plot."""
from __future__ import annotations

import json
import random

import pytest
import torch

from mot_kd.data.synthetic import generate_dataset
from mot_kd.errors import InputError
from mot_kd.nas import build_candidate, load_space
from mot_kd.nas.evolution import EvolutionSettings, crossover, evolve, mutate
from mot_kd.nas.report import pareto_front, pareto_plot
from mot_kd.nas.score import TrackingScorer, recalibrate_bn
from mot_kd.nas.supernet import Supernet


@pytest.fixture(scope="module")
def space():
    return load_space("smoke")


def test_mutation_and_crossover_stay_in_the_space(space):
    rng = random.Random(0)
    a, b = space.sample(rng), space.sample(rng)
    for _ in range(20):
        space.contains(mutate(space, a, 0.5, rng))
        child = crossover(a, b, rng)
        space.contains(child)
        assert all(s in (x, y) for s, x, y in zip(child["stages"], a["stages"], b["stages"]))
    assert mutate(space, a, 0.0, rng) == a


def test_bn_recalibration_estimates_the_batches_statistics(space):
    model = build_candidate(space.sample(random.Random(2)))
    batches = [torch.rand(2, 3, 64, 64) for _ in range(3)]
    recalibrate_bn(model, batches)
    bn = model.backbone.layers[0].bn
    stem = [model.backbone.layers[0].conv(x) for x in batches]
    expected = torch.stack([s.mean((0, 2, 3)) for s in stem]).mean(0)
    assert torch.allclose(bn.running_mean, expected, atol=1e-5) and not model.training


def test_two_generation_search_with_tracking_scores(space, tmp_path):
    generate_dataset(tmp_path / "tune", 1, 6, 128, 64, seed=3, progress=False)
    torch.manual_seed(0)
    net = Supernet(space)
    scorer = TrackingScorer(net, [torch.rand(2, 3, 64, 128)], tmp_path / "tune", split="full", imgsz=(128, 64))
    budget = 0.06
    settings = EvolutionSettings(population=3, generations=2, parents=2, mutation_prob=0.5, seed=1)
    records = evolve(space, scorer, budget, settings, tmp_path / "search.jsonl")
    lines = [json.loads(x) for x in (tmp_path / "search.jsonl").read_text().splitlines()]
    assert lines == records and len(records) == 6
    assert [r["generation"] for r in records] == [0, 0, 0, 1, 1, 1]
    assert {r["origin"] for r in records[:3]} == {"random"} and {r["origin"] for r in records[3:]} <= {"mutation",
                                                                                                       "crossover"}
    assert all(r["gflops"] <= budget and 0 <= r["IDF1"] <= 100 and r["MOTA"] <= 100 for r in records)
    assert len({json.dumps(r["candidate"], sort_keys=True) for r in records}) == 6
    png = pareto_plot(records, {"yolov5n": {"gflops": 0.05}, "yolov5s-ghost": {"gflops": 0.055, "IDF1": 1.0}},
                      tmp_path / "pareto.png", budget)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_pareto_front_and_budget_errors(space, tmp_path):
    recs = [{"gflops": 1, "IDF1": 5}, {"gflops": 2, "IDF1": 4}, {"gflops": 2, "IDF1": 7}, {"gflops": 3, "IDF1": 7}]
    assert pareto_front(recs) == [recs[0], recs[2]]
    with pytest.raises(InputError, match=r"--budget-gflops: 0.001 is below the smallest candidate of smoke"):
        evolve(space, lambda c: {}, 0.001, EvolutionSettings(), tmp_path / "x.jsonl")
    with pytest.raises(InputError, match="need 1 <= parents <= population"):
        evolve(space, lambda c: {}, None, EvolutionSettings(population=2, parents=3), tmp_path / "x.jsonl")


def test_latency_budget_filters_candidates(space, tmp_path):
    def latency(cand):
        return 10.0 * sum(s["depth"] for s in cand["stages"])

    records = evolve(space, lambda c: {"IDF1": float(c["id_dim"]), "MOTA": 0.0}, None,
                     EvolutionSettings(population=3, generations=2, parents=2, seed=0), tmp_path / "l.jsonl",
                     latency, budget_latency_ms=50.0)
    assert len(records) == 6 and all(r["latency_ms"] == latency(r["candidate"]) <= 50 for r in records)
    with pytest.raises(InputError, match="--budget-latency-ms needs a latency measure"):
        evolve(space, lambda c: {}, None, EvolutionSettings(), tmp_path / "x.jsonl", None, 5.0)
