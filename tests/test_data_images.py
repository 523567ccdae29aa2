"""The shared image reader: complete images decode as with cv2.imread; a JPEG cut short is an error naming the
file in training, tracking and evaluation (OpenCV alone returns the partly decoded picture)."""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from test_data_support import walking_gt, write_sequence

from mot_kd.data.dataset import MOTSource, MOTTrainDataset
from mot_kd.data.images import jpeg_complete, read_image
from mot_kd.errors import InputError


def noise_image(path: Path, params: tuple = (), size=(64, 32)) -> bytes:
    image = cv2.GaussianBlur(np.random.default_rng(0).integers(0, 255, (size[1], size[0], 3), dtype=np.uint8),
                             (0, 0), 1)
    assert cv2.imwrite(str(path), image, list(params))
    return path.read_bytes()


def truncate(path: Path, keep: float = 0.6) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


@pytest.mark.parametrize("name, params", [("a.jpg", ()), ("p.jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1)),
                                          ("r.jpg", (cv2.IMWRITE_JPEG_RST_INTERVAL, 1)), ("a.png", ())])
def test_complete_images_read_as_cv2_does(tmp_path, name, params):
    path = tmp_path / name
    noise_image(path, params)
    np.testing.assert_array_equal(read_image(path), cv2.imread(str(path), cv2.IMREAD_COLOR))


def test_trailing_bytes_after_a_complete_jpeg_are_accepted(tmp_path):
    """Some cameras pad files after the end-of-image marker; libjpeg ignores the padding, and so do we."""
    path = tmp_path / "padded.jpg"
    data = noise_image(path)
    path.write_bytes(data + b"\x00" * 64 + b"\xff\xd8junk")
    assert read_image(path).shape == (32, 64, 3)


@pytest.mark.parametrize("name, params, partial", [("a.jpg", (), True),
                                                   ("p.jpg", (cv2.IMWRITE_JPEG_PROGRESSIVE, 1), False)])
def test_truncated_jpeg_is_an_error_naming_the_file(tmp_path, name, params, partial):
    path = tmp_path / name
    noise_image(path, params)
    truncate(path)
    assert (cv2.imread(str(path)) is not None) == partial  # OpenCV alone: a baseline JPEG decodes partly, no error
    assert not jpeg_complete(path.read_bytes())
    with pytest.raises(InputError) as info:
        read_image(path)
    assert str(info.value) == (f"{path}: truncated JPEG (the file ends before its end-of-image marker, so only "
                               "part of the picture would decode): copy or extract it again")


@pytest.mark.parametrize("content, reason", [(None, "no such file"), (b"", "empty, damaged or not an image"),
                                             (b"hello", "empty, damaged or not an image")])
def test_missing_or_undecodable_files(tmp_path, content, reason):
    path = tmp_path / "x.png"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(InputError) as info:
        read_image(path)
    assert str(info.value) == f"{path}: missing or unreadable image ({reason})"


def test_truncated_png_is_an_error(tmp_path):
    path = tmp_path / "a.png"
    noise_image(path)
    truncate(path)
    with pytest.raises(InputError, match=r"a\.png: missing or unreadable image"):
        read_image(path)


def test_tracking_and_evaluation_frames_refuse_a_truncated_jpeg(tmp_path):
    """trackers.frames reads every frame of tracking and of eval.mot17 --weights / training validation."""
    from trackers.frames import open_source

    seq = write_sequence(tmp_path, "S", walking_gt(3), frames=3)
    truncate(seq / "img1" / "000002.jpg", 0.5)
    frames = iter(open_source(seq))
    assert next(frames)[0] == 1
    with pytest.raises(InputError, match=r"S/img1/000002\.jpg: truncated JPEG"):
        next(frames)


def test_training_dataset_refuses_a_truncated_jpeg(tmp_path):
    seq = write_sequence(tmp_path, "S", walking_gt(2), frames=2)
    truncate(seq / "img1" / "000001.jpg", 0.5)
    data = MOTTrainDataset.from_sources([MOTSource(tmp_path, "full")], size=(64, 64), augment=None)
    assert data[1][0].shape == (3, 64, 64)
    with pytest.raises(InputError, match=r"S/img1/000001\.jpg: truncated JPEG"):
        data[0]
