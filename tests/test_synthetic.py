"""Synthetic MOT generator: format, determinism, identities, occlusion, perspective, distractors, bad input."""
from __future__ import annotations

import json
import math
import subprocess
import sys

import cv2
import numpy as np
import pytest
from loguru import logger

from mot_kd.data.motchallenge import find_sequences, read_gt
from mot_kd.data.synthetic import SceneConfig, generate_dataset, generate_sequence, main
from mot_kd.data.synthetic_motion import Walker
from mot_kd.data.synthetic_people import Appearance, make_lookalike, person_sprite, sample_appearance
from mot_kd.data.synthetic_render import Scene
from mot_kd.data.synthetic_scene import Camera
from mot_kd.data.synthetic_sprite import composite, new_canvas, rasterise
from mot_kd.errors import InputError, cli_entry

W, H, FRAMES = 160, 96, 20
OPTIONS = dict(people=6, lookalike=0.5)


def _scene(seed: int = 0, frames: int = 150, jitter: bool = False, people: int = 6) -> Scene:
    config = SceneConfig(width=W, height=H, frames=frames, people=people, lookalike=0.5, clutter=3, jitter=jitter)
    return Scene(np.random.default_rng([seed, 1]), config)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    out = tmp_path_factory.mktemp("syn") / "set"
    return out, generate_dataset(out, 2, FRAMES, W, H, seed=3, progress=False, **OPTIONS)


@pytest.fixture(scope="module")
def long_run():
    """Frames and gt rows of one 150-frame scene rendered in memory (no JPEG)."""
    scene = _scene(seed=1)
    rows = []
    for frame in range(1, 151):
        rows.extend(scene.render(frame)[1])
    return scene, np.array(rows, float)


def test_format_reads_back_as_motchallenge(dataset):
    out, paths = dataset
    sequences = find_sequences(out)
    assert [s.name for s in sequences] == ["SYN-01", "SYN-02"] == [p.name for p in paths]
    for seq in sequences:
        seq.check_images()
        assert (seq.seq_length, seq.frame_rate, seq.width, seq.height, seq.im_ext) == (FRAMES, 30, W, H, ".jpg")
        assert cv2.imread(str(seq.image_path(1))).shape == (H, W, 3)
        lines = seq.gt_path.read_text().splitlines()
        assert lines and all(len(line.split(",")) == 9 for line in lines)
        gt = read_gt(seq)
        assert set(np.unique(gt.cls)) <= {1, 7, 12} and 1 in gt.cls and 7 in gt.cls
        assert np.array_equal(gt.consider, gt.cls == 1)
        assert ((gt.visibility >= 0) & (gt.visibility <= 1)).all()
        assert gt.frame.min() >= 1 and gt.frame.max() == FRAMES
        pairs = set(zip(gt.frame.tolist(), gt.track_id.tolist()))
        assert len(pairs) == len(gt)  # one row per identity and frame
        for track_id in np.unique(gt.track_id):  # an id never changes class
            assert len(np.unique(gt.cls[gt.track_id == track_id])) == 1
        x, y, w, h = gt.tlwh.T
        assert (w > 0).all() and (h > 0).all()
        assert ((x + w > 0) & (y + h > 0) & (x < W) & (y < H)).all()  # every box touches the image
        inside = (np.minimum(x + w, W) - np.maximum(x, 0)) * (np.minimum(y + h, H) - np.maximum(y, 0))
        assert (inside / (w * h)).mean() > 0.8  # mostly inside; partly outside only at the borders


