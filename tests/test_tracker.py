"""Association tracker on hand-made trajectories: ids kept through crossings, occlusions and low scores."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import cho_factor, cho_solve
from scipy.optimize import linear_sum_assignment

from mot_kd.errors import InputError
from trackers import JDETracker, load_tracker_config, track_arrays
from trackers.kalman import CHI2_95_4DOF, KalmanFilter
from trackers.matching import embedding_distance, fuse_motion, iou_distance, linear_assignment
from trackers.tracklet import TrackState

DIM = 32


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def xyxy(cx, cy, w=40.0, h=100.0) -> list[float]:
    return [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]


def step(tracker: JDETracker, boxes, scores, emb=None) -> dict[int, np.ndarray]:
    """One update; returns {track_id: tlwh} of the reported tracks."""
    boxes = np.array(boxes, dtype=float).reshape(-1, 4)
    ids, tlwh, _ = track_arrays(tracker.update(boxes, np.array(scores, dtype=float), emb))
    return dict(zip(ids.tolist(), tlwh))


def id_at(outputs: dict[int, np.ndarray], box: list[float]) -> int | None:
    """Id of the reported track overlapping ``box`` best (IoU > 0.5), else None."""
    best, best_iou = None, 0.5
    for track_id, tlwh in outputs.items():
        iou = 1 - iou_distance(np.array([[*tlwh[:2], *(tlwh[:2] + tlwh[2:])]]), np.array([box]))[0, 0]
        if iou > best_iou:
            best, best_iou = track_id, iou
    return best


def appearance(rng, identity: np.ndarray, noise: float = 0.05) -> np.ndarray:
    return unit(identity + rng.normal(0, noise, identity.shape))


# ---------------------------------------------------------------------------------------------- behaviour


def crossing_frames():
    """A comes down and B up until they stand side by side (A at x=295, B at x=305); then A walks right and
    B left at 10 px/frame: on the first departure frame A is exactly where B stood and vice versa."""
    frames = []
    for t in range(50):
        ya, yb = 200 - 9 * max(19 - t, 0), 203 + 9 * max(19 - t, 0)
        a, b = (305 + 10 * (t - 30), 295 - 10 * (t - 30)) if t >= 30 else (295, 305)
        frames.append((xyxy(a, ya), xyxy(b, yb)))
    return frames


def run_crossing(use_embeddings: bool) -> tuple[list[int | None], list[int | None]]:
    rng = np.random.default_rng(1)
    ident = unit(rng.normal(size=(2, DIM)))
    tracker = JDETracker({"use_embeddings": use_embeddings})
    ids_a, ids_b = [], []
    for box_a, box_b in crossing_frames():
        emb = np.stack([appearance(rng, ident[0]), appearance(rng, ident[1])])
        out = step(tracker, [box_a, box_b], [0.9, 0.9], emb)
        ids_a.append(id_at(out, box_a))
        ids_b.append(id_at(out, box_b))
    return ids_a, ids_b


def test_crossing_targets_keep_ids_thanks_to_embeddings():
    ids_a, ids_b = run_crossing(use_embeddings=True)
    assert set(ids_a) == {1} and set(ids_b) == {2}


def test_iou_only_swaps_ids_on_the_same_crossing():
    """Motion alone cannot tell who is who after the stop: this is what the embeddings above buy."""
    ids_a, ids_b = run_crossing(use_embeddings=False)
    assert None not in ids_a + ids_b
    assert ids_a[:30] == [1] * 30 and ids_b[:30] == [2] * 30
    assert ids_a[30:] == [2] * 20 and ids_b[30:] == [1] * 20


def occlusion_run(cfg: dict, gap: range, frames: int = 40, frame_rate: float = 30, with_emb: bool = True):
    """Target A walks right (5 px/frame) and is missing on ``gap`` frames; B stands still elsewhere."""
    rng = np.random.default_rng(2)
    ident = unit(rng.normal(size=(2, DIM)))
    tracker = JDETracker(cfg, frame_rate=frame_rate)
    ids_a, ids_b = [], []
    for t in range(frames):
        box_a, box_b = xyxy(100 + 5 * t, 200), xyxy(500, 300)
        visible = t not in gap
        boxes = [box_a, box_b] if visible else [box_b]
        emb = np.stack([appearance(rng, ident[0]), appearance(rng, ident[1])])[0 if visible else 1:]
        out = step(tracker, boxes, [0.9] * len(boxes), emb if with_emb else None)
        ids_a.append(id_at(out, box_a))
        ids_b.append(id_at(out, box_b))
    return ids_a, ids_b, tracker


@pytest.mark.parametrize("with_emb", [True, False], ids=["embeddings", "iou_only"])
def test_occlusion_shorter_than_buffer_gets_id_back(with_emb):
    ids_a, ids_b, _ = occlusion_run({}, gap=range(10, 20), with_emb=with_emb)
    assert ids_a[:10] == [1] * 10
    assert ids_a[10:20] == [None] * 10  # lost tracks are not reported
    assert ids_a[20:] == [1] * 20
    assert set(ids_b) == {2}


def test_buffer_exceeded_gives_new_id_and_removes_old_track():
    ids_a, _, tracker = occlusion_run({"track_buffer": 10}, gap=range(10, 22))
    assert tracker.max_time_lost == 10
    assert ids_a[:10] == [1] * 10 and ids_a[10:22] == [None] * 12
    assert ids_a[22] is None  # unconfirmed on its first frame back
    assert ids_a[23:] == [3] * 17
    assert sorted(t.track_id for t in tracker.tracks) == [2, 3]


def test_buffer_scales_with_frame_rate():
    assert JDETracker({"track_buffer": 30}, frame_rate=15).max_time_lost == 15
    ids_a, _, _ = occlusion_run({"track_buffer": 20}, gap=range(10, 22), frame_rate=15)  # 10 frames of buffer
    assert ids_a[23:] == [3] * 17


def test_low_score_detections_extend_a_track():
    scores = [0.9] * 10 + [0.3] * 10 + [0.9] * 10

    def run(cfg):
        tracker = JDETracker(cfg)
        ids, ghost = [], []
        for t, s in enumerate(scores):
            box = xyxy(100 + 5 * t, 200)
            out = step(tracker, [box, xyxy(600, 300)], [s, 0.3])  # second target: always low score
            ids.append(id_at(out, box))
            ghost.append(id_at(out, xyxy(600, 300)))
        return ids, ghost

    ids, ghost = run({})
    assert ids == [1] * 30  # stage 3 keeps the track alive and reported through the low-score stretch
    assert ghost == [None] * 30  # a low-score detection alone never starts a track
    ids, _ = run({"low_thresh": 0.5})  # no stage-3 candidates: the track is lost, then found again
    assert ids[:10] == [1] * 10 and ids[10:20] == [None] * 10 and ids[20:] == [1] * 10


def test_empty_frames_then_many_detections():
    rng = np.random.default_rng(3)
    tracker = JDETracker()
    for emb in (None, np.zeros((0, DIM))):
        assert tracker.update(np.zeros((0, 4)), np.zeros(0), emb) == []
    boxes = [xyxy(60 + 60 * (i % 10), 100 + 150 * (i // 10)) for i in range(20)]
    ident = unit(rng.normal(size=(20, DIM)))
    outputs = [step(tracker, boxes, [0.8] * 20, appearance(rng, ident)) for _ in range(4)]
    assert outputs[0] == {}  # born after frame 1: unconfirmed until seen again
    for out in outputs[1:]:
        assert [id_at(out, b) for b in boxes] == list(range(1, 21))
    assert step(tracker, [], []) == {}  # all lost, none reported
    assert all(t.state == TrackState.LOST for t in tracker.tracks)
    out = step(tracker, boxes, [0.8] * 20, appearance(rng, ident))
    assert [id_at(out, b) for b in boxes] == list(range(1, 21))


def test_reset_restarts_ids_and_mode():
    tracker = JDETracker()
    for _ in range(2):
        step(tracker, [xyxy(100, 100)], [0.9], unit(np.ones((1, DIM))))
    tracker.reset()
    assert tracker.tracks == [] and tracker.next_id == 1
    assert list(step(tracker, [xyxy(100, 100)], [0.9])) == [1]  # now IoU-only: None is accepted


def test_output_filters_area_and_aspect_ratio():
    tracker = JDETracker({"min_box_area": 100, "max_aspect_ratio": 1.6})
    boxes = [xyxy(100, 100, 40, 100), xyxy(300, 100, 8, 10), xyxy(500, 100, 100, 50), xyxy(700, 100, 70, 100)]
    out = step(tracker, boxes, [0.9] * 4)
    assert [id_at(out, b) for b in boxes] == [1, None, None, 4]  # too small (80 px^2), too wide (w/h 2)
    out = step(JDETracker({"max_aspect_ratio": 0.6}), boxes, [0.9] * 4)  # CSTrack's ratio
    assert [id_at(out, b) for b in boxes] == [1, None, None, None]


def test_duplicate_tracked_and_lost_pair_keeps_the_longer_track():
    tracker = JDETracker({"use_embeddings": False})
    for _ in range(10):  # track 1 followed for 10 frames
        step(tracker, [xyxy(100, 200)], [0.9])
    step(tracker, [xyxy(600, 200)], [0.9])  # track 1 lost; track 2 starts elsewhere
    step(tracker, [xyxy(600, 200)], [0.9])
    pool = tracker.pool  # rows: 0 = old track 1, 1 = young track 2
    assert pool.ids.tolist() == [1, 2] and pool.state.tolist() == [TrackState.LOST, TrackState.TRACKED]
    pool.mean = pool.mean[[0, 0]]  # the young track drifts onto the lost one's spot
    tracker._remove_duplicates()
    assert pool.state.tolist() == [TrackState.LOST, TrackState.REMOVED]
    pool.state = np.array([TrackState.TRACKED, TrackState.LOST], np.int8)  # the other way round: lost one younger
    tracker._remove_duplicates()
    assert pool.state.tolist() == [TrackState.TRACKED, TrackState.REMOVED]
    assert [t.track_id for t in tracker.tracks] == [1, 2] and tracker.tracks[0].duration == 9


# ---------------------------------------------------------------------------------------------- noisy gt


def walking_scene(rng, n_targets=12, frames=80, size=(960, 540)):
    """Ground truth (frame, id) -> xyxy for pedestrians on straight lines, several crossing each other."""
    gt = {}
    for k in range(n_targets):
        h = rng.uniform(70, 130)
        start = rng.uniform([50, 80], [size[0] - 50, size[1] - 80])
        vel = rng.normal(0, 3, 2)
        born, dies = int(rng.integers(0, 20)), int(rng.integers(60, frames + 1))
        for t in range(born, dies):
            c = start + vel * (t - born)
            if 0 < c[0] < size[0] and 0 < c[1] < size[1]:
                gt[(t, k)] = np.array(xyxy(c[0], c[1], 0.4 * h, h))
    return gt


def noisy_detections(rng, gt, frames, ident, miss=0.1, jitter=2.0, fps_per_frame=2):
    """Per frame: gt boxes with jitter, some missed, some low-score, plus low-score false positives."""
    for t in range(frames):
        keys = [k for (f, k) in gt if f == t and rng.random() > miss]
        boxes = [gt[(t, k)] + rng.normal(0, jitter, 4) for k in keys]
        scores = list(rng.choice([rng.uniform(0.6, 1.0), rng.uniform(0.2, 0.45)], p=[0.85, 0.15])
                      for _ in keys)
        embs = [appearance(rng, ident[k], 0.08) for k in keys]
        for _ in range(fps_per_frame):
            c = rng.uniform([50, 80], [900, 460])
            boxes.append(np.array(xyxy(c[0], c[1], 30, 80)))
            scores.append(rng.uniform(0.1, 0.4))
            embs.append(unit(rng.normal(size=DIM)))
        yield np.array(boxes).reshape(-1, 4), np.array(scores), np.array(embs).reshape(-1, DIM)


def id_consistency(gt, outputs, frames) -> dict:
    """Per gt track: share of its matched frames carried by its dominant output id; id switches; coverage."""
    assigned: dict[int, list[int]] = {}
    matched, total = 0, 0
    for t in range(frames):
        keys = [k for (f, k) in gt if f == t]
        total += len(keys)
        out = outputs[t]
        if not keys or not out:
            continue
        out_ids = list(out)
        out_boxes = np.array([[*b[:2], *(b[:2] + b[2:])] for b in out.values()])
        cost = iou_distance(np.array([gt[(t, k)] for k in keys]), out_boxes)
        for r, c in zip(*linear_sum_assignment(cost)):
            if cost[r, c] <= 0.5:
                assigned.setdefault(keys[r], []).append(out_ids[c])
                matched += 1
    dominant = [np.bincount(ids).max() / len(ids) for ids in assigned.values()]
    switches = sum(int(np.sum(np.diff(ids) != 0)) for ids in assigned.values())
    return {"dominant": float(np.mean(dominant)), "worst": float(np.min(dominant)), "switches": switches,
            "recall": matched / total}


@pytest.mark.parametrize("use_embeddings", [True, False], ids=["embeddings", "iou_only"])
def test_noisy_ground_truth_detections_keep_identities(use_embeddings):
    """20 walkers (several crossings), 15 % missed, 3 px jitter, 15 % low-score, 2 false positives per frame.

    Measured (seed 4): 0 switches, dominant-id share 1.00 with embeddings and IoU-only (default xywh box);
    with the xyah box of jde.yaml IoU-only made 1 switch, share 0.99.
    """
    rng = np.random.default_rng(4)
    frames, n_targets = 80, 20
    gt = walking_scene(rng, n_targets=n_targets, frames=frames)
    ident = unit(rng.normal(size=(n_targets, DIM)))
    tracker = JDETracker({"use_embeddings": use_embeddings})
    outputs = [step(tracker, *frame) for frame in noisy_detections(rng, gt, frames, ident, miss=0.15, jitter=3.0)]
    stats = id_consistency(gt, outputs, frames)
    assert stats["recall"] > 0.75
    if use_embeddings:
        assert stats["switches"] == 0 and stats["dominant"] == 1.0
        assert len({i for out in outputs for i in out}) == n_targets  # no fragmented or spurious tracks
    else:
        assert stats["switches"] <= 3 and stats["dominant"] > 0.95
    # false positives (all low-score) never become tracks
    assert all(len(o) <= sum(1 for (f, _) in gt if f == t) for t, o in enumerate(outputs))


# ---------------------------------------------------------------------------------------------- parts


def reference_kalman_step(mean, cov, z):
    """Textbook single-track predict + update (DeepSORT/ByteTrack formulation) for comparison."""
    motion = np.eye(8)
    motion[:4, 4:] = np.eye(4)
    h = mean[3]
    q = np.square([h / 20, h / 20, 1e-2, h / 20, h / 160, h / 160, 1e-5, h / 160])
    mean, cov = motion @ mean, motion @ cov @ motion.T + np.diag(q)
    r = np.diag(np.square([mean[3] / 20, mean[3] / 20, 1e-1, mean[3] / 20]))
    s = cov[:4, :4] + r
    gain = cho_solve(cho_factor(s), cov[:4, :].T.T).T
    d = z - mean[:4]
    maha = d @ np.linalg.solve(s, d)
    return mean + gain @ d, cov - gain @ s @ gain.T, maha


def test_batched_kalman_matches_single_track_reference():
    rng = np.random.default_rng(5)
    kf = KalmanFilter("xyah")  # xywh: tests/test_tracker_fusion.py against ultralytics' filter
    z0 = np.stack([rng.uniform(0, 500, 5), rng.uniform(0, 500, 5), rng.uniform(0.3, 0.6, 5),
                   rng.uniform(50, 150, 5)], 1)
    mean, cov = kf.initiate(z0)
    mean[:, 4:] = rng.normal(0, 2, (5, 4)) * [1, 1, 0, 1]
    z1 = z0 + rng.normal(0, 3, z0.shape) * [1, 1, 0.01, 1]
    pred_mean, pred_cov = kf.predict(mean, cov)
    gating = kf.gating_distance(pred_mean, pred_cov, z1)
    new_mean, new_cov = kf.update(pred_mean, pred_cov, z1)
    for i in range(5):
        ref_mean, ref_cov, ref_maha = reference_kalman_step(mean[i], cov[i], z1[i])
        np.testing.assert_allclose(new_mean[i], ref_mean, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(new_cov[i], ref_cov, rtol=1e-9, atol=1e-9)
        assert gating[i, i] == pytest.approx(ref_maha, rel=1e-9)
    assert gating.shape == (5, 5) and kf.gating_distance(mean[:0], cov[:0], z1).shape == (0, 5)


def test_matching_costs_and_assignment():
    a = np.array([[0, 0, 9, 9], [20, 20, 29, 29]], float)
    b = np.array([[0, 0, 9, 9], [5, 0, 14, 9], [100, 100, 109, 109]], float)
    dist = iou_distance(a, b)
    assert dist[0, 0] == pytest.approx(0.0) and dist[0, 1] == pytest.approx(1 - 50 / 150) and dist[1, 2] == 1.0
    assert iou_distance(a[:0], b).shape == (0, 3)
    f = unit(np.array([[1.0, 0.0], [0.0, 1.0]]))
    np.testing.assert_allclose(embedding_distance(f, unit(np.array([[1.0, 1.0], [-1.0, 0.0]]))),
                               [[1 - np.sqrt(0.5), 2.0], [1 - np.sqrt(0.5), 1.0]])
    fused = fuse_motion(np.zeros((1, 2)), np.array([[1.0, CHI2_95_4DOF + 1]]), CHI2_95_4DOF, 0.98)
    assert fused[0, 0] == pytest.approx(0.02) and np.isinf(fused[0, 1])
    cost = np.array([[0.1, 0.3, np.inf], [0.2, 0.9, 0.95], [np.inf, 0.35, 0.9]])
    matches, free_rows, free_cols = linear_assignment(cost, thresh=0.4)
    # lapjv's extended problem charges thresh/2 per unmatched row and column: 0.1 + 0.35 + 0.4 beats
    # 0.3 + 0.2 + 0.4; pairs above the threshold (0.9, 0.95, inf) are never matched.
    assert matches.tolist() == [[0, 0], [2, 1]]
    assert free_rows.tolist() == [1] and free_cols.tolist() == [2]
    m, r, c = linear_assignment(np.zeros((0, 4)), 0.5)
    assert m.shape == (0, 2) and r.size == 0 and c.tolist() == [0, 1, 2, 3]


# ---------------------------------------------------------------------------------------------- config, bad input


def test_config_defaults_overrides_and_errors(tmp_path):
    cfg = load_tracker_config()
    assert cfg["appearance_weight"] == 0.98 and cfg["motion_gate"] == pytest.approx(9.4877)
    assert cfg["max_aspect_ratio"] == 1.6 and cfg["use_embeddings"] is True
    assert load_tracker_config("iou_only")["use_embeddings"] is False
    path = tmp_path / "t.yaml"
    path.write_text("track_buffer: 60\n")
    assert load_tracker_config(path)["track_buffer"] == 60
    with pytest.raises(InputError, match="unknown key.*trak_buffer"):
        load_tracker_config({"trak_buffer": 3})
    with pytest.raises(InputError, match="det_thresh must be a number"):
        load_tracker_config({"det_thresh": "high"})
    with pytest.raises(InputError, match="low_thresh .* must not exceed det_thresh"):
        load_tracker_config({"low_thresh": 0.6})
    with pytest.raises(InputError, match="no such tracker config"):
        load_tracker_config("nonexistent")
    with pytest.raises(InputError, match="frame_rate"):
        JDETracker(frame_rate=0)


@pytest.mark.parametrize("boxes, scores, emb, message", [
    ([[0, 0, np.nan, 10]], [0.9], None, "boxes: NaN or infinite value in box 0"),
    ([[0, 0, 10, 10]], [np.inf], None, "scores: NaN or infinite"),
    ([[0, 0, 10, 10], [5, 5, 2, 20]], [0.9, 0.9], None, "boxes: negative width or height in box 1"),
    ([[0, 0, 10, 10]], [0.9, 0.8], None, "lengths differ"),
    ([[0, 0, 10]], [0.9], None, r"boxes: expected shape \(N, 4\)"),
    ([[0, 0, 10, 10]], [[0.9]], None, "scores: expected a 1-D array"),
    ([[0, 0, 10, 10]], [0.9], np.ones((2, DIM)), "embeddings: 2 rows for 1 boxes"),
    ([[0, 0, 10, 10]], [0.9], np.zeros((1, DIM)), "embeddings: zero vector in row 0"),
    ([[0, 0, 10, 10]], [0.9], np.full((1, DIM), np.nan), "embeddings: NaN"),
    ([["a", 0, 10, 10]], [0.9], None, "boxes: not a numeric array"),
])
def test_bad_detections_raise_clear_errors(boxes, scores, emb, message):
    with pytest.raises(InputError, match=message):
        JDETracker().update(boxes, scores, emb)


def test_embedding_dimension_and_mode_are_held_to_the_first_frame():
    tracker = JDETracker()
    tracker.update([xyxy(100, 100)], [0.9], unit(np.ones((1, DIM))))
    with pytest.raises(InputError, match=f"dimension 16, but this tracker was started with {DIM}"):
        tracker.update([xyxy(100, 100)], [0.9], unit(np.ones((1, 16))))
    with pytest.raises(InputError, match="embeddings: None but .* started with 32-d embeddings"):
        tracker.update([xyxy(100, 100)], [0.9], None)
    iou_tracker = JDETracker()
    iou_tracker.update([xyxy(100, 100)], [0.9], None)
    with pytest.raises(InputError, match=r"given but .*\(IoU-only\)"):
        iou_tracker.update([xyxy(100, 100)], [0.9], unit(np.ones((1, DIM))))
    # with use_embeddings false, embeddings are checked for shape but otherwise ignored
    assert list(step(JDETracker("iou_only"), [xyxy(100, 100)], [0.9], unit(np.ones((1, DIM))))) == [1]
