"""KD benchmark: teacher vs student vs distilled student (+ ablations, seeds) on synthetic train/tune/val sets.

``python -m mot_kd.bench --preset smoke|cpu|gpu --out runs/bench``; see docs/bench.md.
"""
from mot_kd.bench.presets import CONFIGURATIONS, Preset, load_preset
from mot_kd.bench.report import aggregate, gap_closed, mean_std

__all__ = ["CONFIGURATIONS", "Preset", "aggregate", "gap_closed", "load_preset", "main", "mean_std"]


def main(argv: list[str] | None = None) -> int:
    """The CLI (wrapped: bad input exits 2 with one line)."""
    from mot_kd.bench.cli import main as cli_main
    from mot_kd.errors import cli_entry

    return cli_entry(cli_main)(argv)
