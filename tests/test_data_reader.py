"""MOTChallenge/JDE readers: formats, MOT17 semantics, splits, identities, detector copies, bad input."""
from __future__ import annotations

from pathlib import Path

import motmetrics
import numpy as np
import pytest
from test_data_support import walking_gt, write_jde_set, write_sequence

from mot_kd.data.jde_labels import label_path, load_jde_set, offset_identities, read_jde_labels
from mot_kd.data.mot_files import read_mot_txt, read_seqinfo
from mot_kd.data.motchallenge import (Sequence, find_sequences, global_identities, read_gt, select_sequences,
                                      split_range, unique_by_gt)
from mot_kd.errors import InputError

TUD = Path(motmetrics.__file__).parent / "data"


def test_read_mot_txt_hand_written(tmp_path):
    path = tmp_path / "gt.txt"
    path.write_text("1,1,10,20,30,40,1,1,0.5\n\n2 2 1.5 2.5 3 4 0 7 1\n")
    data = read_mot_txt(path)
    assert data.shape == (2, 9)
    np.testing.assert_allclose(data[1], [2, 2, 1.5, 2.5, 3, 4, 0, 7, 1])
    path.write_text("")
    assert read_mot_txt(path).shape == (0, 6)


def test_read_gt_mot17_semantics(tmp_path):
    rows = [(1, 1, 0, 0, 10, 20, 1, 1, 0.9),   # pedestrian
            (1, 2, 5, 5, 10, 20, 0, 1, 1.0),   # pedestrian, consider flag off
            (2, 3, 5, 5, 10, 20, 1, 7, 1.0),   # static person (distractor)
            (2, 4, 5, 5, 10, 20, 1, 3, 0.1),   # car
            (3, 1, 1, 1, 10, 20, 1, -1, -1)]   # MOT15 placeholders: unknown class/visibility
    seq = Sequence(**{**read_seqinfo(write_sequence(tmp_path, "S", rows, frames=3)), "path": tmp_path / "S"})
    gt = read_gt(seq)
    np.testing.assert_array_equal(gt.frame, [1, 1, 2, 2, 3])
    np.testing.assert_array_equal(gt.cls, [1, 1, 7, 3, 1])
    np.testing.assert_array_equal(gt.consider, [True, False, True, True, True])
    np.testing.assert_allclose(gt.visibility, [0.9, 1.0, 1.0, 0.1, 1.0])
    np.testing.assert_array_equal(gt.pedestrians, [True, False, False, False, True])
    np.testing.assert_allclose(gt.tlwh[4], [1, 1, 10, 20])


def test_read_gt_six_columns_are_all_pedestrians(tmp_path):
    write_sequence(tmp_path, "S", [(1, 5, 0, 0, 4, 4), (2, 5, 1, 0, 4, 4)], frames=2)
    gt = read_gt(find_sequences(tmp_path / "S")[0])
    assert gt.pedestrians.all() and (gt.visibility == 1).all() and len(gt) == 2


@pytest.mark.filterwarnings("ignore::FutureWarning", "ignore::DeprecationWarning")
@pytest.mark.parametrize("name, ncols", [("TUD-Campus", 10), ("TUD-Stadtmitte", 10)])
def test_read_gt_tud_from_motmetrics_wheel(tmp_path, name, ncols):
    """MOT15 gt with -1 placeholders (Campus) and world coordinates (Stadtmitte) in columns 8-10."""
    source = TUD / name / "gt.txt"
    reference = motmetrics.io.loadtxt(str(source), fmt="mot15-2D")
    frames = int(reference.index.get_level_values("FrameId").max())
    seq_dir = write_sequence(tmp_path, name, None, frames=frames, size=(8, 8))
    (seq_dir / "gt").mkdir()
    (seq_dir / "gt" / "gt.txt").symlink_to(source)
    seq = find_sequences(seq_dir)[0]
    assert read_mot_txt(seq.gt_path).shape[1] == ncols
    gt = read_gt(seq)
    assert len(gt) == len(reference)
    assert gt.pedestrians.all() and (gt.visibility == 1.0).all()
    assert set(gt.track_id.tolist()) == set(reference.index.get_level_values("Id").astype(int).tolist())
    first = reference.loc[(1, int(gt.track_id[0]))]
    # motmetrics converts MOT's 1-based corner to 0-based on load
    np.testing.assert_allclose(gt.tlwh[0], [first["X"] + 1, first["Y"] + 1, first["Width"], first["Height"]])
    half = read_gt(seq, "val_half")
    assert half.frame.min() >= frames // 2 + 2 and half.frame.max() <= frames
    assert len(read_gt(seq, "train_half")) + len(half) == len(gt)


