"""ONNX export: Conv+BN fused, outputs and metadata, parity with PyTorch; INT8 PTQ/QAT; every bad input."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.export.cli import main as export_main
from mot_kd.export.fuse import FixedAdaptivePool, deploy_copy
from mot_kd.export.onnx_export import export_onnx
from mot_kd.models.backends import load_model
from tests.export_helpers import IMGSZ, tiny_checkpoint, tiny_model


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """(model, path of its FP32 export with a dynamic batch)."""
    root = tmp_path_factory.mktemp("export")
    model = tiny_model(gain=1.0)  # un-amplified: the float tolerances below are for a plain network
    return model, export_onnx(model, root / "tiny.onnx", IMGSZ, dynamic_batch=True)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    from mot_kd.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("calib")
    generate_dataset(root, 2, 6, 160, 96, seed=0, progress=False)
    return root


def test_fixed_adaptive_pool_equals_torch():
    x = torch.randn(2, 3, 6, 10)
    for size in (8, 3, 1):
        assert torch.allclose(FixedAdaptivePool(size)(x), nn.AdaptiveAvgPool2d(size)(x), atol=1e-6)


def test_fused_copy_matches_model_and_has_no_batchnorm():
    model = tiny_model(gain=1.0)
    deploy = deploy_copy(model)
    assert not any(isinstance(m, nn.BatchNorm2d) for m in deploy.modules())
    assert any(isinstance(m, nn.BatchNorm2d) for m in model.modules())  # the original is untouched
    x = torch.rand(2, 3, IMGSZ[1], IMGSZ[0])
    with torch.no_grad():
        out = model(x)
        dets, emb = deploy(x)
        ref = model.head.decode(*model.split_feats(out["feats"]))
    # float32 rounding of the folded weights, amplified by BN scales up to ~30 in this test model
    torch.testing.assert_close(dets, ref, atol=0.05, rtol=2e-3)
    torch.testing.assert_close(emb, out["embedding"], atol=1e-3, rtol=1e-3)


def test_onnx_graph_outputs_and_metadata(exported):
    model, path = exported
    proto = onnx.load(str(path))
    ops = {n.op_type for n in proto.graph.node}
    assert "BatchNormalization" not in ops and "Conv" in ops
    assert [o.name for o in proto.graph.output] == ["dets", "embedding"]
    meta = json.loads({p.key: p.value for p in proto.metadata_props}["mot_kd"])
    assert meta["imgsz"] == list(IMGSZ) and meta["strides"] == [8, 16, 32]
    assert meta["id_dim"] == 16 and meta["names"] == model.names and meta["precision"] == "fp32"
    from mot_kd import __version__
    assert meta["version"] == __version__
    backend = load_model(path)
    assert backend.meta == meta and backend.id_dim == 16 and backend.names == model.names


def test_onnx_outputs_match_pytorch(exported):
    model, path = exported
    backend = load_model(path, threads=1)
    x = torch.rand(3, 3, IMGSZ[1], IMGSZ[0])  # batch 3: the batch axis is dynamic
    with torch.no_grad():
        out = model(x)
        ref = model.head.decode(*model.split_feats(out["feats"]))
    dets, emb = backend.run(x.numpy())
    assert dets.shape == (3, 5, 126) and emb.shape == (3, 16, 8, 12)
    np.testing.assert_allclose(dets, ref.numpy(), atol=0.05, rtol=2e-3)  # as the fused copy: rounding only
    np.testing.assert_allclose(emb, out["embedding"].numpy(), atol=1e-3, rtol=1e-3)


def test_onnx_predict_matches_pytorch_predict(exported):
    model, path = exported
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (120, 200, 3), dtype=np.uint8) for _ in range(2)]
    ours = load_model(path).predict(images, conf=0.3, iou=0.5)
    ref = model.predict(images, imgsz=IMGSZ, conf=0.3, iou=0.5)
    assert sum(len(r["scores"]) for r in ref) > 5  # the parity is not about empty outputs
    for a, b in zip(ours, ref):
        np.testing.assert_allclose(a["boxes"], b["boxes"], atol=0.2)
        np.testing.assert_allclose(a["scores"], b["scores"], atol=1e-4)
        np.testing.assert_allclose(a["embeddings"], b["embeddings"], atol=1e-3)


def test_backend_refuses_another_input_size(exported):
    _, path = exported
    image = np.zeros((64, 96, 3), np.uint8)
    with pytest.raises(InputError, match=r"exported for a 96x64 input, got imgsz 128x64"):
        load_model(path).predict([image], imgsz=(128, 64))


def test_int8_ptq_detections_overlap_fp32(exported, data_root, tmp_path):
    from mot_kd.export.quantize import calibration_frames, fp32_nodes, quantize_int8

    model, path = exported
    frames = calibration_frames(data_root, 8, IMGSZ)
    assert frames.shape == (8, 3, IMGSZ[1], IMGSZ[0]) and frames.dtype == np.float32
    out = quantize_int8(path, tmp_path / "int8.onnx", frames, keep_fp32=("first", "head"))
    proto = onnx.load(str(out))
    assert sum(n.op_type == "QuantizeLinear" for n in proto.graph.node) > 50
    kept = fp32_nodes(proto.graph, ("first",))
    assert "/model/backbone/layers.0/conv/Conv" in kept
    fp32, int8 = load_model(path, threads=1), load_model(out, threads=1)
    assert int8.meta["precision"] == "int8" and int8.meta["int8"]["keep_fp32"] == ["first", "head"]
    d32, e32 = fp32.run(frames[:2])
    d8, e8 = int8.run(frames[:2])
    np.testing.assert_allclose(d8[:, 4:], d32[:, 4:], atol=0.08)  # class probabilities
    cos = (e8 * e32).sum(1) / np.linalg.norm(e8, axis=1) / np.linalg.norm(e32, axis=1)
    assert cos.mean() > 0.95
    images = [np.ascontiguousarray((f.transpose(1, 2, 0)[:, :, ::-1] * 255).astype(np.uint8)) for f in frames[:4]]
    a, b = fp32.predict(images, conf=0.3), int8.predict(images, conf=0.3)
    from ultralytics.utils.metrics import box_iou
    for x, y in zip(a, b):
        if len(x["boxes"]):
            assert len(y["boxes"]), "INT8 lost every detection of a frame"
            best = box_iou(torch.from_numpy(x["boxes"]), torch.from_numpy(y["boxes"])).max(1).values
            assert float((best > 0.5).float().mean()) > 0.7


def test_qat_with_kd_lowers_the_kd_loss(data_root):
    from mot_kd.export.qat import FakeQuantConv, QATSettings, fake_quant_copy, qat_finetune

    model = tiny_model(gain=1.0)
    fq = fake_quant_copy(model)
    assert sum(isinstance(m, FakeQuantConv) for m in fq.modules()) > 50
    assert "head.box.p3" in dict(fq.named_modules())  # tap names survive the wrapping
    settings = {"steps": 12, "batch": 2, "detection_loss": False}  # the KD losses alone
    tuned, history = qat_finetune(model, QATSettings(data_root, IMGSZ, lr=1e-3, **settings))
    # control: the same batches with a learning rate of ~0, where only the observers' ranges adapt
    _, control = qat_finetune(model, QATSettings(data_root, IMGSZ, lr=1e-12, **settings))
    assert control[0] == pytest.approx(history[0])  # same start: the fake-quant student vs its FP32 self
    assert np.mean(history[-3:]) < 0.5 * np.mean(control[-3:])  # measured ~1.0 vs ~9.9
    assert not any(isinstance(m, (FakeQuantConv, nn.BatchNorm2d)) for m in tuned.modules())
    x = torch.rand(1, 3, IMGSZ[1], IMGSZ[0])
    with torch.no_grad():  # the fake-quant wrappers are gone, the weights are the fine-tuned ones
        assert not torch.allclose(tuned(x)["embedding"], deploy_copy(model).model(x)["embedding"])


def _cli(argv, capsys):
    from mot_kd.errors import cli_entry

    code = cli_entry(export_main)(argv)
    return code, capsys.readouterr().err.strip()


@pytest.mark.parametrize("extra, message", [
    (["--format", "tflite"], "--format tflite: unknown export format; choose onnx or openvino"),
    (["--imgsz", "100", "64"], "--imgsz: width and height must be positive multiples of 32, got 100x64"),
    (["--int8"], "--int8: needs calibration frames: --calib DATA_ROOT"),
    (["--int8", "--calib", "NOPE"], "--calib NOPE: no such calibration data folder"),
    (["--format", "openvino", "--out", "x.onnx"], "--out x.onnx: a openvino export is written to a .xml file"),
    (["--int8", "--calib", "DATA", "--keep-fp32", "neck"], "--keep-fp32: unknown layer group 'neck'"),
])
def test_export_bad_input_is_one_line_and_writes_nothing(tmp_path, data_root, capsys, extra, message):
    weights = tiny_checkpoint(tmp_path / "m.pt")
    extra = [str(data_root) if a == "DATA" else str(tmp_path / a) if a == "NOPE" else a for a in extra]
    message = message.replace("NOPE", str(tmp_path / "NOPE"))
    out = [] if "--out" in extra else ["--out", str(tmp_path / "out" / ("m.xml" if "openvino" in extra else "m.onnx"))]
    code, err = _cli(["--weights", str(weights), *out, *extra], capsys)
    assert code == 2 and err.startswith(f"error: {message}") and "\n" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"] + (["out"] if (tmp_path / "out").exists() else [])
    assert not any((tmp_path / "out").glob("*")) if (tmp_path / "out").exists() else True


def test_openvino_missing_is_refused_before_calibration_and_qat(tmp_path, data_root, capsys, monkeypatch):
    import importlib.util

    import mot_kd.export.quantize

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "openvino" else real(name, *a))
    monkeypatch.setattr(mot_kd.export.quantize, "calibration_frames", lambda *a: pytest.fail("calibration ran"))
    weights = tiny_checkpoint(tmp_path / "m.pt")
    code, err = _cli(["--weights", str(weights), "--format", "openvino", "--out", str(tmp_path / "out" / "m.xml"),
                      "--int8", "--calib", str(data_root), "--qat"], capsys)
    assert code == 2 and err == "error: --format openvino: needs the openvino package (pip install -e '.[openvino]')"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt"]


def test_qat_metadata_names_the_loss_terms(tmp_path, data_root, monkeypatch):
    import mot_kd.export.qat
    from mot_kd.export.pipeline import Int8Settings, export_model
    from mot_kd.export.quantize import calibration_frames

    model = tiny_model(gain=1.0)
    monkeypatch.setattr(mot_kd.export.qat, "qat_finetune", lambda m, settings: (m, [3.5, 2.0, 1.25]))
    frames = calibration_frames(data_root, 2, IMGSZ)
    for detection_loss, terms in ((True, "kd+detection"), (False, "kd")):
        qat = mot_kd.export.qat.QATSettings(data_root, IMGSZ, steps=3, detection_loss=detection_loss)
        out = export_model(model, tmp_path / f"{terms}.onnx", "onnx", IMGSZ, int8=Int8Settings(frames, qat=qat))
        meta = load_model(out, threads=1).meta
        assert meta["qat"] == {"steps": 3, "loss_terms": terms, "loss_first": 3.5, "loss_last": 1.25}


def test_export_cli_end_to_end_in_a_subprocess(tmp_path):
    weights = tiny_checkpoint(tmp_path / "m.pt")
    run = subprocess.run([sys.executable, "-m", "mot_kd.export", "--weights", str(weights)], capture_output=True,
                         text=True, env={"YOLO_OFFLINE": "1", "OPENBLAS_NUM_THREADS": "1", "PATH": "/usr/bin"})
    assert run.returncode == 0, run.stderr
    assert load_model(tmp_path / "m.onnx").meta["imgsz"] == list(IMGSZ)  # the training size by default


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_export_of_a_model_on_cuda_matches_its_cuda_forward(tmp_path):
    model = tiny_model(gain=1.0).cuda()
    path = export_onnx(model, tmp_path / "cuda.onnx", IMGSZ)  # the export copies the model to the CPU
    assert next(model.parameters()).is_cuda
    x = torch.rand(1, 3, IMGSZ[1], IMGSZ[0])
    with torch.no_grad():
        out = model(x.cuda())
        ref = model.head.decode(*model.split_feats(out["feats"])).cpu().numpy()
    dets, emb = load_model(path).run(x.numpy())
    np.testing.assert_allclose(dets, ref, atol=0.05, rtol=2e-3)
    np.testing.assert_allclose(emb, out["embedding"].cpu().numpy(), atol=1e-3, rtol=1e-3)


@pytest.mark.parametrize("name, content, message", [
    ("cut.pt", b"\x80\x02garbage", "not a mot-kd checkpoint (not a torch file, or a damaged one)"),
    ("m.onnx", b"", "--weights {path}: export starts from a mot-kd checkpoint (.pt)"),
])
def test_export_refuses_a_bad_weights_file(tmp_path, capsys, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    code, err = _cli(["--weights", str(path), "--out", str(tmp_path / "out.onnx")], capsys)
    assert code == 2 and "\n" not in err and message.format(path=path) in err
    assert not (tmp_path / "out.onnx").exists()
