"""Pruning pieces on tiny models: interface kept, FLOPs at the target, portable pruned checkpoints, the seed
importance on a hand-made layer, KD recovery of a pruned student, and the library's bad-input errors."""
from __future__ import annotations

import shutil

import pytest
import torch
import torch_pruning as tp
from torch import nn

from mot_kd.config import CONFIG_ROOT
from mot_kd.errors import InputError
from mot_kd.kd import KDHooks
from mot_kd.models import JDEModel, build_model, load_checkpoint, save_checkpoint
from mot_kd.models.info import main as info_main, model_card
from mot_kd.prune.importance import Calibration, SeedImportance, importance_for
from mot_kd.prune.structure import check_reachable, gflops, prune_to_gflops

IMGSZ = (64, 64)


@pytest.fixture(scope="module")
def yaml_copy(tmp_path_factory):
    """A private copy of the model YAML, deleted by the round-trip test to show the checkpoint needs none."""
    path = tmp_path_factory.mktemp("cfg") / "tiny.yaml"
    shutil.copyfile(CONFIG_ROOT / "models" / "yolov5.yaml", path)
    return path


@pytest.fixture(scope="module")
def original(yaml_copy) -> JDEModel:
    torch.manual_seed(0)
    model = build_model(yaml_copy, id_dim=16, scale="n").eval()
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    for m in norms:  # distinct BN scales, so the importances have something to rank
        m.weight.data.uniform_(0.1, 1.0)
        m.reset_running_stats()
        m.momentum = None  # running stats = the mean over the batches below: a fresh model's eval-mode
    with torch.no_grad():  # activations would vanish layer by layer (outputs = biases, whatever the input)
        model.train()(torch.rand(4, 3, 64, 64))
    for m in norms:
        m.momentum = 0.03
    return model.eval()


@pytest.fixture(scope="module")
def pruned(original) -> JDEModel:
    model, _ = prune_to_gflops(original, importance_for("bn"), 0.5 * gflops(original, IMGSZ), IMGSZ, "test")
    return model.eval()


def test_pruned_model_keeps_its_output_interface(original, pruned):
    x = torch.rand(2, 3, 64, 96)
    before, after = original(x), pruned(x)
    assert [f.shape for f in after["feats"]] == [f.shape for f in before["feats"]]
    assert after["embedding"].shape == before["embedding"].shape == (2, 16, 8, 12)
    assert pruned.predict([torch.randint(0, 255, (80, 120, 3), dtype=torch.uint8).numpy()], imgsz=(96, 64))[0][
        "embeddings"].shape[1] == 16
    assert model_card(pruned, IMGSZ)["params"] < 0.6 * model_card(original, IMGSZ)["params"]


def test_flops_reach_the_target_within_tolerance(original, pruned):
    ratio = gflops(pruned, IMGSZ) / gflops(original, IMGSZ)
    assert 0.5 * 0.98 <= ratio <= 0.5


def test_pruned_checkpoint_round_trips_without_the_yaml(pruned, yaml_copy, tmp_path, capsys):
    path = save_checkpoint(pruned, tmp_path / "pruned.pt", num_ids=3, meta={"imgsz": [64, 64]})
    yaml_copy.unlink()  # the checkpoint's arch is all that is needed
    loaded = load_checkpoint(path)
    assert loaded.arch["widths"] == pruned.arch["widths"]
    x = torch.rand(1, 3, 64, 64)
    a, b = pruned(x), loaded(x)
    assert all(torch.equal(u, v) for u, v in zip(a["feats"], b["feats"]))
    assert torch.equal(a["embedding"], b["embedding"])
    assert info_main([str(path), "--imgsz", "64", "64"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    assert row.split("|")[2].strip() == f"{model_card(pruned, IMGSZ)['params'] / 1e6:.2f}"
    assert row.split("|")[4].strip() == "16"


def test_widths_naming_a_missing_module_is_one_line_error(pruned):
    arch = {**pruned.arch, "widths": {**pruned.arch["widths"], "neck.nowhere": [4]}}
    with pytest.raises(InputError, match=r"widths\['neck.nowhere'\]: no such module"):
        JDEModel(arch)
    arch = {**pruned.arch, "widths": {**pruned.arch["widths"], "backbone.layers.0.conv": [3, 0, 1]}}
    with pytest.raises(InputError, match="expected 3 positive integers"):
        JDEModel(arch)


def test_unreachable_target_names_the_layer_that_would_lose_every_channel(original):
    with pytest.raises(InputError, match=r"--target-flops 0.0001: would remove every channel of layer \S+ \(\d+ "
                                         r"channels\)") as err:
        check_reachable(original, importance_for("bn"), 1e-4 * gflops(original, IMGSZ), IMGSZ, "--target-flops 0.0001")
    assert "\n" not in str(err.value)


def _hand_made_layer() -> nn.Sequential:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 6, 3, padding=1, bias=False), nn.BatchNorm2d(6), nn.ReLU(), nn.Conv2d(6, 4, 1))
    with torch.no_grad():
        net[0].weight[5] = net[0].weight[2]  # channel 5 duplicates channel 2 ...
        net[1].weight.fill_(1.0)
        net[1].weight[5] = 2.0  # ... with the largest BN scale, so BN scale alone would keep it first
    return net