def test_same_seed_same_bytes_other_seed_other_people(dataset, tmp_path):
    out, _ = dataset
    again = generate_dataset(tmp_path / "again", 2, FRAMES, W, H, seed=3, progress=False, **OPTIONS)
    for seq in again:
        first = out / seq.name
        for rel in ["gt/gt.txt", "seqinfo.ini", "synthetic.json"] + [f"img1/{f:06d}.jpg" for f in (1, 7, FRAMES)]:
            assert (first / rel).read_bytes() == (seq / rel).read_bytes(), rel
    other = generate_dataset(tmp_path / "other", 1, FRAMES, W, H, seed=4, progress=False, **OPTIONS)[0]
    assert (other / "gt/gt.txt").read_bytes() != (out / "SYN-01/gt/gt.txt").read_bytes()
    people = [{json.dumps(r["appearance"], sort_keys=True) for r in
               json.loads((p / "synthetic.json").read_text())["identities"].values() if "appearance" in r}
              for p in (other, out / "SYN-01", out / "SYN-02")]
    assert not people[0] & people[1] and not people[1] & people[2]  # seeds and sequences share nobody


def test_boxes_hug_the_drawn_people_also_with_camera_jitter():
    """Each fully visible pedestrian's box edges touch pixels that differ from the empty background."""
    for jitter in (False, True):
        scene = _scene(seed=2, frames=12, jitter=jitter)
        m = scene.cam.margin
        checked = 0
        for frame in range(1, 13):
            image, rows = scene.render(frame)
            dx, dy = scene.path[frame - 1]
            empty = scene.background[m + dy:m + dy + H, m + dx:m + dx + W].astype(int)
            diff = np.abs(image.astype(int) - empty).max(axis=2)  # in memory: no JPEG noise
            changed, strong = diff > 2, diff > 25
            for _, _, x, y, w, h, _, cls, vis in rows:
                if cls != 1 or vis < 1 or x < 0 or y < 0 or x + w > W or y + h > H or h < 16:
                    continue
                patch = changed[y:y + h, x:x + w]
                assert patch[0].any() and patch[-1].any() and patch[:, 0].any() and patch[:, -1].any()
                assert strong[y:y + h, x:x + w].mean() > 0.25
                checked += 1
        assert checked >= 10
    jittered = _scene(seed=2, frames=12, jitter=True)
    assert len({tuple(o) for o in jittered.path}) > 3  # the camera actually moves


def test_identities_persist_and_move_smoothly(long_run):
    _, rows = long_run
    ped = rows[rows[:, 7] == 1]
    lengths = []
    for track_id in np.unique(ped[:, 1]):
        track = ped[ped[:, 1] == track_id]
        lengths.append(len(track))
        steps = np.diff(track[:, 0])
        centre = track[:, 2:4] + track[:, 4:6] / 2
        moves = np.linalg.norm(np.diff(centre, axis=0), axis=1)[steps == 1]
        assert (moves < 0.08 * W).all()  # consecutive boxes of one id are close: no id swaps
    assert np.median(lengths) >= 30


def test_people_enter_and_leave_through_the_sides(long_run):
    _, rows = long_run
    ped = rows[rows[:, 7] == 1]
    first, last = {}, {}
    for r in ped:
        first.setdefault(int(r[1]), r)
        last[int(r[1])] = r
    entered = [r for r in first.values() if r[0] > 1]
    left = [r for r in last.values() if r[0] < 150]
    assert entered and left
    for r in entered + left:  # appear/disappear at the left or right image border
        assert r[2] <= 0 or r[2] + r[4] >= W


def test_occlusion_lowers_visibility(long_run, dataset):
    _, rows = long_run
    vis = rows[rows[:, 7] == 1, 8]
    assert (vis == 1).mean() > 0.3 and (vis < 0.95).mean() > 0.05 and (vis < 0.5).any()
    gt = read_gt(find_sequences(dataset[0])[0])
    assert (gt.visibility[gt.pedestrians] < 1).any()


def test_perspective_lower_boxes_are_taller(long_run):
    _, rows = long_run
    ped = rows[rows[:, 7] == 1]
    ped = ped[(ped[:, 3] > 0) & (ped[:, 3] + ped[:, 5] < H)]  # feet and head in the image
    bottom, height = ped[:, 3] + ped[:, 5], ped[:, 5]
    assert np.corrcoef(bottom, height)[0, 1] > 0.9
    low, high = height[bottom > np.median(bottom)], height[bottom <= np.median(bottom)]
    assert low.mean() > 1.5 * high.mean()


