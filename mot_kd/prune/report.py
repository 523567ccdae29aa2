"""The prune job's summary: one Markdown table of the original and pruned models, and the per-step log."""
from __future__ import annotations

import torch


def _cell(value, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def summary_markdown(rows: list[dict], steps: list[dict], imgsz: tuple[int, int], device: torch.device) -> str:
    """Markdown: params, GFLOPs at ``imgsz``, tracking FPS on ``device``, IDF1/MOTA/HOTA per model; then steps."""
    lines = [f"| model | params (M) | GFLOPs @ {imgsz[0]}x{imgsz[1]} | tracking FPS ({device.type}) | IDF1 | MOTA "
             "| HOTA |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in rows:
        lines.append(f"| {r['model']} | {r['params'] / 1e6:.3f} | {r['gflops']:.4g} | {_cell(r['fps'], '.1f')} | "
                     f"{_cell(r['IDF1'], '.3f')} | {_cell(r['MOTA'], '.3f')} | {_cell(r['HOTA'], '.3f')} |")
    lines += ["", "| step | channel ratio removed | GFLOPs | w (seed importance) | w tried: validation fitness / "
              "output gap |", "| ---: | ---: | ---: | ---: | --- |"]
    for s in steps:
        tried = ", ".join(f"{w}: {_cell(f, '.3f')} / {s['w_output_gap'][w]:.4g}"
                          for w, f in s.get("w_fitness", {}).items()) or "-"
        lines.append(f"| {s['step']} | {s['ratio']:.3f} | {s['gflops']:.4g} | {_cell(s.get('w'), '.2f')} | {tried} |")
    return "\n".join(lines) + "\n"
