"""Starting from ultralytics COCO checkpoints: checkpoints that ultralytics builds from its own YAML and saves in
its own format (``YOLO.save``), loaded into our trunk and head; tensors, features and the person logit compared
with ultralytics' own loader; the mismatches as one-line errors. Tiny: yolov5n/yolov8n scale, 64x64 input."""
from __future__ import annotations

import copy
import os
import sys
import types

os.environ["YOLO_OFFLINE"] = "1"  # ultralytics must not try the network

import pytest
import torch
import yaml
from loguru import logger
from torch import nn
from ultralytics import YOLO
from ultralytics.nn.tasks import load_checkpoint as ultralytics_load
from ultralytics.nn.tasks import yaml_model_load
from ultralytics.utils import ROOT

from mot_kd.errors import InputError
from mot_kd.models import (JDEModel, build_pretrained, checkpoint_kind, load_checkpoint, read_checkpoint,
                           save_checkpoint)
from mot_kd.models.pretrained import read_ultralytics

COCO_NAMES = yaml.safe_load((ROOT / "cfg/datasets/coco.yaml").read_text())["names"]


def save_ultralytics(yaml_name: str, path, names=COCO_NAMES, seed: int = 0):
    """An ultralytics model from its own YAML with trained-like BatchNorm statistics, saved by ultralytics."""
    torch.manual_seed(seed)
    yolo = YOLO(yaml_name)
    for m in yolo.model.modules():
        if isinstance(m, nn.BatchNorm2d):  # small variances: BatchNorm's eps then matters, as in trained weights
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.01, 0.1)
            m.weight.data.uniform_(0.1, 0.3)
            m.bias.data.uniform_(-0.2, 0.2)
    yolo.model.names = names
    yolo.save(path)
    return path


@pytest.fixture(scope="module")
def v5n(tmp_path_factory):
    """(our model, ultralytics' model as ultralytics loads the file, checkpoint path)."""
    path = save_ultralytics("yolov5nu.yaml", tmp_path_factory.mktemp("ul") / "coco_v5n.pt")
    torch.manual_seed(3)
    ours = build_pretrained("yolov5n", path, id_dim=16).eval()
    theirs, _ = ultralytics_load(str(path))
    return ours, theirs.float().eval(), path


def layer_features(model: nn.Module, x: torch.Tensor, layers: list[int]) -> list[torch.Tensor]:
    """Outputs of ultralytics' layers ``layers`` in one forward."""
    feats = {}
    handles = [model.model[i].register_forward_hook(lambda m, a, out, i=i: feats.__setitem__(i, out)) for i in layers]
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return [feats[i] for i in layers]


def test_trunk_and_head_equal_ultralytics_tensor_by_tensor(v5n):
    ours, theirs, _ = v5n
    trunk = list(ours.backbone.layers) + list(ours.neck.layers)
    assert len(trunk) == len(theirs.model) - 1
    for mine, ref in zip(trunk, theirs.model):
        a, b = mine.state_dict(), ref.state_dict()
        assert a.keys() == b.keys() and all(torch.equal(a[k].float(), b[k].float()) for k in a)
    det, ref = ours.head.detect, theirs.model[-1]
    assert all(torch.equal(v, ref.cv2.state_dict()[k]) for k, v in det.cv2.state_dict().items())
    for mine, cls in zip(det.cv3, ref.cv3):
        assert all(torch.equal(v, cls[:-1].state_dict()[k]) for k, v in mine[:-1].state_dict().items())
        assert torch.equal(mine[-1].weight, cls[-1].weight[:1]) and torch.equal(mine[-1].bias, cls[-1].bias[:1])


def test_features_and_person_logit_equal_ultralytics(v5n):
    ours, theirs, _ = v5n
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    ref = layer_features(theirs, x, theirs.model[-1].f)
    with torch.no_grad():
        feats = ours.neck(ours.backbone(x))
        box, cls = ours.head(list(ref))
        ref_box = [cv(f) for cv, f in zip(theirs.model[-1].cv2, ref)]
        ref_cls = [cv(f)[:, :1] for cv, f in zip(theirs.model[-1].cv3, ref)]
    for a, b in zip((*feats, *box, *cls), (*ref, *ref_box, *ref_cls)):
        assert a.shape == b.shape and torch.allclose(a, b, atol=1e-5, rtol=1e-4)
    assert ours.head.detect.cv3[0][0].bn.eps == 1e-3  # with our default eps 1e-5 features differ by ~0.05


