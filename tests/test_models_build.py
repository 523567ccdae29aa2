"""Model building: every scale, tap names and shapes for non-square inputs, ghost size, bad input."""
import pytest
import torch

from mot_kd.errors import InputError
from mot_kd.models import build_model

TAPS = ["neck.p3", "neck.p4", "neck.p5", "id_branch.p3", "id_branch.p4", "id_branch.p5", "embedding",
        "head.box.p3", "head.box.p4", "head.box.p5", "head.cls.p3", "head.cls.p4", "head.cls.p5"]


def n_params(model):
    return sum(p.numel() for p in model.parameters())


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return build_model("yolov5n", id_dim=128)


SCALES = ["yolov5n", "yolov5s", "yolov5m", "yolov5l", "yolov5x", "yolov5s-ghost"]


@pytest.fixture(scope="module")
def every_scale():
    return {name: build_model(name, id_dim=128).eval() for name in SCALES}


@pytest.mark.parametrize("name", SCALES)
def test_every_scale_builds_and_runs(every_scale, name):
    model = every_scale[name]
    assert set(TAPS) <= set(dict(model.named_modules()))
    assert model.strides == (8, 16, 32) and model.nc == 1 and model.reg_max == 16 and model.id_dim == 128
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert [tuple(f.shape) for f in out["feats"]] == [(1, 65, 8, 8), (1, 65, 4, 4), (1, 65, 2, 2)]
    assert tuple(out["embedding"].shape) == (1, 128, 8, 8)


def test_scales_grow_and_ghost_is_lighter_than_s(every_scale):
    sizes = [n_params(every_scale[name]) for name in SCALES[:5]]
    assert sizes == sorted(sizes) and len(set(sizes)) == 5
    assert n_params(every_scale["yolov5s-ghost"]) < 0.85 * n_params(every_scale["yolov5s"])


def test_tap_shapes_for_non_square_input(nano):
    outputs = {}
    modules = dict(nano.named_modules())
    handles = [modules[t].register_forward_hook(lambda m, i, o, t=t: outputs.__setitem__(t, o)) for t in TAPS]
    try:
        out = nano(torch.rand(2, 3, 96, 160))  # H=96, W=160
    finally:
        for h in handles:
            h.remove()
    grids = {"p3": (12, 20), "p4": (6, 10), "p5": (3, 5)}
    neck_channels = {"p3": 64, "p4": 128, "p5": 256}  # yolov5n widths
    for level, (h, w) in grids.items():
        assert outputs[f"neck.{level}"].shape == (2, neck_channels[level], h, w)
        assert outputs[f"id_branch.{level}"].shape == (2, neck_channels[level], h, w)
        assert outputs[f"head.box.{level}"].shape == (2, 64, h, w)
        assert outputs[f"head.cls.{level}"].shape == (2, 1, h, w)
    assert outputs["embedding"].shape == (2, 128, 12, 20)
    assert torch.equal(outputs["embedding"], out["embedding"])
    assert torch.equal(torch.cat((outputs["head.box.p4"], outputs["head.cls.p4"]), 1), out["feats"][1])


def test_identity_branch_differs_from_neck_feature(nano):
    outputs = {}
    modules = dict(nano.named_modules())
    hooks = [modules[t].register_forward_hook(lambda m, i, o, t=t: outputs.__setitem__(t, o))
             for t in ("neck.p3", "id_branch.p3")]
    nano(torch.rand(1, 3, 64, 96))
    for h in hooks:
        h.remove()
    assert not torch.allclose(outputs["neck.p3"], outputs["id_branch.p3"])


def test_bad_inputs_raise_input_error(nano):
    with pytest.raises(InputError, match="multiples of 32"):
        nano(torch.rand(1, 3, 100, 128))
    with pytest.raises(InputError, match="yolov5q"):
        build_model("yolov5q")
    with pytest.raises(InputError, match="scale"):
        build_model("yolov5")  # the scaled YAML without a scale
    with pytest.raises(InputError, match="id_dim"):
        build_model("yolov5n", id_dim=0)


def test_model_from_yaml_path(tmp_path):
    import yaml

    from mot_kd.config import CONFIG_ROOT

    cfg = yaml.safe_load((CONFIG_ROOT / "models" / "yolov5.yaml").read_text())
    cfg["scale"] = "n"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump(cfg))
    assert n_params(build_model(path, id_dim=128)) == n_params(build_model("yolov5n", id_dim=128))
    cfg["outputs"] = [17, 20]
    path.write_text(yaml.safe_dump(cfg))
    with pytest.raises(InputError, match="outputs"):
        build_model(path)
    with pytest.raises(InputError, match="no such model YAML"):
        build_model(tmp_path / "yolov5s.yaml")
