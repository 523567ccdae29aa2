"""The search's Pareto plot (GFLOPs vs IDF1): random candidates, searched ones, hand-designed references.

Why the references are drawn as their own points or, unscored, as vertical lines at their GFLOPs: the plot
must show what the search is compared with even before the references are trained and tracked.
"""
from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from mot_kd.utils.io import atomic_path  # noqa: E402


def pareto_front(records: list[dict]) -> list[dict]:
    """Records no other record beats on both fewer-or-equal GFLOPs and higher-or-equal IDF1 (one strictly)."""
    def dominated(r: dict) -> bool:
        return any(o["gflops"] <= r["gflops"] and o["IDF1"] >= r["IDF1"]
                   and (o["gflops"] < r["gflops"] or o["IDF1"] > r["IDF1"]) for o in records)

    return sorted((r for r in records if not dominated(r)), key=lambda r: r["gflops"])


def pareto_plot(records: list[dict], references: dict[str, dict], path: str | Path,
                budget_gflops: float | None = None, min_gflops: float | None = None) -> Path:
    """Write the PNG; ``references``: name -> {"gflops", optional "IDF1"} (e.g. yolov5n, yolov5s-ghost)."""
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for origin, style in (("random", dict(c="0.6", marker="o", s=18)), ("searched", dict(c="C0", marker="o", s=22))):
        pts = [r for r in records if (r["origin"] == "random") == (origin == "random")]
        if pts:
            ax.scatter([r["gflops"] for r in pts], [r["IDF1"] for r in pts], label=f"{origin} ({len(pts)})", **style)
    front = pareto_front(records)
    if front:
        ax.plot([r["gflops"] for r in front], [r["IDF1"] for r in front], c="C0", lw=1, label="Pareto front")
    for i, (name, ref) in enumerate(references.items()):
        color = f"C{i + 1}"
        if ref.get("IDF1") is None:
            ax.axvline(ref["gflops"], c=color, ls=":", label=f"{name} ({ref['gflops']:.2f} GFLOPs, not scored)")
        else:
            ax.scatter([ref["gflops"]], [ref["IDF1"]], c=color, marker="*", s=120, label=name)
    if budget_gflops is not None:
        ax.axvline(budget_gflops, c="k", ls="--", lw=0.8, label="budget")
    if min_gflops is not None:
        ax.axvline(min_gflops, c="k", ls="-.", lw=0.8, label="min_gflops")
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel("IDF1 (supernet weights, BN recalibrated)")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
