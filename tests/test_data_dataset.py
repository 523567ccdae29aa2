"""Training dataset, augmentations, letterbox, collate, seeded loader, data configs."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
import yaml
from test_data_support import walking_gt, write_jde_set, write_sequence, write_tud_sequence

from mot_kd.config import CONFIG_ROOT
from mot_kd.data.augment import AugmentConfig, augment, clip_boxes, hsv_jitter
from mot_kd.data.data_config import load_data_config
from mot_kd.data.dataset import JDESource, MOTSource, MOTTrainDataset, build_loader, collate
from mot_kd.data.letterbox import PAD_VALUE, boxes_from_letterbox, boxes_to_letterbox, letterbox
from mot_kd.errors import InputError

SIZE = (96, 64)
#: BGR colours, one per identity, far apart so interpolation at a box centre cannot confuse them.
COLOURS = {1: (255, 0, 0), 2: (0, 255, 0), 3: (0, 0, 255), 4: (255, 255, 0)}


def boxes_at(frame: int) -> dict[int, tuple[int, int, int, int]]:
    """Non-overlapping tlwh boxes of four identities in a 128x96 image, moving with the frame."""
    return {1: (4 + frame, 10, 16, 40), 2: (34, 20 + frame, 20, 36), 3: (66 - frame, 30, 14, 44),
            4: (96, 8, 24, 30)}


def colour_sequence(root, frames=4):
    def draw(frame, image):
        for track, (x, y, w, h) in boxes_at(frame).items():
            image[y:y + h, x:x + w] = COLOURS[track]

    rows = [(f, t, *box, 1, 1, 1.0) for f in range(1, frames + 1) for t, box in boxes_at(f).items()]
    return write_sequence(root, "COLOUR", rows, frames=frames, size=(128, 96), im_ext=".png", draw=draw)


def test_letterbox_box_round_trip():
    rng = np.random.default_rng(0)
    for (w0, h0), size in [((640, 480), (1088, 608)), ((1920, 1080), (1088, 608)), ((300, 700), (320, 320))]:
        image = rng.integers(0, 255, (h0, w0, 3), dtype=np.uint8)
        out, info = letterbox(image, size)
        assert out.shape == (size[1], size[0], 3)
        xy = rng.uniform(0, 1, (20, 2)) * (w0, h0)
        boxes = np.concatenate([xy, xy + rng.uniform(1, 50, (20, 2))], axis=1)
        boxes[:, [0, 2]] = boxes[:, [0, 2]].clip(0, w0)
        boxes[:, [1, 3]] = boxes[:, [1, 3]].clip(0, h0)
        np.testing.assert_allclose(boxes_from_letterbox(boxes_to_letterbox(boxes, info), info), boxes, atol=1e-9)
        # the content is centred: padding on both sides differs by at most one pixel
        grey = (out == PAD_VALUE).all(axis=2)
        left = int(np.argmin(grey[size[1] // 2]))
        right = int(np.argmin(grey[size[1] // 2, ::-1]))
        assert abs(left - right) <= 1 and left == int(info.pad_x)


def test_items_and_collate_without_augmentation(tmp_path):
    write_sequence(tmp_path, "S", [(1, 5, 8, 4, 16, 24, 1, 1, 1.0), (1, 6, 30, 10, 10, 20, 1, 1, 1.0),
                                   (2, 6, 31, 10, 10, 20, 1, 1, 1.0)], frames=2, size=(64, 48))
    data = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=SIZE, augment=None)
    assert len(data) == 2 and data.num_ids == 2
    image, targets = data[0]
    assert image.shape == (3, 64, 96) and image.dtype == torch.float32 and 0 <= image.min() <= image.max() <= 1
    # 64x48 -> scale 4/3 to 85x64, padded 5 px left: box (8,4,16,24) has centre (16,16) -> (26.33, 21.33)
    k, pad = 4 / 3, 5
    expected = [[0, 0, (16 * k + pad) / 96, 16 * k / 64, 16 * k / 96, 24 * k / 64],
                [0, 1, (35 * k + pad) / 96, 20 * k / 64, 10 * k / 96, 20 * k / 64]]
    np.testing.assert_allclose(targets.numpy(), expected, rtol=1e-5)
    images, batch_targets = collate([data[0], data[1]])
    assert images.shape == (2, 3, 64, 96)
    assert batch_targets.shape == (3, 7)
    np.testing.assert_array_equal(batch_targets[:, 0].numpy(), [0, 0, 1])
    np.testing.assert_array_equal(batch_targets[:, 2].numpy(), [0, 1, 1])


def test_image_is_rgb(tmp_path):
    def draw(frame, image):
        image[:] = (255, 0, 0)  # pure blue in BGR

    write_sequence(tmp_path, "S", walking_gt(1), frames=1, size=(96, 64), im_ext=".png", draw=draw)
    image, _ = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=SIZE, augment=None)[0]
    np.testing.assert_allclose(image[:, 32, 48].numpy(), [0, 0, 1])


def test_only_visible_considered_pedestrians_are_targets(tmp_path):
    rows = [(1, 1, 2, 2, 10, 20, 1, 1, 0.9), (1, 2, 20, 2, 10, 20, 0, 1, 1.0), (1, 3, 35, 2, 10, 20, 1, 7, 1.0),
            (1, 4, 50, 2, 10, 20, 1, 1, 0.2)]
    write_sequence(tmp_path, "S", rows, frames=1)
    all_vis = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=SIZE, augment=None)
    assert all_vis.num_ids == 2 and all_vis[0][1][:, 1].tolist() == [0, 1]
    visible = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full", min_visibility=0.5)], size=SIZE,
                                           augment=None)
    assert visible.num_ids == 1 and len(visible[0][1]) == 1


def test_splits_identities_and_detector_copies(tmp_path):
    train = tmp_path / "MOT17" / "train"
    for det in ("DPM", "FRCNN", "SDP"):
        write_sequence(train, f"MOT17-02-{det}", walking_gt(10, ids=(3, 8)), frames=10)
    write_sequence(train, "MOT17-05-FRCNN", walking_gt(10, ids=(1,)), frames=10)
    half = MOTTrainDataset.from_sources([MOTSource(tmp_path / "MOT17", "train_half", detector="all")],
                                        size=SIZE, augment=None)
    assert len(half) == 2 * 6  # one detector copy of MOT17-02, frames 1..6 of each sequence
    assert half.num_ids == 3
    names = sorted({s.image.parent.parent.name for s in half.samples})
    assert names == ["MOT17-02-DPM", "MOT17-05-FRCNN"]
    ids = {s.image.parent.parent.name: sorted({int(i) for i in np.concatenate([x.labels[:, 1] for x in half.samples
                                               if x.image.parent.parent.name == s.image.parent.parent.name])})
           for s in half.samples}
    assert ids == {"MOT17-02-DPM": [0, 1], "MOT17-05-FRCNN": [2]}
    val = MOTTrainDataset.from_sources([MOTSource(tmp_path / "MOT17", "val_half", ("MOT17-05",))], size=SIZE,
                                       augment=None)
    assert [int(s.image.stem) for s in val.samples] == [7, 8, 9, 10]


def test_mot_and_jde_sources_share_identity_space(tmp_path):
    write_sequence(tmp_path / "mot", "S", walking_gt(2, ids=(1, 2)), frames=2)
    list_file = write_jde_set(tmp_path / "jde", "crowd", [[(0, 0, 0.3, 0.5, 0.2, 0.4), (0, -1, 0.7, 0.5, 0.2, 0.4)],
                                                          [(0, 4, 0.5, 0.5, 0.3, 0.5)]])
    data = MOTTrainDataset.from_sources([MOTSource(tmp_path / "mot", "full"), JDESource(list_file, tmp_path / "jde")],
                                        size=SIZE, augment=None)
    assert data.num_ids == 2 + 5 and len(data) == 4
    assert data[2][1][:, 1].tolist() == [2, -1]
    assert data[3][1][:, 1].tolist() == [6]
    k, pad = 4 / 3, 5  # 64x48 letterboxed into 96x64
    np.testing.assert_allclose(data[3][1][0, 2:].numpy(), [(32 * k + pad) / 96, 0.5, 0.3 * 64 * k / 96, 0.5],
                               atol=1e-6)


def _colour_ok(image: torch.Tensor, targets: torch.Tensor, size) -> None:
    width, height = size
    rgb_of = {track: np.array(bgr[::-1]) / 255 for track, bgr in COLOURS.items()}
    for _, track, cx, cy, w, h in targets.numpy():
        x, y = int(cx * width), int(cy * height)
        pixel = image[:, y, x].numpy()
        assert np.abs(pixel - rgb_of[int(track) + 1]).max() < 0.1, (track, pixel)
        # the box edges hug the painted rectangle: a pixel just outside each side is not the id's colour
        for px, py in [(x, int((cy - h / 2) * height) - 2), (int((cx - w / 2) * width) - 2, y)]:
            if 0 <= px < width and 0 <= py < height:
                assert np.abs(image[:, py, px].numpy() - rgb_of[int(track) + 1]).max() > 0.2


def test_augmentation_keeps_boxes_on_their_identities(tmp_path):
    colour_sequence(tmp_path)
    config = AugmentConfig(hsv_h=0, hsv_s=0, hsv_v=0, flip=0.5, scale=(0.6, 1.4), translate=0.2)
    data = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=(160, 128), augment=config, seed=3)
    counts = []
    for epoch in range(4):
        data.set_epoch(epoch)
        for index in range(len(data)):
            image, targets = data[index]
            _colour_ok(image, targets, (160, 128))
            counts.append(len(targets))
    assert max(counts) == 4 and min(counts) < 4  # zooms/shifts pushed some boxes out and they were dropped


def test_flip_and_affine_units():
    image = np.zeros((40, 60, 3), np.uint8)
    image[5:25, 10:20] = 255
    boxes = np.array([[10.0, 5.0, 20.0, 25.0], [55.0, 0.0, 80.0, 10.0]])
    rng = np.random.default_rng(0)
    out, moved, kept = augment(image, boxes, rng, AugmentConfig(hsv_h=0, hsv_s=0, hsv_v=0, flip=1.0, scale=(1, 1),
                                                                translate=0.0))
    np.testing.assert_array_equal(kept, [0, 1])
    np.testing.assert_allclose(moved, [[40, 5, 50, 25], [0, 0, 5, 10]])
    assert out[15, 45].max() == 255 and out[15, 15].max() == 0
    clipped, index = clip_boxes(np.array([[-30.0, 0, 2, 10], [0, 0, 1, 30], [50, 30, 70, 50]]), 60, 40, 2, 0.2)
    np.testing.assert_array_equal(index, [2])  # mostly outside, too thin; the third is cut to 10x10 of 20x20
    np.testing.assert_allclose(clipped, [[50, 30, 60, 40]])
    jittered = hsv_jitter(np.full((4, 4, 3), 120, np.uint8), np.random.default_rng(1), 0.015, 0.7, 0.4)
    assert jittered.shape == (4, 4, 3) and not np.array_equal(jittered, np.full((4, 4, 3), 120, np.uint8))


def _batches(loader):
    return [(images.clone(), targets.clone()) for images, targets in loader]


def test_loader_is_deterministic_across_worker_counts(tmp_path):
    colour_sequence(tmp_path, frames=6)
    data = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=(128, 96), seed=11)
    serial = _batches(build_loader(data, batch_size=2, shuffle=True, seed=5, epoch=1, workers=0))
    parallel = _batches(build_loader(data, batch_size=2, shuffle=True, seed=5, epoch=1, workers=2))
    assert len(serial) == 3
    for (img_a, tgt_a), (img_b, tgt_b) in zip(serial, parallel):
        assert torch.equal(img_a, img_b) and torch.equal(tgt_a, tgt_b)
    next_epoch = _batches(build_loader(data, batch_size=2, shuffle=True, seed=5, epoch=2, workers=0))
    assert any(not torch.equal(a[0], b[0]) for a, b in zip(serial, next_epoch))
    other = MOTTrainDataset(data.samples, data.num_ids, (128, 96), seed=12)
    other_batches = _batches(build_loader(other, batch_size=2, shuffle=False, seed=5, epoch=1))
    same_order = _batches(build_loader(data, batch_size=2, shuffle=False, seed=5, epoch=1))
    assert not torch.equal(other_batches[0][0], same_order[0][0])


# ----------------------------------------------------------------------------------------- bad input
def test_unreadable_image_names_file(tmp_path):
    seq = write_sequence(tmp_path, "S", walking_gt(2), frames=2)
    (seq / "img1" / "000002.jpg").write_bytes(b"not a jpeg")
    data = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=SIZE)
    data[0]
    with pytest.raises(InputError, match=r"img1/000002\.jpg: missing or unreadable image \(empty, damaged or not"):
        data[1]
    with pytest.raises(InputError, match=r"^\S*img1/000002\.jpg: missing or unreadable image[^\n]*$"):
        list(build_loader(data, batch_size=1, shuffle=False, workers=1))  # one line, even from a worker


def test_image_size_differs_from_seqinfo(tmp_path):
    seq = write_sequence(tmp_path, "S", walking_gt(1), frames=1)
    cv2.imwrite(str(seq / "img1" / "000001.jpg"), np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(InputError, match=r"000001\.jpg: image is 10x10 but seqinfo\.ini says 64x48"):
        MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=SIZE)[0]


def test_dataset_bad_arguments(tmp_path):
    seq = write_sequence(tmp_path, "S", walking_gt(3), frames=3)
    with pytest.raises(InputError, match="multiples of 32"):
        MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=(100, 64))
    with pytest.raises(InputError, match="unknown split 'halves'"):
        MOTTrainDataset.from_sources([MOTSource(tmp_path, "halves")])
    (seq / "img1" / "000003.jpg").unlink()
    with pytest.raises(InputError, match="seqLength=3"):
        MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")])
    with pytest.raises(InputError, match=r"^augment: unknown key 'mosaic'; valid keys: "):
        AugmentConfig.from_dict({"mosaic": 1.0})
    with pytest.raises(InputError, match=r"^augment: unknown key 'flipp' \(did you mean 'flip'\?\)$"):
        AugmentConfig.from_dict({"flipp": 0.5})


# ----------------------------------------------------------------------------------------- data configs
def test_shipped_data_configs():
    synthetic = load_data_config("synthetic")
    assert synthetic.synthetic == {"seqs": 4, "frames": 150, "width": 640, "height": 384, "seed": 0}
    assert synthetic.train.split == "train_half" and synthetic.val.split == "val_half"
    with pytest.raises(InputError, match=r"mot17\.yaml: root /\S*datasets/MOT17 is not a folder"):
        load_data_config("mot17")
    with pytest.raises(InputError, match=r"mot15\.yaml: root /\S*datasets/MOT15 is not a folder"):
        load_data_config("mot15")
    for name, benchmark, val_split, train_seqs in (("mot15", "MOT15", "full", 9), ("mot17", "MOT17", "val_half", 0)):
        raw = yaml.safe_load((CONFIG_ROOT / "data" / f"{name}.yaml").read_text())
        config = load_data_config({**raw, "root": str(CONFIG_ROOT)})  # the shipped keys, with a root that exists
        assert (config.benchmark, config.val.split, len(config.train.sequences or ())) == (benchmark, val_split,
                                                                                            train_seqs)


def test_data_config_resolves_sources(tmp_path):
    for det in ("DPM", "FRCNN"):
        write_sequence(tmp_path / "MOT17" / "train", f"MOT17-02-{det}", walking_gt(4), frames=4)
    write_sequence(tmp_path / "MOT17" / "train", "MOT17-04-FRCNN", walking_gt(4), frames=4)
    list_file = write_jde_set(tmp_path / "jde", "crowd", [[(0, 0, 0.3, 0.5, 0.2, 0.4)]])
    path = tmp_path / "d.yaml"
    path.write_text(f"root: {tmp_path / 'MOT17'}\ntrain: {{split: train_half, sequences: [MOT17-02]}}\n"
                    f"val: val_half\nextra_jde: [{{list: {list_file}, root: {tmp_path / 'jde'}}}]\n")
    config = load_data_config(path)
    assert not config.needs_generation and config.detector == "FRCNN"
    mot, jde = config.train_sources()
    assert mot.sequences == ("MOT17-02",) and mot.split == "train_half" and jde.list_file == list_file
    assert [s.name for s in config.val_sequences()] == ["MOT17-02-FRCNN", "MOT17-04-FRCNN"]
    data = MOTTrainDataset.from_sources(config.train_sources(), size=SIZE, augment=None)
    assert len(data) == 3 + 1 and data.num_ids == 2 + 1


@pytest.mark.parametrize("text, message", [
    ("root: {root}\ntrain: {{split: third}}\n", "train: unknown split 'third'"),
    ("root: {root}\nepochs: 3\n", "unknown key.*epochs"),
    ("root: {root}\ndetector: YOLO\n", "detector 'YOLO'"),
    ("detector: all\n", "missing key root"),
    ("root: {root}/nowhere\n", "nowhere is not a folder"),
    ("root: {root}\nextra_jde: [{{list: {root}/none.train}}]\n", r"extra_jde\[0\]\.list: .*none\.train does not exist"),
    ("root: {root}/x\nsynthetic: {{seqs: 2, frames: 0, width: 64, height: 64, seed: 0}}\n", r"synthetic\.frames"),
])
def test_bad_data_configs(tmp_path, text, message):
    path = tmp_path / "d.yaml"
    path.write_text(text.format(root=tmp_path))
    with pytest.raises(InputError, match=message):
        load_data_config(path)


def test_nested_key_typo_gets_did_you_mean(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text(f"root: {tmp_path}\ntrain: {{split: full, sequnces: [A]}}\n")
    with pytest.raises(InputError) as info:
        load_data_config(path)
    assert str(info.value) == f"{path}: train: unknown key 'sequnces' (did you mean 'sequences'?)"
    path.write_text(f"root: {tmp_path}\nsynthetic: {{seqs: 2, frame: 3, width: 64, height: 64, seed: 0}}\n")
    with pytest.raises(InputError, match=r"synthetic: unknown key 'frame' \(did you mean 'frames'\?\)$"):
        load_data_config(path)


def test_seqs_selects_a_subset_and_is_checked_before_training(tmp_path):
    for name in ("TUD-Campus", "TUD-Stadtmitte", "PETS09-S2L1"):
        write_sequence(tmp_path / "root", name, walking_gt(4), frames=4)
    path = tmp_path / "d.yaml"
    path.write_text(f"root: {tmp_path / 'root'}\ntrain: {{split: full, seqs: [TUD-Campus, PETS09-S2L1]}}\n"
                    f"val: {{split: full, seqs: TUD-Stadtmitte}}\n")
    config = load_data_config(path)
    config.check()
    assert config.train.sequences == ("TUD-Campus", "PETS09-S2L1")
    assert [s.name for s in config.val_sequences()] == ["TUD-Stadtmitte"]
    assert len(MOTTrainDataset.from_sources(config.train_sources(), size=SIZE, augment=None)) == 8
    path.write_text(f"root: {tmp_path / 'root'}\ntrain: {{seqs: [TUD-Campus, TUD-Stadmitte]}}\n")
    with pytest.raises(InputError) as info:
        load_data_config(path).check()
    assert str(info.value) == (f"{path}: train: unknown sequence 'TUD-Stadmitte' (did you mean 'TUD-Stadtmitte'?); "
                               "available: PETS09-S2L1, TUD-Campus, TUD-Stadtmitte")
    path.write_text(f"root: {tmp_path / 'root'}\nval: {{sequences: [TUD-Campus], seqs: [TUD-Campus]}}\n")
    with pytest.raises(InputError, match=r"d\.yaml: val: give sequences or seqs \(the same list\), not both$"):
        load_data_config(path)


@pytest.mark.parametrize("name, benchmark, problem", [
    ("TUD-Campus", "MOT17", "column 8 (class) holds -1 placeholders (MOT15-style gt)"),
    ("TUD-Stadtmitte", "MOT20", "columns 8-10 hold world coordinates, not class and visibility (MOT15-style gt)"),
    ("TUD-Campus", "MOT15", None), ("TUD-Stadtmitte", "mot15", None)])
def test_val_gt_is_checked_against_the_benchmark(tmp_path, name, benchmark, problem):
    seq = write_tud_sequence(tmp_path / "root", name, frames=4)
    path = tmp_path / "d.yaml"
    path.write_text(f"root: {tmp_path / 'root'}\nbenchmark: {benchmark}\nval: {{split: full, seqs: [{name}]}}\n")
    config = load_data_config(path)
    assert config.benchmark == benchmark.upper()
    if problem is None:
        config.check()
        return
    with pytest.raises(InputError) as info:
        config.check()
    assert str(info.value) == (f"{seq}/gt/gt.txt: {problem}, but {path} validates with benchmark {benchmark}: "
                               "set `benchmark: MOT15` in it")


def test_mot17_classes_under_the_mot15_benchmark_are_an_error(tmp_path):
    rows = walking_gt(4) + [(1, 9, 30, 5, 10, 20, 1, 7, 1.0), (2, 9, 30, 5, 10, 20, 1, 3, 1.0)]
    seq = write_sequence(tmp_path / "root", "MOT17-02", rows, frames=4)
    path = tmp_path / "d.yaml"
    path.write_text(f"root: {tmp_path / 'root'}\nbenchmark: MOT15\nval: {{split: full}}\n")
    with pytest.raises(InputError) as info:
        load_data_config(path).check()
    assert str(info.value) == (f"{seq}/gt/gt.txt: column 8 holds MOT16/17/20 classes other than pedestrians (3, 7), "
                               f"but {path} validates with benchmark MOT15: set `benchmark: MOT17` (or MOT20) in it")
    assert load_data_config({"root": str(tmp_path / "root")}).benchmark == "MOT17"  # the default
    with pytest.raises(InputError, match=r"^data config: benchmark 'MOT18' is not one of MOT15, MOT16, MOT17, MOT20$"):
        load_data_config({"root": str(tmp_path / "root"), "benchmark": "MOT18"})
