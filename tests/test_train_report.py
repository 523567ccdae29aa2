"""results.csv round trip and the curves.png panels: only real curves, one validation panel, epochs from 1."""
from __future__ import annotations

import pytest

from mot_kd.train.report import curve_panels, plot_curves, read_results_csv, write_results_csv


def _rows(epochs: int, validated: set[int]) -> list[dict]:
    rows = []
    for e in range(epochs):
        row = {"epoch": e, "train/loss": 10.0 - e, "train/box": 2.0 - 0.1 * e, "train/lr": 0.01, "time_s": 3.0}
        if e in validated:  # what the trainer writes: every public metric, counts as ints
            row.update({"val/IDF1": 0.5 + 0.1 * e, "val/MOTA": 0.4 + 0.1 * e, "val/HOTA": 0.3, "val/MT": 3,
                        "val/IDSW": 7, "val/DetA": 0.2, "val/fps": 25.0})
        rows.append(row)
    return rows


def test_every_epoch_validated_gives_train_panels_and_one_validation_panel(tmp_path):
    write_results_csv(tmp_path / "results.csv", _rows(3, {0, 1, 2}))
    panels = curve_panels(read_results_csv(tmp_path / "results.csv"))
    assert [title for title, _ in panels] == ["train/loss", "train/box", "train/lr", "validation (%)"]
    loss, validation = panels[0][1], panels[-1][1]
    assert loss == {"train/loss": ([1, 2, 3], [10.0, 9.0, 8.0])}  # epochs numbered from 1, like the logs
    assert list(validation) == ["IDF1", "MOTA", "HOTA"]
    assert validation["IDF1"][0] == [1, 2, 3] and validation["IDF1"][1] == pytest.approx([50.0, 60.0, 70.0])


def test_validation_only_after_the_last_epoch_gets_no_panel():
    assert [title for title, _ in curve_panels(_rows(4, {3}))] == ["train/loss", "train/box", "train/lr"]


def test_sparse_validation_plots_the_validated_epochs_only():
    validation = dict(curve_panels(_rows(6, {2, 5})))["validation (%)"]
    assert validation["MOTA"] == ([3, 6], pytest.approx([60.0, 90.0]))


def test_a_series_with_one_point_is_left_out():
    rows = _rows(3, set())
    rows[-1]["train/kd_erc"] = 0.5  # e.g. a loss that started in the last epoch
    assert "train/kd_erc" not in dict(curve_panels(rows))


def test_png_written_from_the_second_epoch_on(tmp_path):
    plot_curves(tmp_path / "one.png", _rows(1, {0}))
    assert not (tmp_path / "one.png").exists()
    plot_curves(tmp_path / "two.png", _rows(2, {0, 1}))
    assert (tmp_path / "two.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
