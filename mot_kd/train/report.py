"""Per-epoch results table (``results.csv``) and training-curves PNG."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mot_kd.utils.io import atomic_path, atomic_write_text  # noqa: E402


def write_results_csv(path: Path, rows: list[dict]) -> None:
    """Rewrite the whole table atomically (columns = union of keys, first-seen order)."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buffer.getvalue())


def read_results_csv(path: Path) -> list[dict]:
    if not path.is_file():
        return []
    with path.open() as handle:
        return [{k: _number(v) for k, v in row.items()} for row in csv.DictReader(handle)]


def _number(value: str):
    try:
        return int(value)
    except ValueError:
        try:
            return float(value)
        except ValueError:
            return value


def plot_curves(path: Path, rows: list[dict]) -> None:
    """One panel per loss part (train/*) and per validation metric (val/*), x = epoch."""
    keys = list(dict.fromkeys(k for row in rows for k in row if k.startswith(("train/", "val/"))))
    keys = [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in rows)]
    if not keys:
        return
    cols = min(4, len(keys))
    rows_n = (len(keys) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.6 * rows_n), squeeze=False)
    epochs = [r["epoch"] for r in rows]
    for ax, key in zip(axes.flat, keys):
        values = [r.get(key) if isinstance(r.get(key), (int, float)) else float("nan") for r in rows]
        ax.plot(epochs, values, marker="o", markersize=3)
        ax.set_title(key, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(keys):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
