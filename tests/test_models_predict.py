"""Inference (letterbox inversion, embedding read-out), portable checkpoints, model card CLI."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mot_kd.errors import InputError
from mot_kd.models import build_model, load_checkpoint, read_checkpoint, save_checkpoint
from mot_kd.models.info import main as info_main


@pytest.fixture(scope="module")
def nano():
    torch.manual_seed(0)
    return build_model("yolov5n", id_dim=128).eval()


def frame(h=100, w=200, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_predict_inverts_letterbox_and_reads_centre_embedding(nano, monkeypatch):
    # 200x100 into 128x96: scale 0.64, resized 128x64, 16 px of padding on top
    def one_box(box, cls):
        pred = torch.zeros(1, 5, sum(b.shape[2] * b.shape[3] for b in box))
        pred[0, :4, 0] = torch.tensor([48.0, 40.0, 32.0, 16.0])  # xywh in the letterboxed input
        pred[0, 4, 0] = 0.9
        return pred

    captured = {}
    hook = nano.embedding.register_forward_hook(lambda m, i, o: captured.update(emb=o))
    monkeypatch.setattr(nano.head, "decode", one_box)
    try:
        (det,) = nano.predict([frame()], imgsz=(128, 96), conf=0.5)
    finally:
        hook.remove()
    np.testing.assert_allclose(det["boxes"], [[50.0, 25.0, 100.0, 50.0]], atol=1e-4)
    np.testing.assert_allclose(det["scores"], [0.9], atol=1e-6)
    expected = F.normalize(captured["emb"][0, :, 40 // 8, 48 // 8], dim=0).numpy()
    np.testing.assert_allclose(det["embeddings"][0], expected, atol=1e-6)


def test_predict_real_outputs(nano):
    dets = nano.predict([frame(), frame(120, 90, seed=1)], imgsz=(128, 96), conf=0.0, iou=0.5, max_det=20)
    assert len(dets) == 2 and nano.training is False
    for det, (h, w) in zip(dets, [(100, 200), (120, 90)]):
        n = len(det["boxes"])
        assert 0 < n <= 20 and det["scores"].shape == (n,) and det["embeddings"].shape == (n, 128)
        assert (det["boxes"][:, [0, 2]] <= w).all() and (det["boxes"][:, [1, 3]] <= h).all() and (det["boxes"] >= 0).all()
        np.testing.assert_allclose(np.linalg.norm(det["embeddings"], axis=1), 1.0, atol=1e-5)
        assert (np.diff(det["scores"]) <= 0).all()


def test_predict_keeps_training_mode_and_rejects_bad_input(nano):
    nano.train()
    nano.predict([frame()], imgsz=(64, 64))
    assert nano.training
    nano.eval()
    with pytest.raises(InputError, match="multiples of 32"):
        nano.predict([frame()], imgsz=(100, 64))
    with pytest.raises(InputError, match=r"images\[1\]"):
        nano.predict([frame(), np.zeros((10, 10), np.uint8)], imgsz=(64, 64))


def test_checkpoint_round_trip_gives_identical_outputs(nano, tmp_path):
    path = save_checkpoint(nano, tmp_path / "w" / "best.pt", num_ids=7, meta={"epoch": 3, "metrics": {"IDF1": 0.5}})
    raw = torch.load(path, weights_only=True)  # no pickled classes
    assert raw["num_ids"] == 7 and raw["names"] == ["pedestrian"] and raw["arch"]["scale"] == "n"
    loaded = load_checkpoint(path)
    assert loaded.num_ids == 7 and loaded.meta["epoch"] == 3 and not loaded.training
    x = torch.rand(1, 3, 96, 128)
    with torch.no_grad():
        a, b = nano(x), loaded(x)
    assert all(torch.equal(u, v) for u, v in zip(a["feats"], b["feats"]))
    assert torch.equal(a["embedding"], b["embedding"])
    assert [p.name for p in path.parent.iterdir()] == ["best.pt"]  # nothing half-written beside it


def test_checkpoint_bad_files(nano, tmp_path):
    with pytest.raises(InputError, match="no such"):
        load_checkpoint(tmp_path / "missing.pt")
    corrupt = tmp_path / "corrupt.pt"
    corrupt.write_bytes(b"not a checkpoint")
    with pytest.raises(InputError, match=r"corrupt.pt: not a mot-kd checkpoint \(not a torch file"):
        load_checkpoint(corrupt)
    foreign = tmp_path / "foreign.pt"
    torch.save({"model": {"w": torch.zeros(1)}}, foreign)
    with pytest.raises(InputError, match=r"foreign.pt: not a mot-kd checkpoint \(it holds a dict with keys model\)"):
        read_checkpoint(foreign)
    with pytest.raises(InputError, match="meta.when"):
        save_checkpoint(nano, tmp_path / "x.pt", meta={"when": object()})
    assert not (tmp_path / "x.pt").exists()
    mismatched = tmp_path / "mismatched.pt"
    save_checkpoint(nano, mismatched)
    ckpt = torch.load(mismatched, weights_only=True)
    ckpt["arch"]["id_dim"] = 512
    torch.save(ckpt, mismatched)
    with pytest.raises(InputError, match="do not match"):
        load_checkpoint(mismatched)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_predict_on_cuda(nano):
    model = build_model("yolov5n", id_dim=128).cuda().eval()
    (det,) = model.predict([frame()], imgsz=(128, 96), conf=0.0)
    assert det["embeddings"].shape[1] == 128 and np.isfinite(det["boxes"]).all()


def test_info_cli(capsys):
    assert info_main(["yolov5n", "--imgsz", "128", "96", "--id-dim", "128"]) == 0
    row = capsys.readouterr().out.strip().splitlines()[-1]
    params, gflops = (float(v) for v in row.split("|")[2:4])
    assert row.startswith("| yolov5n |") and 1.0 < params < 4.0 and 0.0 < gflops < 1.0