def test_distractors_static_person_and_reflections(long_run):
    scene, rows = long_run
    static = rows[rows[:, 7] == 7]
    assert len(np.unique(static[:, 1])) == 1 and len(static) == 150
    assert (static[:, 2:6] == static[0, 2:6]).all()  # never moves (no jitter)
    assert (static[:, 6] == 0).all()
    reflections = rows[rows[:, 7] == 12]
    assert len(reflections) and (reflections[:, 6] == 0).all()
    records = scene.identities.records
    for track_id in np.unique(reflections[:, 1]):  # each reflection mirrors a pedestrian seen that frame
        source = records[int(track_id)]["of"]
        assert records[source]["kind"] == "pedestrian"
        frames = reflections[reflections[:, 1] == track_id, 0]
        assert set(frames) <= set(rows[rows[:, 1] == source, 0])


def test_lookalike_pairs_differ_in_one_detail(dataset, long_run):
    meta = json.loads((dataset[1][0] / "synthetic.json").read_text())["identities"]
    twins = [(k, r) for k, r in meta.items() if r.get("twin_of")]
    assert twins
    for track_id, record in twins:
        a, b = record["appearance"], meta[str(record["twin_of"])]["appearance"]
        assert sum(a[key] != b[key] for key in a) == 1
    scene, rows = long_run
    twins = [(k, r["twin_of"]) for k, r in scene.identities.records.items() if r.get("twin_of")]
    seen = set(rows[rows[:, 7] == 1, 1].astype(int))
    assert any(a in seen and b in seen for a, b in twins)
    rng = np.random.default_rng(0)
    for _ in range(50):
        source = sample_appearance(rng)
        copy, detail = make_lookalike(source, rng)
        changed = [k for k in Appearance.__dataclass_fields__ if getattr(copy, k) != getattr(source, k)]
        assert len(changed) == 1 and copy.height_m == source.height_m


def test_lookalikes_look_alike_in_pixels():
    """A look-alike's sprite is closer to its source's than another random person's is."""
    rng = np.random.default_rng(1)
    wins = 0
    for _ in range(20):
        source, other = sample_appearance(rng), sample_appearance(rng)
        twin = make_lookalike(source, rng)[0]
        pixels = [person_sprite(a, 60, 2, 1).colour[:50, :20].astype(float) for a in (source, twin, other)]
        shape = np.min([p.shape for p in pixels], axis=0)
        a, b, c = (p[:shape[0], :shape[1]] for p in pixels)
        wins += np.abs(a - b).mean() < np.abs(a - c).mean()
    assert wins >= 17


def test_visibility_is_the_uncovered_fraction_of_the_figure():
    def block(width, height, colour):
        canvas = new_canvas(width, height)
        canvas[:] = colour
        return rasterise(canvas, (width / 2, height))

    far, near = block(20, 40, (200, 50, 50)), block(20, 40, (50, 200, 50))
    frame = np.zeros((60, 60, 3), np.uint8)
    labels = np.full((60, 60), -1)
    composite(frame, labels, far, 10, 10, 0)
    composite(frame, labels, near, 20, 10, 1)  # covers the right half of the far block
    seen = np.bincount(labels.ravel() + 1, minlength=3)[1:]
    assert seen[0] / far.area == pytest.approx(0.5) and seen[1] / near.area == 1.0
    assert (frame[20, 12] == (200, 50, 50)).all() and (frame[20, 25] == (50, 200, 50)).all()
    assert far.box == (0, 0, 20, 40) and far.anchor == (10, 40)