@pytest.mark.parametrize("length, train, val", [(10, (1, 6), (7, 10)), (7, (1, 4), (5, 7)),
                                                (600, (1, 301), (302, 600))])
def test_split_ranges(length, train, val):
    assert split_range(length, "full") == (1, length)
    assert split_range(length, "train_half") == train
    assert split_range(length, "val_half") == val


def test_read_gt_keeps_split_frames(tmp_path):
    seq = find_sequences(write_sequence(tmp_path, "S", walking_gt(10), frames=10))[0]
    assert sorted(set(read_gt(seq, "train_half").frame.tolist())) == list(range(1, 7))
    assert sorted(set(read_gt(seq, "val_half").frame.tolist())) == list(range(7, 11))


def test_global_identities_across_sequences(tmp_path):
    write_sequence(tmp_path, "B", walking_gt(3, ids=(7, 3)), frames=3)
    distractor = [(1, 9, 0, 0, 5, 5, 1, 7, 1.0)]
    write_sequence(tmp_path, "A", walking_gt(3, ids=(1, 4)) + distractor, frames=3)
    gts = {seq.name: read_gt(seq) for seq in find_sequences(tmp_path)}
    mapping = global_identities(gts)
    assert mapping == {("A", 1): 0, ("A", 4): 1, ("B", 3): 2, ("B", 7): 3}


def test_mot17_root_and_detector_copies(tmp_path):
    train = tmp_path / "MOT17" / "train"
    for det in ("DPM", "FRCNN", "SDP"):
        write_sequence(train, f"MOT17-02-{det}", walking_gt(4), frames=4)
    write_sequence(train, "MOT17-04-FRCNN", walking_gt(4), frames=4)
    (tmp_path / "MOT17" / "test").mkdir()
    assert [s.name for s in find_sequences(tmp_path / "MOT17")] == ["MOT17-02-FRCNN", "MOT17-04-FRCNN"]
    assert [s.name for s in find_sequences(tmp_path / "MOT17", "SDP")] == ["MOT17-02-SDP"]
    everything = find_sequences(tmp_path / "MOT17", "all")
    assert len(everything) == 4
    assert [s.name for s in unique_by_gt(everything)] == ["MOT17-02-DPM", "MOT17-04-FRCNN"]
    assert [s.name for s in select_sequences(unique_by_gt(everything), ["MOT17-04"])] == ["MOT17-04-FRCNN"]
    with pytest.raises(InputError, match="unknown sequence.*MOT17-09"):
        select_sequences(everything, ["MOT17-09"])
    with pytest.raises(InputError, match="no sequence of detector DPM"):
        find_sequences(train / "MOT17-04-FRCNN", "DPM")


def test_base_name_with_detector_all_selects_every_copy(tmp_path):
    train = tmp_path / "MOT17" / "train"
    for det in ("DPM", "FRCNN", "SDP"):
        write_sequence(train, f"MOT17-02-{det}", walking_gt(4), frames=4)
    write_sequence(train, "MOT17-04-FRCNN", walking_gt(4), frames=4)
    everything = find_sequences(tmp_path / "MOT17", "all")
    assert [s.name for s in select_sequences(everything, ["MOT17-02"])] == [
        "MOT17-02-DPM", "MOT17-02-FRCNN", "MOT17-02-SDP"]
    assert [s.name for s in select_sequences(everything, ["MOT17-02-SDP", "MOT17-02", "MOT17-04"])] == [
        "MOT17-02-DPM", "MOT17-02-FRCNN", "MOT17-02-SDP", "MOT17-04-FRCNN"]  # each once, in data-root order
    assert [s.name for s in select_sequences(find_sequences(tmp_path / "MOT17", "SDP"), ["MOT17-02"])] == [
        "MOT17-02-SDP"]

def test_jde_labels_reading_and_offsets(tmp_path):
    list_a = write_jde_set(tmp_path, "a", [[(0, 0, 0.5, 0.5, 0.2, 0.4), (0, 3, 0.2, 0.3, 0.1, 0.2)],
                                           [(0, -1, 0.7, 0.5, 0.1, 0.3)]])
    jde = load_jde_set(list_a, tmp_path)
    assert jde.name == "a" and len(jde) == 2 and jde.num_ids == 4
    assert label_path(jde.images[0]) == tmp_path / "labels_with_ids" / "a" / "000000.txt"
    np.testing.assert_allclose(jde.labels[0][1], [0, 3, 0.2, 0.3, 0.1, 0.2])
    shifted = offset_identities(jde.labels[1], 10)
    assert shifted[0, 1] == -1  # unknown identity stays unknown
    np.testing.assert_array_equal(offset_identities(jde.labels[0], 10)[:, 1], [10, 13])
    label_path(jde.images[1]).unlink()  # FairMOT: no label file means no people
    assert load_jde_set(list_a, tmp_path).labels[1].shape == (0, 6)


