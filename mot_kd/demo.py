"""``make demo``: the whole product on built-in synthetic data, sized for a 2-core CPU.

1. generate a small synthetic MOT set (configs/data/demo.yaml) on first use;
2. train a teacher (yolov5s), then a baseline student (yolov5n) and a distilled student (yolov5n +
   KDHooks with the three losses) with the same seed, schedule and data order;
3. track and evaluate the three on the held-out second half of every sequence;
4. print one table and write ``summary.json`` and ``summary.png`` to the output folder.

It demonstrates the pipeline end to end; with minutes of CPU training the models are weak and one seed
says little about the KD gain, which ``python -m mot_kd.bench`` measures. Like the training CLI this is a
composition root: it wires the trainer to the tracker and evaluator.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from loguru import logger  # noqa: E402

from eval.model_run import RunSettings, track_and_evaluate  # noqa: E402
from mot_kd.config import load_yaml  # noqa: E402
from mot_kd.data.data_config import load_data_config  # noqa: E402
from mot_kd.errors import cli_entry  # noqa: E402
from mot_kd.models import load_checkpoint, read_checkpoint  # noqa: E402
from mot_kd.models.info import model_card  # noqa: E402
from mot_kd.train import cli as train_cli  # noqa: E402
from mot_kd.train.report import read_results_csv  # noqa: E402
from mot_kd.utils.io import atomic_path, atomic_write_text  # noqa: E402

COLUMNS = ("IDF1", "MOTA", "MT", "HOTA", "IDSW")
CAVEAT = ("one seed and minutes of CPU training: the students' difference is not a measured KD gain, and the "
          "numbers change from one CPU type to another; `make bench` measures the gain")


def epochs_done(out: Path) -> int:
    return len(read_results_csv(out / "results.csv"))


def train(out: Path, epochs: int, extra: list[str]) -> Path:
    """Run the training CLI in-process unless this run already finished (an interrupted one resumes)."""
    best = out / "weights" / "best.pt"
    done = epochs_done(out)
    if done >= epochs and best.is_file():
        logger.info(f"{out}: already trained, reusing {best}")
        return best
    if done and (out / "weights" / "last.pt").is_file():
        argv = ["--resume", str(out), "--device", "cpu"]
    else:
        argv = ["--data", "demo", "--hyp", "demo", "--epochs", str(epochs), "--out", str(out), "--exist-ok",
                "--device", "cpu", *extra]
    logger.info("python -m mot_kd.train " + " ".join(argv))
    train_cli.main(argv)
    return best


def training_costs(teacher_epochs: int, student_epochs: int) -> list[float]:
    """Relative cost of the three trainings: epochs x seconds per step measured by the CPU bench
    (configs/bench/cpu.yaml ``cost``: the demo's 320x192 input and batch 8; a KD step adds a teacher forward).
    Only the ratios matter: the ETA scales them by the time the finished trainings really took here. They are
    approximate (the bench timed the teacher on 2 threads, the students on 1 beside another run)."""
    cost = load_yaml("cpu", "bench")["cost"]
    step = cost["train_step_s"]
    return [teacher_epochs * step["yolov5s"], student_epochs * step["yolov5n"],
            student_epochs * (step["yolov5n"] + cost["teacher_forward_s"])]


def format_duration(seconds: float) -> str:
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


def progress_line(k: int, total: int, label: str, remaining: float, measured: list[tuple[float, float]]) -> str:
    """``[k/total] label`` and the ETA of the trainings left (this one included, ``remaining`` cost units):
    the seconds per cost unit of what was trained so far (``measured``: (cost units, seconds) pairs)."""
    units, seconds = sum(u for u, _ in measured), sum(s for _, s in measured)
    if units <= 0:
        return f"[{k}/{total}] {label} (ETA once a training is timed)"
    return f"[{k}/{total}] {label} (ETA of the trainings left: {format_duration(remaining * seconds / units)})"


def train_all(out: Path, teacher_epochs: int, student_epochs: int) -> dict[str, Path]:
    """The three trainings in order, each announced as ``[k/3]`` with the ETA of the trainings left."""
    stages = [("teacher", "teacher yolov5s", teacher_epochs, ["--model", "yolov5s"]),
              ("student", "student yolov5n", student_epochs, ["--model", "yolov5n"]),
              ("kd_student", "KD student yolov5n", student_epochs, ["--student", "yolov5n", "--kd", "default"])]
    costs = training_costs(teacher_epochs, student_epochs)
    left = [cost * max(0.0, 1 - epochs_done(out / folder) / epochs)  # a resumed training has less to go
            for cost, (folder, _, epochs, _) in zip(costs, stages)]
    measured, trained = [], {}
    for k, (folder, label, epochs, extra) in enumerate(stages, 1):
        logger.info(progress_line(k, len(stages), f"{label}, {epochs} epochs", sum(left[k - 1:]), measured))
        if folder == "kd_student":
            extra = ["--teacher", str(trained["teacher"]), *extra]
        began = time.perf_counter()
        trained[folder] = train(out / folder, epochs, extra)
        if left[k - 1] > 0:
            measured.append((left[k - 1], time.perf_counter() - began))
    return trained


def evaluate(weights: Path, data, imgsz: tuple[int, int], out: Path) -> dict:
    model = load_checkpoint(weights)
    result, _, speed = track_and_evaluate(model, data.root, out / "results" / weights.parent.parent.name,
                                          data.val.split, data.detector, None, RunSettings(imgsz=imgsz))
    card = model_card(model, imgsz)
    row = {k: result.combined[k] for k in COLUMNS}
    return {**row, "params_M": card["params"] / 1e6, "GFLOPs": card["gflops"], "FPS": speed["fps"],
            "weights": str(weights)}


def format_table(rows: dict[str, dict]) -> str:
    header = "| model | params (M) | GFLOPs | IDF1 | MOTA | MT | HOTA | IDSW | FPS |"
    lines = [header, "|" + " --- |" * 9]
    for name, r in rows.items():
        lines.append(f"| {name} | {r['params_M']:.2f} | {r['GFLOPs']:.2f} | {100 * r['IDF1']:.1f} | "
                     f"{100 * r['MOTA']:.1f} | {r['MT']} | {100 * r['HOTA']:.1f} | {r['IDSW']} | {r['FPS']:.1f} |")
    return "\n".join(lines)


def plot(rows: dict[str, dict], path: Path) -> None:
    metrics = ("IDF1", "MOTA", "HOTA")
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.8 / len(rows)
    for i, (name, r) in enumerate(rows.items()):
        xs = [m + (i - (len(rows) - 1) / 2) * width for m in range(len(metrics))]
        bars = ax.bar(xs, [100 * r[m] for m in metrics], width, label=name)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.set_xticks(range(len(metrics)), metrics)
    ax.set_ylabel("% (validation half)")
    ax.set_title("mot-kd demo: teacher vs student vs distilled student\n(one seed, minutes of training: "
                 "not a KD measurement)", fontsize=9)
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=len(rows), frameon=False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mot_kd.demo", description=__doc__.splitlines()[0])
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--teacher-epochs", type=int, default=12)
    p.add_argument("--student-epochs", type=int, default=12)
    args = p.parse_args(argv)
    out, start = Path(args.out), time.perf_counter()
    trained = train_all(out, args.teacher_epochs, args.student_epochs)
    teacher, student, distilled = trained["teacher"], trained["student"], trained["kd_student"]
    logger.info(f"trainings done in {format_duration(time.perf_counter() - start)}; tracking and evaluating")
    data = load_data_config("demo")
    imgsz = tuple(read_checkpoint(teacher)["meta"]["imgsz"])
    rows = {name: evaluate(weights, data, imgsz, out) for name, weights in
            [("teacher yolov5s", teacher), ("student yolov5n", student), ("KD student yolov5n", distilled)]}
    table = format_table(rows)
    print(table)
    print(f"\nNote: {CAVEAT}.")
    summary = {"models": rows, "table_markdown": table, "note": CAVEAT, "data": str(data.root), "split": data.val.split,
               "imgsz": list(imgsz), "wall_s": time.perf_counter() - start}
    atomic_write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot(rows, out / "summary.png")
    logger.info(f"wrote {out / 'summary.json'} and {out / 'summary.png'} ({summary['wall_s']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