def test_walker_turns_stops_and_changes_speed():
    cam = Camera(640, 384, 0)
    walker = Walker(1, sample_appearance(np.random.default_rng(0)), 0.0, cam.z_near * 2, 0.3, 1.3,
                    leave_frame=10 ** 9)
    rng = np.random.default_rng(5)
    speeds, headings = [], []
    for frame in range(2, 30 * 120):
        walker.step(rng, frame, 30, cam)
        speeds.append(walker.speed)
        headings.append(walker.heading)
        assert 0.7 * cam.z_near < walker.z < 1.05 * cam.z_far  # stays on the walkable floor
    assert min(speeds) < 0.2 and np.std(speeds) > 0.1
    assert np.ptp(np.unwrap(headings)) > math.pi / 2


def test_generation_speed_is_logged(tmp_path):
    messages = []
    sink = logger.add(messages.append, format="{message}")
    try:
        generate_dataset(tmp_path / "speed", 1, 10, W, H, seed=0, progress=False)
    finally:
        logger.remove(sink)
    report = [m for m in messages if "frames/s" in m]
    assert report
    print(report[0].strip())


def test_existing_output_folder_keeps_other_content(tmp_path):
    out = tmp_path / "set"
    (out / "SYN-01").mkdir(parents=True)
    (out / "SYN-01" / "stale.txt").write_text("old")
    (out / "notes.txt").write_text("mine")
    generate_dataset(out, 1, 3, W, H, progress=False)
    assert (out / "notes.txt").read_text() == "mine"
    assert not (out / "SYN-01" / "stale.txt").exists() and (out / "SYN-01/gt/gt.txt").is_file()
    assert sorted(p.name for p in out.iterdir()) == ["SYN-01", "notes.txt"]


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_leaves_nothing_half_written(tmp_path, monkeypatch, error):
    def explode(self, frame):
        if frame == 3:
            raise error("boom")
        return original(self, frame)

    original = Scene.render
    monkeypatch.setattr(Scene, "render", explode)
    with pytest.raises(error):
        generate_dataset(tmp_path / "new", 2, 5, W, H, progress=False)
    assert list(tmp_path.iterdir()) == []
    (tmp_path / "old").mkdir()
    with pytest.raises(error):
        generate_dataset(tmp_path / "old", 2, 5, W, H, progress=False)
    with pytest.raises(error):
        generate_sequence(tmp_path / "old" / "SEQ", SceneConfig(width=W, height=H, frames=5))
    assert list((tmp_path / "old").iterdir()) == []


@pytest.mark.parametrize("args, needle", [
    (["--width", "0"], "width"), (["--height", "20"], "height"), (["--frames", "0"], "frames"),
    (["--seqs", "-1"], "seqs"), (["--people", "0"], "people"), (["--lookalike", "1.5"], "lookalike"),
    (["--seed", "-3"], "seed"), (["--fps", "0"], "fps"), (["--prefix", "a/b"], "prefix"),
    (["--width", "1000", "--height", "48"], "width/height"), (["--clutter", "-1"], "clutter"),
])
def test_cli_bad_input_exits_2_and_writes_nothing(tmp_path, capsys, args, needle):
    out = tmp_path / "out"
    assert cli_entry(main)(["--out", str(out), "--frames", "2", "--width", str(W), "--height", str(H)] + args) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and needle in err and "Traceback" not in err
    assert not out.exists()


def test_cli_out_is_a_file_and_module_entry_point(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    proc = subprocess.run([sys.executable, "-m", "mot_kd.data.synthetic", "--out", str(blocker), "--seqs", "1",
                           "--frames", "2", "--width", str(W), "--height", str(H)], capture_output=True, text=True)
    assert proc.returncode == 2 and "not a folder" in proc.stderr and "Traceback" not in proc.stderr
    assert blocker.read_text() == "x"
    with pytest.raises(InputError, match="unknown scene option"):
        generate_dataset(tmp_path / "x", 1, 2, W, H, crowd=3)
    assert cli_entry(main)(["--out", str(tmp_path / "ok"), "--seqs", "1", "--frames", "2", "--width", str(W),
                            "--height", str(H), "--jitter", "--quiet", "--prefix", "VAL"]) == 0
    assert [s.name for s in find_sequences(tmp_path / "ok")] == ["VAL-01"]
