"""Peer benchmark plumbing: input/output adapters, the detection cache, TUD loading, one tiny run per tracker."""
from __future__ import annotations

import json

import numpy as np
import pytest

from mot_kd.errors import InputError
from trackers import load_tracker_config
from trackers.bench_peers import bench_dataset, main, tracker_factories, verdict
from trackers.peer_data import (DetSequence, crowd_sequence, load_cache, make_model_cache, split_by_frame,
                                tud_sequences, write_cache)
from trackers.peers import Boxmot, PeerBoxes, Ultralytics, boxmot_available, boxmot_input, mot_rows, peer_output_rows


def test_our_detections_to_peer_inputs():
    xyxy = np.array([[10.0, 20.0, 50.0, 120.0], [0.0, 0.0, 4.0, 6.0]])
    scores = np.array([0.9, 0.3])
    boxes = PeerBoxes(xyxy, scores)
    np.testing.assert_array_equal(boxes.xywh, [[30, 70, 40, 100], [2, 3, 4, 6]])  # centre x, y, w, h
    assert boxes.conf.tolist() == pytest.approx([0.9, 0.3]) and boxes.cls.tolist() == [0, 0] and len(boxes) == 2
    high = boxes[scores > 0.5]
    assert len(high) == 1 and high.xyxy.tolist() == [[10, 20, 50, 120]]
    np.testing.assert_array_equal(boxmot_input(xyxy, scores),
                                  np.array([[10, 20, 50, 120, 0.9, 0], [0, 0, 4, 6, 0.3, 0]], np.float32))


def test_peer_output_to_mot_rows():
    output = np.array([[10, 20, 50, 120, 7, 0.8, 0, 3], [1, 2, 3, 5, 2, 0.5, 0, 0]], np.float32)
    rows = peer_output_rows(12, output)
    np.testing.assert_allclose(rows, [[12, 7, 10, 20, 40, 100, 0.8, -1, -1, -1],
                                      [12, 2, 1, 2, 2, 3, 0.5, -1, -1, -1]], rtol=1e-6)
    assert peer_output_rows(3, np.zeros((0,), np.float32)).shape == (0, 10)  # ultralytics' empty output
    np.testing.assert_array_equal(mot_rows(4, [1], [[1, 2, 3, 4]], [0.7]), [[4, 1, 1, 2, 3, 4, 0.7, -1, -1, -1]])


def test_split_by_frame_keeps_empty_frames_and_order():
    frame = np.array([3, 1, 3])
    xyxy = np.arange(12.0).reshape(3, 4)
    frames = split_by_frame(frame, 1, 4, xyxy, np.array([0.1, 0.2, 0.3]), None)
    assert [len(s) for _, s, _ in frames] == [1, 0, 2, 0]
    assert frames[0][1].tolist() == [0.2] and frames[2][1].tolist() == [0.1, 0.3]
    assert frames[2][0].tolist() == [[0, 1, 2, 3], [8, 9, 10, 11]] and frames[2][2] is None


def walkers(num_frames: int = 20, dim: int = 4) -> DetSequence:
    """Two well-separated pedestrians walking right; gt = detections (MOT17 layout), unit embeddings."""
    gt, frames = [], []
    ident = np.eye(dim)[:2]
    for t in range(num_frames):
        xyxy = np.array([[100 + 4 * t, 100, 140 + 4 * t, 200], [400 - 4 * t, 300, 440 - 4 * t, 400]], float)
        frames.append((xyxy, np.array([0.9, 0.8]), ident.copy()))
        for k, box in enumerate(xyxy):
            gt.append([t + 1, k + 1, box[0], box[1], box[2] - box[0], box[3] - box[1], 1, 1, 1])
    return DetSequence("walk", np.array(gt), 1, 30.0, frames)


