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


VAL_HEADLINE = ("IDF1", "MOTA", "HOTA")  # ratios in [0, 1], drawn together as % in one validation panel

Curve = tuple[list[int], list[float]]  # epochs (numbered from 1, as the logs say "epoch 12/12"), values


def _curve(rows: list[dict], key: str, scale: float = 1.0) -> Curve:
    points = [(int(r["epoch"]) + 1, scale * float(r[key])) for r in rows
              if isinstance(r.get(key), (int, float)) and not isinstance(r.get(key), bool)]
    return [e for e, _ in points], [v for _, v in points]


def curve_panels(rows: list[dict]) -> list[tuple[str, dict[str, Curve]]]:
    """The panels to draw, as (title, {label: curve}): one per train/* series and one "validation (%)" panel
    for the headline metrics. Only series with more than one point are curves: a metric validated once (e.g.
    only after the last epoch) stays in results.csv instead of spending a panel on a dot."""
    keys = list(dict.fromkeys(k for row in rows for k in row))
    panels = [(k, {k: _curve(rows, k)}) for k in keys if k.startswith("train/")]
    panels.append(("validation (%)", {m: _curve(rows, f"val/{m}", 100.0) for m in VAL_HEADLINE}))
    panels = [(title, {label: c for label, c in curves.items() if len(c[0]) > 1}) for title, curves in panels]
    return [(title, curves) for title, curves in panels if curves]


def plot_curves(path: Path, rows: list[dict]) -> None:
    """Training curves PNG (panels from :func:`curve_panels`); nothing is written before there is a curve."""
    panels = curve_panels(rows)
    if not panels:
        return
    cols = min(4, len(panels))
    rows_n = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.2 * cols, 2.6 * rows_n), squeeze=False)
    last = max(int(r["epoch"]) + 1 for r in rows)
    for ax, (title, curves) in zip(axes.flat, panels):
        for label, (epochs, values) in curves.items():
            ax.plot(epochs, values, marker="o", markersize=3, label=label)
        if len(curves) > 1 or title.startswith("validation"):
            ax.legend(fontsize=7)
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("epoch", fontsize=8)
        ax.set_xlim(0.5, last + 0.5)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110, format="png")
    plt.close(fig)
