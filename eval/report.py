"""Print and save evaluation results: text table, JSON and CSV (atomic writes)."""
from __future__ import annotations

import csv
import io
import json
from pathlib import Path

from eval.evaluate import COUNT_KEYS, EvalResult
from mot_kd.utils.io import atomic_write_text

TABLE_COLUMNS = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "IDP", "IDR", "MT", "PT", "ML", "FP", "FN", "IDSW",
                 "Frag", "MOTP")


def _cell(key: str, value) -> str:
    return str(int(value)) if key in COUNT_KEYS else f"{100 * value:.3f}"


def format_table(result: EvalResult) -> str:
    """Per-sequence rows and COMBINED; ratios in percent like TrackEval's printout."""
    rows = [(name, metrics) for name, metrics in sorted(result.sequences.items())]
    rows.append(("COMBINED", result.combined))
    width = max(len(name) for name, _ in rows) + 2
    lines = [f"{'sequence':<{width}}" + "".join(f"{c:>9}" for c in TABLE_COLUMNS)]
    for name, metrics in rows:
        lines.append(f"{name:<{width}}" + "".join(f"{_cell(c, metrics[c]):>9}" for c in TABLE_COLUMNS))
    return "\n".join(lines)


def to_json_dict(result: EvalResult, protocol: dict, extra: dict | None = None) -> dict:
    return {"combined": result.combined, "sequences": result.sequences, "protocol": protocol, **(extra or {})}


def write_json(path: str | Path, result: EvalResult, protocol: dict, extra: dict | None = None) -> None:
    """``extra`` adds top-level keys (``fps`` and ``speed`` in ``--weights`` mode)."""
    atomic_write_text(path, json.dumps(to_json_dict(result, protocol, extra), indent=2) + "\n")


def write_csv(path: str | Path, result: EvalResult) -> None:
    keys = list(result.combined)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["sequence", *keys])
    for name, metrics in sorted(result.sequences.items()):
        writer.writerow([name, *(metrics[k] for k in keys)])
    writer.writerow(["COMBINED", *(result.combined[k] for k in keys)])
    atomic_write_text(path, buffer.getvalue())