def test_seed_importance_ranks_a_duplicated_channel_least_independent():
    net = _hand_made_layer()
    calibration = Calibration.measure(net, [torch.rand(4, 3, 16, 16) for _ in range(2)])
    independence = calibration.scores["1"]
    assert independence[2] == pytest.approx(0.0, abs=1e-5) and independence[5] == pytest.approx(0.0, abs=1e-5)
    assert (independence[[0, 1, 3, 4]] > 0.2).all()
    group = tp.DependencyGraph().build_dependency(net, example_inputs=torch.rand(1, 3, 16, 16)).get_pruning_group(
        net[0], tp.prune_conv_out_channels, idxs=list(range(6)))
    seed = SeedImportance(calibration, 0.0, net)(group)
    assert set(seed.argsort()[:2].tolist()) == {2, 5}
    assert tp.importance.BNScaleImportance()(group).argmax() == 5  # the baseline keeps the duplicate
    mixed = SeedImportance(calibration, 0.5, net)(group)
    assert torch.allclose(mixed, 0.5 * torch.tensor([.5, .5, .5, .5, .5, 1.]) + 0.5 * independence)


def test_constant_channel_is_not_independent():
    net = _hand_made_layer()
    with torch.no_grad():
        net[0].weight[1] = 0.0  # BN output of channel 1 is its bias alone
    assert Calibration.measure(net, [torch.rand(2, 3, 8, 8)]).scores["1"][1] == 0.0


def test_seed_importance_refuses_a_stale_calibration(original, pruned):
    calibration = Calibration.measure(original, [torch.rand(1, 3, 64, 64)])
    with pytest.raises(InputError, match="calibrate the model being pruned"):
        prune_to_gflops(pruned, importance_for("seed", calibration), 0.5 * gflops(pruned, IMGSZ), IMGSZ, "test")


def test_kd_recovery_lowers_the_kd_loss(original, pruned):
    student = JDEModel(pruned.arch)
    student.load_state_dict(pruned.state_dict())
    student.train()
    kd = KDHooks(original, student, {"adapter": "auto"}, sample_input=torch.zeros(1, 3, 64, 64))
    optimizer = torch.optim.AdamW([*student.parameters(), *kd.parameters()], lr=2e-3)
    torch.manual_seed(1)
    images = torch.rand(2, 3, 64, 64)
    targets = torch.tensor([[0, 0, 0, 0.3, 0.4, 0.2, 0.5], [1, 0, 1, 0.6, 0.5, 0.25, 0.6]])

    def kd_loss() -> tuple[torch.Tensor, dict]:
        student(images)
        return kd(images, targets)

    first, before = kd_loss()
    assert {"erc", "key_feature", "pred_diff"} <= {k.removeprefix("kd_") for k in before}
    for _ in range(15):
        loss, _ = kd_loss()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    last, after = kd_loss()
    assert float(last.detach()) < 0.97 * float(first.detach())
    assert all(float(after[k]) < float(before[k]) for k in before)  # each of the three losses
    assert len(kd.connectors.adapters) >= 1  # the pruned neck's channels differ: adapters map them


def test_output_gap_is_zero_for_the_model_itself_and_grows_with_pruning(original, pruned):
    from mot_kd.prune.pipeline import output_gap

    batches = [torch.rand(2, 3, 64, 64)]
    assert output_gap(original, original, batches) == 0.0
    assert output_gap(pruned, original, batches) > 0.0


def test_bench_speed_prints_fps_against_flops(capsys):
    from mot_kd.prune.bench_speed import main as speed_main

    assert speed_main(["--model", "yolov5n", "--id-dim", "16", "--targets", "0.5", "--compare", "--imgsz", "64", "64",
                       "--rounds", "2"]) == 0
    rows = [r.split("|") for r in capsys.readouterr().out.strip().splitlines()[2:]]
    assert [r[1].strip() for r in rows] == ["yolov5n", "yolov5n pruned to 0.5"]
    assert rows[1][5].strip() == "2.00x" or 1.9 < float(rows[1][5].strip().rstrip("x")) <= 2.05
    assert float(rows[0][7]) == 1.0 and float(rows[1][7]) > 0


def test_pruned_model_with_ultralytics_arch_options_round_trips(tmp_path):
    from mot_kd.prune.structure import pruned_copy

    base = build_model("yolov5n", id_dim=16)
    cfg = {**base.arch["cfg"], "legacy_cls_width": 24, "batchnorm": {"eps": 1e-3, "momentum": 0.03}}
    model = JDEModel({**base.arch, "cfg": cfg}).eval()
    pruned = pruned_copy(model, importance_for("l1"), 0.3, IMGSZ).eval()
    assert pruned.arch["widths"]["head.detect.cv3.0.0.conv"][1] < 24  # the legacy class branch is pruned too
    loaded = load_checkpoint(save_checkpoint(pruned, tmp_path / "p.pt"))
    norms = [m for m in loaded.modules() if isinstance(m, nn.BatchNorm2d)]
    assert {(m.eps, m.momentum) for m in norms} == {(1e-3, 0.03)}
    x = torch.rand(1, 3, 64, 64)
    assert torch.equal(loaded(x)["embedding"], pruned(x)["embedding"])