def test_cache_round_trip_and_errors(tmp_path):
    seq = walkers(5)
    path = tmp_path / "c.npz"
    write_cache(path, [seq], {"weights": "w.pt", "split": "val_half"})
    (back,), meta = load_cache(path)
    assert meta["weights"] == "w.pt" and meta["sequences"][0] == {"name": "walk", "first": 1, "last": 5,
                                                                   "frame_rate": 30.0}
    assert back.num_frames == 5 and np.array_equal(back.gt, seq.gt)
    for (b, s, e), (b0, s0, e0) in zip(back.frames, seq.frames):
        assert np.array_equal(b, b0) and np.array_equal(s, s0) and e.dtype == np.float32 and np.array_equal(e, e0)
    with pytest.raises(InputError, match="no detection cache"):
        load_cache(tmp_path / "missing.npz")
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "x"})))
    with pytest.raises(InputError, match="other.npz: not a peer-detection cache"):
        load_cache(tmp_path / "other.npz")


def test_model_cache_from_a_checkpoint_on_a_tiny_synthetic_set(tmp_path):
    """--weights path: an (untrained) yolov5n at 128x96 over the val half of 2 generated sequences."""
    import torch
    import yaml

    from mot_kd.data.synthetic import generate_dataset
    from mot_kd.models import build_model, save_checkpoint

    generate_dataset(tmp_path / "seqs", seqs=2, frames=8, width=192, height=128, seed=3, progress=False)
    data = tmp_path / "data.yaml"
    data.write_text(yaml.safe_dump({"root": str(tmp_path / "seqs"), "detector": "all", "train": {"split": "train_half"},
                                    "val": {"split": "val_half"}}))
    torch.manual_seed(0)
    weights = save_checkpoint(build_model("yolov5n", id_dim=8).eval(), tmp_path / "m.pt", meta={"imgsz": [128, 96]})
    cache = tmp_path / "dets.npz"
    make_model_cache(weights, cache, str(data), conf=0.0001)
    seqs, meta = load_cache(cache)
    assert [s.name for s in seqs] == ["SYN-01", "SYN-02"] and meta["split"] == "val_half" and meta["imgsz"] == [128, 96]
    assert all(s.first == 6 and s.num_frames == 3 and len(s.gt) and (s.gt[:, 0] >= 6).all() for s in seqs)
    dims = {e.shape[1] for s in seqs for _, _, e in s.frames if e is not None}
    assert dims == {8}  # (N, 8) float32 unit embeddings, also for frames without boxes
    boxes = np.concatenate([b for s in seqs for b, _, _ in s.frames])
    assert len(boxes) and (boxes[:, 2:] >= boxes[:, :2]).all()


def test_tud_published_boxes_become_unit_score_detections(tmp_path):
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "gt.txt").write_text("1,1,10,20,30,40,1,-1,-1,-1\n3,1,12,20,30,40,1,-1,-1,-1\n")
        (tmp_path / name / "test.txt").write_text("1,5,11,21,30,40,-1,-1,-1,-1\n2,5,12,21,30,40,-1,-1,-1,-1\n")
    campus, _ = tud_sequences(tmp_path)
    assert campus.name == "TUD-Campus" and campus.num_frames == 3 and campus.frame_rate == 25.0
    assert campus.frames[0][0].tolist() == [[11, 21, 41, 61]] and campus.frames[0][1].tolist() == [1.0]
    assert len(campus.frames[2][1]) == 0 and campus.frames[0][2] is None


def test_crowd_sequence_has_true_boxes_as_gt():
    seq = crowd_sequence(frames=3, targets=8, detections=7, dim=4)
    assert seq.num_frames == 3 and seq.frame_rate == 30.0 and seq.gt.shape == (3 * 8, 9)
    assert seq.gt[:, 0].tolist() == [1] * 8 + [2] * 8 + [3] * 8 and seq.gt[:8, 1].tolist() == list(range(1, 9))
    xyxy, scores, emb = seq.frames[0]
    assert xyxy.shape == (7, 4) and scores.shape == (7,) and emb.shape == (7, 4) and emb.dtype == np.float32
    assert (seq.gt[:, 4:6] > 0).all() and (seq.gt[:, 6:] == 1).all()  # w, h; consider, class, visibility