# ----------------------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("text, message", [
    ("1,1,0,0,5,5,1,1,1\n1,2,0,0,5\n", r"gt\.txt:2: expected 6-10 columns, got 5"),
    ("1,1,0,0,5,5\n1,2,0,0,5,5,1\n", r"gt\.txt:2: 7 columns but earlier lines have 6"),
    ("1,1,0,0,5,5\n\n2,x,0,0,5,5\n", r"gt\.txt:3: non-numeric"),
    ("1,1,0,0,5,5\n2,1,0,0,-5,5\n", r"gt\.txt:2: negative box width or height"),
    ("1,1,0,0,5,5\n2,1,0,nan,5,5\n", r"gt\.txt:2: NaN or infinite"),
    ("1,1,0,0,5,5\n0,1,0,0,5,5\n", r"gt\.txt:2: frame must be an integer >= 1"),
    ("1,1,0,0,5,5\n9,1,0,0,5,5\n", r"gt\.txt:2: frame outside 1\.\.3"),
    ("1,1,0,0,5,5,1,1,1\n1,2,0,0,5,5,1,1.5,1\n", r"gt\.txt:2: class \(column 8\)"),
    ("1,1,0,0,5,5,1,1,1\n1,2,0,0,5,5,1,1,1.7\n", r"gt\.txt:2: visibility \(column 9\)"),
])
def test_malformed_gt_names_file_and_line(tmp_path, text, message):
    seq = find_sequences(write_sequence(tmp_path, "S", text, frames=3))[0]
    with pytest.raises(InputError, match=message):
        read_gt(seq)


def test_missing_seqinfo(tmp_path):
    write_sequence(tmp_path, "A", walking_gt(2), frames=2)
    (tmp_path / "B").mkdir()
    with pytest.raises(InputError, match=r"B/seqinfo\.ini: missing seqinfo\.ini"):
        find_sequences(tmp_path)
    with pytest.raises(InputError, match=r"seqinfo\.ini: missing seqinfo\.ini"):
        read_seqinfo(tmp_path / "B")
    with pytest.raises(InputError, match="not a folder"):
        find_sequences(tmp_path / "nowhere")


def test_image_count_differs_from_seq_length(tmp_path):
    seq_dir = write_sequence(tmp_path, "S", walking_gt(3), frames=3)
    (seq_dir / "img1" / "000003.jpg").unlink()
    with pytest.raises(InputError, match=r"img1: 2 '\.jpg' images but seqinfo\.ini says seqLength=3"):
        find_sequences(seq_dir)[0].check_images()


def test_unknown_split(tmp_path):
    seq = find_sequences(write_sequence(tmp_path, "S", walking_gt(2), frames=2))[0]
    with pytest.raises(InputError, match="unknown split 'half'"):
        read_gt(seq, "half")


@pytest.mark.parametrize("row, message", [
    ("0 1 0.5 0.5 0.2", r"\.txt:1: expected 6-6 columns"),
    ("0 -2 0.5 0.5 0.2 0.2", r"\.txt:1: identity must be an integer >= -1"),
    ("0 1 0.5 0.5 0 0.2", r"\.txt:1: box width and height must be positive"),
    ("0 1 250 120 40 80", r"\.txt:1: box must be normalised"),
])
def test_malformed_jde_labels(tmp_path, row, message):
    path = tmp_path / "l.txt"
    path.write_text(row + "\n")
    with pytest.raises(InputError, match=message):
        read_jde_labels(path)


def test_bad_jde_lists(tmp_path):
    with pytest.raises(InputError, match="list file not found"):
        load_jde_set(tmp_path / "none.train")
    list_file = write_jde_set(tmp_path, "a", [[(0, 0, 0.5, 0.5, 0.2, 0.4)]])
    list_file.write_text("images/a/000000.jpg\nimages/a/missing.jpg\n")
    with pytest.raises(InputError, match=r"listed image .*missing\.jpg does not exist"):
        load_jde_set(list_file, tmp_path)
    with pytest.raises(InputError, match="no 'images' folder"):
        label_path(tmp_path / "pics" / "1.jpg")
