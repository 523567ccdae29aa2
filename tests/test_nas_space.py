"""Search space: YAML validation, candidates build standalone with exact costs, checkpoints, budget errors."""
from __future__ import annotations

import random

import pytest
import torch

from mot_kd.config import load_yaml
from mot_kd.errors import InputError, cli_entry
from mot_kd.models import build_model, load_checkpoint, save_checkpoint
from mot_kd.models.info import model_card
from mot_kd.nas import build_candidate, candidate_cost, check_budget, load_space, smallest_candidate
from mot_kd.nas.cli import main

SMOKE = "smoke"


@pytest.fixture(scope="module")
def smoke():
    return load_space(SMOKE)


def test_every_sampled_candidate_builds_and_runs(smoke):
    rng, seen = random.Random(0), set()
    for _ in range(6):
        cand = smoke.sample(rng)
        seen |= {s["block"] for s in cand["stages"]}
        smoke.contains(cand)
        model = build_candidate(cand).eval()
        with torch.no_grad():
            out = model(torch.rand(1, 3, 64, 96))
        assert [f.shape[-2:] for f in out["feats"]] == [(8, 12), (4, 6), (2, 3)]
        assert out["embedding"].shape == (1, cand["id_dim"], 8, 12)
        assert model.arch["candidate"] == cand
    assert seen == {"C3", "C3Ghost", "InvertedResidualSE"}


def test_yolov5n_is_a_candidate_with_its_exact_cost():
    space = load_space("space")
    n = space.candidate([{"block": "C3", "width": 0.25, "depth": d, "kernel": 3} for d in (1, 2, 3, 1)], 0.25, 1, 128)
    space.contains(n)
    assert model_card(build_candidate(n), (64, 64)) == model_card(build_model("yolov5n", id_dim=128), (64, 64))


def test_kernel_and_block_change_the_built_layers(smoke):
    stage = {"block": "InvertedResidualSE", "width": 0.125, "depth": 1, "kernel": 5}
    cand = smoke.candidate([dict(stage) for _ in smoke.stages], 0.125, 1, 64)
    dw = build_candidate(cand).backbone.layers[2].m[0].dw
    assert dw.conv.kernel_size == (5, 5) and dw.conv.groups == dw.conv.in_channels
    cand["stages"][0].update(block="C3", kernel=5)
    assert type(build_candidate(cand).backbone.layers[2]).__name__ == "C3k"


def test_searched_checkpoint_loads_without_search_code(tmp_path, smoke):
    cand = smoke.sample(random.Random(3))
    model = build_candidate(cand).eval()
    path = save_checkpoint(model, tmp_path / "nas.pt")
    loaded = load_checkpoint(path)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(model(x)["embedding"], loaded(x)["embedding"])
    assert loaded.arch["candidate"] == cand


def test_smallest_candidate_is_below_every_sample(smoke):
    small, cost = smallest_candidate(smoke)
    smoke.contains(small)
    rng = random.Random(1)
    assert all(candidate_cost(smoke.sample(rng), smoke.imgsz)["gflops"] >= cost["gflops"] for _ in range(4))
    assert check_budget(smoke, cost["gflops"]) == cost


def _space(tmp_path, text: str) -> str:
    base = load_yaml(SMOKE, "nas")
    path = tmp_path / "space.yaml"
    path.write_text("\n".join(f"{k}: {v}" for k, v in base.items() if f"{k}:" not in text) + "\n" + text)
    return str(path)


@pytest.mark.parametrize("text, message", [
    ("block: [C3, Ghosty]", "block: unknown block type 'Ghosty'"),
    ("width: []", "width: expected a non-empty list of choices"),
    ("kernel: [3, 7]", "kernel: expected 3 or 5, got 7"),
    ("stages: [3]", "stages: row 3 is not a C3 stage"),
    ("widths: [0.5]", "unknown key 'widths' (did you mean 'width'?)"),
    ("imgsz: [100, 64]", "imgsz: expected [W, H], multiples of 32"),
    ("block: [C3", "invalid YAML"),
])
def test_bad_space_names_the_key(tmp_path, text, message):
    path = _space(tmp_path, text)
    with pytest.raises(InputError, match=message.replace("[", r"\[").replace("(", r"\(").replace("?", r"\?")
                       .replace(")", r"\)")) as err:
        load_space(path)
    assert "\n" not in str(err.value) and str(err.value).startswith(path)


def test_bad_candidate_names_the_key(smoke):
    cand = smoke.sample(random.Random(0))
    cand["stages"][1].update(block="C3Ghost", kernel=5)
    with pytest.raises(InputError, match=r"candidate.stages\[1\].kernel: C3Ghost allows kernel 3, got 5"):
        build_candidate(cand)
    cand["stages"][1].update(kernel=3, width=0.5)
    with pytest.raises(InputError, match=r"candidate.stages\[1\].width: 0.5 is not in the space smoke"):
        smoke.contains(cand)


def test_cli_budget_below_smallest_exits_2(capsys):
    assert cli_entry(main)(["space", "--space", SMOKE, "--budget-gflops", "0.001", "--samples", "0"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --budget-gflops: 0.001 is below the smallest candidate of smoke (")
    assert "\n" not in err
    assert cli_entry(main)(["space", "--space", SMOKE, "--samples", "1"]) == 0
    assert "| smallest |" in capsys.readouterr().out