def test_embedding_and_decoupling_stay_fresh_and_the_log_says_so(v5n, tmp_path):
    _, _, path = v5n
    lines = []
    sink = logger.add(lambda m: lines.append(m.record["message"]), format="{message}")
    try:
        torch.manual_seed(7)
        ours = build_pretrained("yolov5n", path, id_dim=16)
    finally:
        logger.remove(sink)
    torch.manual_seed(7)
    untouched = JDEModel(ours.arch)  # same arch, same seed: what every fresh part must still hold
    for part in ("decouple", "embedding"):
        a, b = getattr(ours, part).state_dict(), getattr(untouched, part).state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(ours.backbone.layers[0].conv.weight, untouched.backbone.layers[0].conv.weight)
    n_back = len(ours.backbone.state_dict())
    assert lines[0] == f"{path}: ultralytics yolov5nu (scale n), 80 classes -> yolov5n " \
                       "(person = class 0 -> class 0 'pedestrian')"
    assert lines[1].startswith(f"loaded: backbone {n_back} tensors (") and "head.cls" in lines[1]
    assert lines[2].startswith("fresh: decouple ") and "embedding" in lines[2] and "head" not in lines[2]


def test_saved_model_rebuilds_the_pretrained_architecture(v5n, tmp_path):
    ours, _, _ = v5n
    path = save_checkpoint(ours, tmp_path / "best.pt")
    again = load_checkpoint(path)
    assert again.arch["cfg"]["legacy_cls_width"] == 80 and again.arch["cfg"]["batchnorm"]["eps"] == 1e-3
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        a, b = ours(x), again(x)
    assert all(torch.equal(p, q) for p, q in zip(a["feats"], b["feats"]))
    assert checkpoint_kind(path) == "mot-kd" and checkpoint_kind(v5n[2]) == "ultralytics"


def test_yolov8_checkpoint_loads_into_a_matching_trunk(tmp_path):
    path = save_ultralytics("yolov8n.yaml", tmp_path / "coco_v8n.pt", seed=1)
    rows = yaml_model_load("yolov8n.yaml")  # ultralytics' own rows, the Detect row split off as our outputs
    cfg = {"nc": 1, "names": ["pedestrian"], "scales": rows["scales"], "backbone": rows["backbone"],
           "neck": rows["head"][:-1], "outputs": rows["head"][-1][0]}
    ours = build_pretrained(cfg, path, id_dim=16, scale="n").eval()
    theirs, _ = ultralytics_load(str(path))
    x = torch.rand(1, 3, 64, 64)
    ref = layer_features(theirs.float().eval(), x, theirs.model[-1].f)
    with torch.no_grad():
        feats = ours.neck(ours.backbone(x))
    assert all(torch.allclose(a, b, atol=1e-5, rtol=1e-4) for a, b in zip(feats, ref))
    assert "yolov8n (scale n) into yolov5n: layer 0 (Conv): conv.weight is (16, 3, 3, 3) in the checkpoint, " \
           "(16, 3, 6, 6) here; the checkpoint's trunk is not this model's" \
           in one_line_error(build_pretrained, "yolov5n", path, id_dim=16)


def test_trainer_style_checkpoint_reads_its_ema_and_an_older_file_its_scale_by_name(v5n, tmp_path):
    ema = copy.deepcopy(v5n[1]).half()
    del ema.yaml["scale"]  # files of older ultralytics versions: the scale is only in the YAML name
    path = tmp_path / "last.pt"  # ultralytics' trainer writes the EMA and model=None (engine/trainer.py save_model)
    torch.save({"epoch": 3, "model": None, "ema": ema, "train_args": {"imgsz": 64}}, path)
    ckpt = read_ultralytics(path)
    assert ckpt.layers[0].conv.weight.shape == (16, 3, 6, 6) and ckpt.scale == "n"


class Foreign(nn.Module):
    """A class of no known library: pickling it into a checkpoint makes the file foreign."""


def one_line_error(call, *args, **kwargs) -> str:
    with pytest.raises(InputError) as info:
        call(*args, **kwargs)
    assert "\n" not in str(info.value)
    return str(info.value)


def test_mismatches_are_one_line_errors(v5n, tmp_path, monkeypatch):
    _, _, v5n_path = v5n
    assert "yolov5nu (scale n) into yolov5s: layer 0 (Conv): conv.weight is (16, 3, 6, 6) in the checkpoint, " \
           "(32, 3, 6, 6) here; the checkpoint is scale 'n', this model 's' (use yolov5n)" \
           in one_line_error(build_pretrained, "yolov5s", v5n_path, id_dim=16)
    digits = save_ultralytics("yolov5nu.yaml", tmp_path / "no_person.pt", names={i: str(i) for i in range(80)})
    assert "80 classes (0, 1, 2, 3, 4, ...) have no 'person'" in one_line_error(build_pretrained, "yolov5n", digits)
    original = types.ModuleType("models.yolo")
    original.Model = type("Model", (nn.Module,), {"__module__": "models.yolo"})
    monkeypatch.setitem(sys.modules, "models", types.ModuleType("models"))
    monkeypatch.setitem(sys.modules, "models.yolo", original)
    torch.save({"model": original.Model()}, tmp_path / "yolov5s.pt")
    assert "an original YOLOv5" in one_line_error(checkpoint_kind, tmp_path / "yolov5s.pt")
    assert "no such checkpoint file" in one_line_error(checkpoint_kind, tmp_path / "absent.pt")


