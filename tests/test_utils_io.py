"""Atomic writes: outputs get the modes a plain open()/mkdir would give (umask respected), never tempfile's
private 0600/0700; nothing half-written on error."""
from __future__ import annotations

import os
import stat

import numpy as np
import pytest

from mot_kd.data.synthetic import generate_dataset
from mot_kd.utils.io import atomic_dir, atomic_path, atomic_write_text
from trackers.visualize import TrackRenderer


def _mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.fixture
def umask():
    """Set a umask for one test and restore the previous one."""
    previous = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(previous)


@pytest.mark.parametrize("mask, file_mode, dir_mode", [(0o022, 0o644, 0o755), (0o027, 0o640, 0o750),
                                                       (0o077, 0o600, 0o700)])
def test_modes_follow_the_umask_like_open_and_mkdir(tmp_path, umask, mask, file_mode, dir_mode):
    umask(mask)
    atomic_write_text(tmp_path / "a.txt", "x")
    with atomic_dir(tmp_path / "folder") as tmp:
        (tmp / "inside.txt").write_text("y")
    (tmp_path / "plain").mkdir()
    assert _mode(tmp_path / "a.txt") == file_mode
    assert _mode(tmp_path / "folder") == dir_mode == _mode(tmp_path / "plain")
    assert (tmp_path / "folder" / "inside.txt").read_text() == "y"


def test_error_leaves_nothing_and_keeps_the_old_result(tmp_path):
    atomic_write_text(tmp_path / "a.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(tmp_path / "a.txt") as tmp:
            tmp.write_text("half")
            raise RuntimeError
    with pytest.raises(RuntimeError):
        with atomic_dir(tmp_path / "folder") as tmp:
            (tmp / "x").write_text("half")
            raise RuntimeError
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]
    assert (tmp_path / "a.txt").read_text() == "old"


def test_temporary_names_are_unique_and_hidden(tmp_path):
    with atomic_path(tmp_path / "a.txt") as one, atomic_path(tmp_path / "a.txt") as two:
        assert one != two and one.name.startswith(".a.txt.") and one.name.endswith(".tmp")
        one.write_text("first")
        two.write_text("second")
    assert (tmp_path / "a.txt").read_text() == "first"  # the last one to finish wins
    assert [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_rendered_png_folder_and_synthetic_set_are_0755(tmp_path, umask):
    umask(0o022)
    with TrackRenderer(tmp_path / "frames", fps=10) as renderer:
        renderer.write(np.zeros((32, 48, 3), np.uint8), [1], [[2, 2, 10, 20]], frame=1)
    assert _mode(tmp_path / "frames") == 0o755
    assert _mode(tmp_path / "frames" / "000001.png") == 0o644
    [seq] = generate_dataset(tmp_path / "syn", 1, 2, 160, 96, progress=False)
    assert _mode(tmp_path / "syn") == _mode(seq) == _mode(seq / "img1") == 0o755
    assert _mode(seq / "gt" / "gt.txt") == 0o644