def test_every_tracker_follows_two_clean_walkers():
    """Ours and the ultralytics peers on perfect detections: identical, perfect scores; rows keep frame numbers."""
    cfg = load_tracker_config("default")
    factories = tracker_factories({"default": cfg, "jde": load_tracker_config("jde")}, cfg, ("ours",), False)
    rows = bench_dataset([walkers()], "MOT17", True, factories, repeat=1)
    assert [r["tracker"] for r in rows] == ["ours (default)", "ours (jde)", "ultralytics ByteTrack",
                                            "ultralytics BoT-SORT + ReID", "ultralytics OC-SORT"]
    assert [r["ours"] for r in rows] == [True, True, False, False, False]
    assert verdict(rows).startswith("- ours (default) vs peers, our score split: IDF1 ")
    for r in rows:
        assert (r["IDSW"], r["IDs"], r["FP"]) == (0, 2, 0), r
        assert r["IDF1"] > 0.9 and r["ms_per_frame"] > 0
    assert "missed" not in verdict(rows).split("; ms/frame")[0]  # IDF1 and HOTA: all perfect, ties count as met


def test_own_mode_gives_our_configs_the_ultralytics_split():
    cfg = load_tracker_config("default")
    labels = [label for label, _ in tracker_factories({"default": cfg}, cfg, ("ours", "own"), False)]
    assert labels[:2] == ["ours:default:ours", "ours:default:own"] and "ultralytics:botsort:own" in labels
    rows = bench_dataset([walkers(5)], "MOT17", False, tracker_factories({"default": cfg}, cfg, ("own",), False), 1)
    assert rows[0]["thresholds"] == "ultralytics" and rows[1]["thresholds"] == "own"


def test_ultralytics_botsort_gets_our_embeddings_and_our_thresholds():
    cfg = load_tracker_config("default")
    peer = Ultralytics("botsort", cfg, 30.0, appearance=True, thresholds="ours")
    assert peer.tracker.args.with_reid and peer.tracker.args.track_high_thresh == cfg["det_thresh"]
    out = peer.update(np.array([[0, 0, 40, 100.0]]), np.array([0.9]), np.array([[1.0, 0, 0]]))
    assert peer.rows(1, out)[:, 1].tolist() == [1]
    assert Ultralytics("bytetrack", cfg, 15.0, False, "own").tracker.max_frames_lost == 15  # 30 at 30 fps


@pytest.mark.skipif(not boxmot_available(), reason="boxmot not installed (benchmark-only, see peer_requirements)")
@pytest.mark.parametrize("kind", ["bytetrack", "botsort", "ocsort"])
def test_boxmot_adapters_track_two_walkers(kind):
    peer = Boxmot(kind, load_tracker_config("default"), 30.0, appearance=True, thresholds="ours")
    seq = walkers()
    ids = set()
    for t, (xyxy, scores, emb) in enumerate(seq.frames):
        ids.update(peer.rows(t + 1, peer.update(xyxy, scores, emb))[:, 1].tolist())
    assert len(ids) == 2


@pytest.mark.parametrize("argv, message", [
    (["--datasets", "tud,mot"], "--datasets: unknown mot"),
    (["--tracker", " , "], "--tracker: give at least one tracker config"),
    (["--tracker", "nonexistent", "--datasets", "tud"], "nonexistent"),
    (["--thresholds", "mine"], "--thresholds: expected own, ours"),
    (["--repeat", "0"], "--repeat: must be at least 1"),
    (["--datasets", "synthetic", "--cache", "nowhere/dets.npz"], "nowhere/dets.npz: no detection cache"),
])
def test_cli_rejects_bad_arguments(argv, message, capsys):
    assert main(argv) == 2
    assert message in capsys.readouterr().err
