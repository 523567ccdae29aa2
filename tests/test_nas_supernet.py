"""Supernet: sampled paths cost what their standalone models cost, weight inheritance is exact, KD training
steps move the shared weights, and a resumed run continues exactly."""
from __future__ import annotations

import random

import pytest
import torch

from mot_kd.models.info import model_card
from mot_kd.nas import build_candidate, load_space
from mot_kd.nas.supernet import Supernet
from mot_kd.nas.supernet_train import SupernetSettings, SupernetTrainer


@pytest.fixture(scope="module")
def space():
    return load_space("smoke")


def batch_at(step: int):
    g = torch.Generator().manual_seed(step)
    images = torch.rand(2, 3, 64, 64, generator=g)
    targets = torch.tensor([[0, 0, 0, 0.3, 0.4, 0.2, 0.5], [0, 0, 1, 0.7, 0.5, 0.2, 0.6],
                            [1, 0, 2, 0.5, 0.5, 0.3, 0.7], [1, 0, 3, 0.2, 0.6, 0.15, 0.4]])
    return images, targets


def test_path_cost_and_outputs_equal_the_extracted_model(space):
    torch.manual_seed(0)
    net, rng, x = Supernet(space), random.Random(5), torch.rand(2, 3, 64, 64)
    for _ in range(4):
        cand = space.sample(rng)
        skeleton = net.skeleton(cand)
        path_params = sum(t.numel() for n, t in net.tensors(cand, skeleton).items()
                          if n in dict(skeleton.named_parameters()))
        model = net.extract(cand).eval()
        assert path_params == sum(p.numel() for p in model.parameters())
        assert model_card(skeleton, (64, 64)) == model_card(build_candidate(cand), (64, 64))
        net.eval()
        with torch.no_grad():
            a, b = net(cand, x), model(x)
        assert torch.equal(a["embedding"], b["embedding"])
        assert all(torch.equal(p, q) for p, q in zip(a["feats"], b["feats"]))


def test_train_mode_path_updates_shared_batchnorm_statistics(space):
    net = Supernet(space).train()
    cand = space.sample(random.Random(1))
    key = net.key(cand, "neck.layers.0.bn.running_mean")
    before = net.shared[key].detach().clone()
    net(cand, torch.rand(2, 3, 64, 64))
    assert not torch.equal(before, net.shared[key])


def make_trainer(space, out, **settings):
    torch.manual_seed(0)
    net = Supernet(space)
    teacher = build_candidate(net.largest_per_block()[0]).eval()
    return SupernetTrainer(net, teacher, num_ids=4, settings=SupernetSettings(lr=0.01, save_every=2, **settings),
                           out=out)


def test_kd_steps_train_the_sampled_paths_and_resume_exactly(space, tmp_path):
    straight = make_trainer(space, tmp_path / "a", steps=4)
    rows = straight.fit(batch_at)
    assert len(rows) == 4 and all(r["kd/erc"] >= 0 and r["loss"] > 0 for r in rows)
    assert "kd/key_feature" in rows[0] and "kd/pred_diff" in rows[0]
    cut = make_trainer(space, tmp_path / "b", steps=2)
    cut.fit(batch_at)
    resumed = make_trainer(space, tmp_path / "b", steps=4)
    resumed.resume()
    assert resumed.step == 2
    resumed.fit(batch_at)
    a, b = straight.net.state_dict(), resumed.net.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    untrained = make_trainer(space, tmp_path / "c", steps=0).net.state_dict()
    assert any(not torch.equal(a[k], untrained[k]) for k in a)


def test_sandwich_adds_the_largest_and_smallest_paths(space, tmp_path):
    trainer = make_trainer(space, tmp_path, steps=1, sandwich=True)
    paths = trainer.paths()
    c = space.choices
    assert len(paths) == 3
    assert {s["width"] for s in paths[0]["stages"]} == {max(c["width"])}
    assert {s["width"] for s in paths[1]["stages"]} == {min(c["width"])} and paths[1]["id_dim"] == min(c["id_dim"])
    assert trainer.train_step(*batch_at(0))["loss"] > 0