def test_other_files_get_the_mot_kd_readers_error_and_loading_leaves_torch_strict(v5n, tmp_path):
    torch.save({"model": Foreign()}, tmp_path / "foreign.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "plain.pt")
    (tmp_path / "notes.pt").write_text("not a checkpoint")
    before = torch.serialization.get_safe_globals()
    read_ultralytics(v5n[2])  # ultralytics' allow-list registers classes with torch; undone after the load
    assert set(torch.serialization.get_safe_globals()) == set(before)
    for name in ("foreign.pt", "plain.pt", "notes.pt"):
        message = one_line_error(checkpoint_kind, tmp_path / name)
        assert message.startswith(f"{tmp_path / name}: ")
        assert message == one_line_error(read_checkpoint, tmp_path / name) + \
            " (or an ultralytics detection checkpoint such as yolov5su.pt)"
    ours = save_checkpoint(v5n[0], tmp_path / "ours.pt")
    assert "a mot-kd model checkpoint, not an ultralytics one" in one_line_error(read_ultralytics, ours)


def test_train_cli_starts_the_model_from_an_ultralytics_checkpoint(v5n, tmp_path):
    from mot_kd.data.synthetic import generate_dataset
    from mot_kd.train.cli import job_from_args, main, parse_args

    _, theirs, path = v5n
    generate_dataset(tmp_path / "seqs", seqs=1, frames=6, width=96, height=64, seed=5, progress=False)
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"root": str(tmp_path / "seqs"), "detector": "all", "train": {"split": "full"},
                                    "val": {"split": "full"}}))
    common = ["--data", str(data), "--imgsz", "64", "64", "--batch", "2", "--epochs", "1", "--device", "cpu",
              "--set", "id_dim=16", "--set", "workers=0", "--set", "nbs=2"]
    kd = ["--teacher", "yolov5n", "--teacher-weights", str(path), "--student", "yolov5n", "--out", str(tmp_path / "kd")]
    teacher = one_line_error(job_from_args, parse_args([*kd, *common]))
    assert teacher.startswith(f"--teacher-weights {path}: an ultralytics COCO checkpoint is not a MOT-trained teacher")
    assert f"--model yolov5n --weights {path} --data DATA" in teacher
    assert main(["--model", "yolov5n", "--weights", str(path), *common, "--out", str(tmp_path / "run")]) == 0
    trained = load_checkpoint(tmp_path / "run" / "weights" / "best.pt")
    assert trained.arch["cfg"]["legacy_cls_width"] == 80 and trained.arch["name"] == "yolov5n"
    start, now = theirs.model[0].conv.weight, trained.backbone.layers[0].conv.weight
    assert 0 < (now - start).abs().max() < 0.01  # trained on from the checkpoint (a fresh init differs by ~0.1)


def test_initial_model_tells_the_weights_kinds_apart(v5n, tmp_path):
    from mot_kd.train.cli import initial_model

    ours, _, path = v5n
    mine = save_checkpoint(ours, tmp_path / "best.pt")
    job = {"arch": "yolov5n", "settings": {"id_dim": 16}}
    fresh, again, coco = (initial_model({**job, "weights": w}) for w in (None, str(mine), str(path)))
    assert "legacy_cls_width" not in fresh.arch["cfg"] and fresh.head.detect.cv3[0][0].__class__ is nn.Sequential
    for model in (again, coco):
        assert model.arch["cfg"]["legacy_cls_width"] == 80
        assert torch.equal(model.backbone.layers[0].conv.weight, ours.backbone.layers[0].conv.weight)


def test_ultralytics_private_safe_load_still_exists():
    """_restricted_load uses ultralytics' private allow-list (``ultralytics.nn.tasks._SafeLoad.loading``): an
    ultralytics release without it must fail here, naming the pin, not as a bare ImportError in read_ultralytics."""
    import ultralytics
    from ultralytics.nn import tasks

    pin = next(line.strip() for line in open(os.path.join(os.path.dirname(__file__), "..", "constraints.txt"))
               if line.startswith("ultralytics=="))
    assert callable(getattr(getattr(tasks, "_SafeLoad", None), "loading", None)), (
        f"ultralytics {ultralytics.__version__} has no ultralytics.nn.tasks._SafeLoad.loading, which "
        f"mot_kd.models.pretrained._restricted_load needs: install the pinned {pin} (constraints.txt), or port "
        "_restricted_load to the new release's restricted checkpoint loading")
