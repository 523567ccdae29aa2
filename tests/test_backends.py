"""One predict interface, the backend picked by file type: selection, bad files, and tracks from an exported
model equal to the checkpoint's through ``trackers.track`` and ``eval.mot17``."""
from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch

from mot_kd.errors import InputError, cli_entry
from mot_kd.export.onnx_export import export_onnx
from mot_kd.models import JDEModel
from mot_kd.models.backends import backend_for, load_model
from tests.export_helpers import IMGSZ, tiny_checkpoint, tiny_model


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """{'pt', 'onnx', 'data'}: a tiny checkpoint, its FP32 ONNX export, a 2-sequence synthetic data root."""
    from mot_kd.data.synthetic import generate_dataset

    root = tmp_path_factory.mktemp("backends")
    generate_dataset(root / "data", 2, 8, 160, 96, seed=1, progress=False)
    pt = tiny_checkpoint(root / "m.pt")
    return {"pt": pt, "onnx": export_onnx(tiny_model(), root / "m.onnx", IMGSZ), "data": root / "data",
            "root": root}


def test_backend_by_file_type(files):
    assert [backend_for(p) for p in ("a/best.pt", "m.PTH", "m.onnx", "m.xml")] == [
        "torch", "torch", "onnxruntime", "openvino"]
    with pytest.raises(InputError, match=r"m\.tflite: unknown model file type '\.tflite'; expected a mot-kd "
                                         r"checkpoint \(\.pt\), an ONNX model \(\.onnx\) or an OpenVINO IR"):
        backend_for("m.tflite")
    assert isinstance(load_model(files["pt"]), JDEModel)
    backend = load_model(files["onnx"])
    assert backend.kind == "onnxruntime" and backend.meta["imgsz"] == list(IMGSZ)


def test_corrupt_and_foreign_onnx_files(tmp_path, files):
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(files["onnx"].read_bytes()[:5000])
    with pytest.raises(InputError, match=r"cut\.onnx: not a readable ONNX model \(damaged or truncated\?\)"):
        load_model(cut)
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(torch.nn.Conv2d(3, 4, 3), torch.zeros(1, 3, 8, 8), str(foreign), dynamo=False)
    with pytest.raises(InputError, match=r"foreign\.onnx: no mot-kd metadata \(key 'mot_kd'\): not exported by "
                                         r"mot-kd; export it with `python -m mot_kd.export"):
        load_model(foreign)
    proto = onnx.load(str(files["onnx"]))
    meta = json.loads(proto.metadata_props[0].value)
    proto.metadata_props[0].value = json.dumps({k: v for k, v in meta.items() if k != "id_dim"})
    onnx.save(proto, str(tmp_path / "partial.onnx"))
    with pytest.raises(InputError, match=r"partial\.onnx: mot-kd metadata lacks id_dim"):
        load_model(tmp_path / "partial.onnx")
    with pytest.raises(InputError, match=r"missing\.onnx: no such ONNX model"):
        load_model(tmp_path / "missing.onnx")


def _track(weights, files, out, capsys=None):
    from trackers.track import main

    seq = files["data"] / "SYN-01"
    return cli_entry(main)(["--weights", str(weights), "--source", str(seq), "--out", str(out), "--conf", "0.3"])


def test_track_with_onnx_gives_the_checkpoints_tracks(files, tmp_path):
    assert _track(files["pt"], files, tmp_path / "pt.txt") == 0
    assert _track(files["onnx"], files, tmp_path / "onnx.txt") == 0
    ref = np.loadtxt(tmp_path / "pt.txt", delimiter=",", ndmin=2)
    ours = np.loadtxt(tmp_path / "onnx.txt", delimiter=",", ndmin=2)
    assert len(ref) > 20  # real tracks, not an empty file on both sides
    assert ours.shape == ref.shape
    np.testing.assert_array_equal(ours[:, :2], ref[:, :2])  # frames and track ids
    np.testing.assert_allclose(ours[:, 2:6], ref[:, 2:6], atol=0.05)  # boxes within 0.05 px


@pytest.mark.parametrize("content, message", [
    (b"not a model", "not a readable ONNX model (damaged or truncated?)"),
])
def test_track_cli_corrupt_weights_one_line_no_output(files, tmp_path, capsys, content, message):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(content)
    assert _track(bad, files, tmp_path / "out.txt") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {bad}: {message}") and "\n" not in err
    assert not (tmp_path / "out.txt").exists()


def test_eval_mot17_with_onnx_weights_matches_checkpoint(files, tmp_path):
    from eval.mot17 import main

    scores = {}
    for kind in ("pt", "onnx"):
        out = tmp_path / f"{kind}.json"
        assert cli_entry(main)(["--data-root", str(files["data"]), "--weights", str(files[kind]), "--results",
                                str(tmp_path / kind), "--conf", "0.3", "--json", str(out)]) == 0
        scores[kind] = json.loads(out.read_text())["combined"]
    for key in ("HOTA", "IDF1", "MOTA"):
        assert scores["onnx"][key] == pytest.approx(scores["pt"][key], abs=1e-9), key


def test_openvino_export_and_backend(files, tmp_path):
    pytest.importorskip("openvino")
    from mot_kd.export.openvino_export import onnx_to_openvino

    xml = onnx_to_openvino(files["onnx"], tmp_path / "ov" / "m.xml")
    assert xml.with_suffix(".bin").is_file() and sorted(p.name for p in xml.parent.iterdir()) == ["m.bin", "m.xml"]
    backend = load_model(xml, threads=1)
    assert backend.kind == "openvino" and backend.meta["runtime"] == "openvino"
    x = np.random.default_rng(0).random((1, 3, IMGSZ[1], IMGSZ[0]), dtype=np.float32)
    ref = load_model(files["onnx"]).run(x)
    (dets, emb), (ref_dets, ref_emb) = backend.run(x), ref  # OpenVINO FP32 kernels differ by ~0.1-0.5% relative
    np.testing.assert_allclose(dets[:, 4:], ref_dets[:, 4:], atol=1e-3)  # scores
    np.testing.assert_allclose(dets[:, :4], ref_dets[:, :4], atol=0.05, rtol=2e-3)  # box pixels (own exp/softmax)
    np.testing.assert_allclose(emb, ref_emb, atol=0.02, rtol=5e-3)
    assert _track(xml, files, tmp_path / "ov.txt") == 0
    assert _track(files["onnx"], files, tmp_path / "onnx.txt") == 0
    ours = np.loadtxt(tmp_path / "ov.txt", delimiter=",", ndmin=2)
    ref = np.loadtxt(tmp_path / "onnx.txt", delimiter=",", ndmin=2)
    assert ours.shape == ref.shape and np.array_equal(ours[:, :2], ref[:, :2])
    (tmp_path / "bad.xml").write_text("<net>")
    with pytest.raises(InputError, match=r"bad\.xml: no such OpenVINO IR \(needs bad\.xml and bad\.bin\)"):
        load_model(tmp_path / "bad.xml")
    (tmp_path / "bad.bin").write_bytes(b"")
    with pytest.raises(InputError, match=r"bad\.xml: not a readable OpenVINO IR"):
        load_model(tmp_path / "bad.xml")
