"""The prune benchmark: the KD bench's yolov5s teacher pruned to FLOPs targets, with and without KD recovery,
seed importance against BN scale, and the KD bench's yolov5n (trained from scratch, without and with KD).

``python -m mot_kd.prune.bench --preset cpu --out runs/prune_bench [--plan]`` reads ``configs/prune/<preset>``.
It starts from a finished KD bench folder (``from_bench``, e.g. ``runs/bench`` of ``make bench``): its data
(train TRAIN-*, choose best.pt and ``w`` on TUNE-*, report on VAL-*), its teacher and its yolov5n students
(same data, hyper-parameters and seeds: a fair from-scratch reference). Every run goes to its own
folder and is skipped when already finished, so a killed bench continues where it stopped. ``--plan`` prints
the runs and the cost model's estimate and exits.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import yaml
from loguru import logger

from mot_kd.config import check_keys, load_yaml, resolve_config
from mot_kd.errors import InputError, cli_entry
from mot_kd.models import load_checkpoint, read_checkpoint
from mot_kd.prune.finetune import FineTune
from mot_kd.prune.importance import KINDS
from mot_kd.prune.pipeline import PruneJob, check_target, run_prune
from mot_kd.prune.structure import gflops
from mot_kd.train.settings import resolve_settings
from mot_kd.utils.io import atomic_write_text

KEYS = {"description", "from_bench", "hyp", "targets", "steps", "sparsity_epochs", "sparsity", "epochs", "kd_epochs",
        "seeds", "scratch", "cost"}
COST_KEYS = {"train_step_s", "teacher_forward_s", "track_fps", "steps_per_epoch", "tune_frames", "val_frames",
             "prune_s"}
METRICS = ("IDF1", "MOTA", "HOTA")


def load_preset(name: str) -> dict:
    preset = load_yaml(name, "prune")
    check_keys(preset, KEYS, f"prune preset {name}")
    missing = sorted(KEYS - {"description"} - set(preset))
    if missing:
        raise InputError(f"prune preset {name}: missing {', '.join(missing)}")
    check_keys(preset["cost"], COST_KEYS, f"prune preset {name}: cost")
    check_keys(preset["scratch"], {"model", "runs"}, f"prune preset {name}: scratch")
    for target, kinds in preset["targets"].items():
        check_target(target)
        for kind in kinds:
            if kind not in KINDS:
                raise InputError(f"prune preset {name}: targets {target}: importance {kind!r} is not one of "
                                 f"{', '.join(KINDS)}")
    return preset


def plan(preset: dict, out: Path) -> list[dict]:
    """Seed-major runs: sparsity training (shared by the seed's prune jobs), the (target, importance) prune jobs,
    then the evaluation of the KD bench's scratch-trained model without and with KD."""
    runs = []
    for seed in preset["seeds"]:
        if preset["sparsity_epochs"]:
            runs.append({"kind": "sparsity", "seed": seed, "out": out / "sparsity" / f"seed{seed}"})
        runs += [{"kind": "prune", "target": t, "importance": imp, "seed": seed,
                  "out": out / f"flops{t:g}" / imp / f"seed{seed}"}
                 for t, kinds in preset["targets"].items() for imp in kinds]
        runs += [{"kind": "scratch", "variant": variant, "seed": seed, "out": out / "scratch" / variant / f"seed{seed}",
                  "weights": Path(preset["from_bench"]) / "runs" / preset["scratch"]["model"] / conf / f"seed{seed}"
                  / "weights" / "last_student.pt"}
                 for variant, conf in preset["scratch"]["runs"].items()]
    return runs


def estimate_s(preset: dict, run: dict) -> float:
    """Seconds for one run: train steps, validations (tune set), pruning and the final evaluations (val set)."""
    c = preset["cost"]
    step, spe = c["train_step_s"], c["steps_per_epoch"]
    tune_s = c["tune_frames"] / c["track_fps"]["pruned"]
    if run["kind"] == "sparsity":
        return preset["sparsity_epochs"] * (spe * step["teacher"] + tune_s)
    if run["kind"] == "scratch":  # trained by the KD bench: evaluation only
        return c["val_frames"] / c["track_fps"][preset["scratch"]["model"]]
    pruned_step, k = step[f"pruned_{run['target']:g}"], preset["steps"]
    train = spe * ((k - 1) * preset["epochs"] * pruned_step
                   + preset["kd_epochs"] * (2 * pruned_step + c["teacher_forward_s"]))
    epochs = (k - 1) * preset["epochs"] + 2 * preset["kd_epochs"]
    validations = epochs + (3 * k if run["importance"] == "seed" else 0) + 3  # + w choices + the summary
    return train + validations * tune_s + k * c["prune_s"] + 2 * c["val_frames"] / c["track_fps"]["pruned"]


def bench_paths(preset: dict) -> tuple[Path, Path, list[str]]:
    """(teacher checkpoint, data config, VAL sequence names) of the KD bench folder ``from_bench``."""
    root = Path(preset["from_bench"])
    teacher, data = root / "runs" / "teacher" / "weights" / "best.pt", root / "configs" / "data.yaml"
    val = sorted(p.name for p in (root / "data").glob("VAL-*") if p.is_dir())
    if not teacher.is_file() or not data.is_file() or not val:
        raise InputError(f"from_bench {root}: no finished KD bench there (needs {teacher}, {data} and data/VAL-*); "
                         f"run `python -m mot_kd.bench --preset cpu --out {root}` first")
    return teacher, data, val


def execute(preset: dict, run: dict, teacher: Path, data: Path, val: list[str]) -> dict:
    """Train/prune one run unless finished; its VAL scores per variant (cached in ``run/val.json``)."""
    from eval.model_run import RunSettings, track_and_evaluate

    out, seed = run["out"], run["seed"]
    done = out / "val.json"
    if done.is_file():
        return json.loads(done.read_text())
    settings = resolve_settings(None, {"seed": seed}, [f"{k}={json.dumps(v)}" for k, v in preset["hyp"].items()])
    sparse = out.parents[2] / "sparsity" / f"seed{seed}" / "train" / "weights" / "best.pt"
    if run["kind"] == "sparsity":
        FineTune("sparsity", str(data), settings, "cpu")(teacher, out / "train", preset["sparsity_epochs"],
                                                          sparsity=preset["sparsity"])
        models = {}
    elif run["kind"] == "prune":
        run_prune(PruneJob(weights=sparse if preset["sparsity_epochs"] else teacher, teacher=teacher, data=str(data),
                           target=run["target"], out=out / "prune", settings=settings, steps=preset["steps"],
                           importance=run["importance"], epochs=preset["epochs"], kd_epochs=preset["kd_epochs"],
                           kd=str(resolve_config("default", "kd").resolve())))
        models = {"no KD": out / "prune" / "pruned_no_kd.pt", "KD": out / "prune" / "pruned.pt"}
    else:
        models = {run["variant"]: run["weights"]}
    scores = {}
    for name, path in models.items():
        model = load_checkpoint(path)
        result, _, speed = track_and_evaluate(model, Path(preset["from_bench"]) / "data", out / "val" / name, "full",
                                              "all", val, RunSettings(tuple(settings["imgsz"]), settings["conf"],
                                                                      settings["iou"], settings["tracker"]))
        scores[name] = {**{k: result.combined[k] for k in METRICS}, "fps": speed["fps"],
                        "gflops": gflops(model, tuple(settings["imgsz"]))}
    atomic_write_text(done, json.dumps(scores, indent=2))
    return scores


def report(preset: dict, results: list[tuple[dict, dict]], out: Path, teacher: str) -> str:
    """Mean ± std over seeds per configuration, as Markdown; also ``out/results.png`` (IDF1 vs GFLOPs)."""
    groups: dict[str, list[dict]] = {}
    for run, scores in results:
        for variant, s in scores.items():
            label = (f"{teacher} pruned to {run['target']:g} FLOPs, {run['importance']} importance, {variant}"
                     if run["kind"] == "prune" else f"{preset['scratch']['model']} from scratch, {variant}")
            groups.setdefault(label, []).append(s)
    lines = ["| model | seeds | GFLOPs | tracking FPS | " + " | ".join(METRICS) + " |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in METRICS) + " |"]
    for label, rows in groups.items():
        cells = [_mean_std([r[k] for r in rows]) for k in METRICS]
        lines.append(f"| {label} | {len(rows)} | {statistics.mean(r['gflops'] for r in rows):.3f} | "
                     f"{statistics.mean(r['fps'] for r in rows):.1f} | " + " | ".join(cells) + " |")
    _plot(groups, out / "results.png")
    return "\n".join(lines) + "\n"


def _mean_std(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f}" + (f" ± {statistics.stdev(values):.3f}" if len(values) > 1 else "")


def _plot(groups: dict[str, list[dict]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for label, rows in groups.items():
        ax.errorbar(statistics.mean(r["gflops"] for r in rows), statistics.mean(r["IDF1"] for r in rows),
                    yerr=statistics.stdev(r["IDF1"] for r in rows) if len(rows) > 1 else 0, fmt="o", label=label)
    ax.set_xlabel("GFLOPs")
    ax.set_ylabel("IDF1 (val)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mot_kd.prune.bench", description=__doc__.splitlines()[0])
    p.add_argument("--preset", default="cpu", help="configs/prune/<name>.yaml or a YAML path")
    p.add_argument("--out", default="runs/prune_bench")
    p.add_argument("--plan", action="store_true", help="print the runs and the estimated time, run nothing")
    args = p.parse_args(argv)
    preset, out = load_preset(args.preset), Path(args.out)
    runs = plan(preset, out)
    total = sum(estimate_s(preset, r) for r in runs)
    for r in runs:
        logger.info(f"{r['out']}: ~{estimate_s(preset, r) / 60:.0f} min")
    print(f"{len(runs)} runs, estimated {total / 3600:.1f} h ({args.preset})")
    if args.plan:
        return 0
    teacher, data, val = bench_paths(preset)
    results = [(r, execute(preset, r, teacher, data, val)) for r in runs]
    table = report(preset, results, out, str(read_checkpoint(teacher)["arch"].get("name")))
    atomic_write_text(out / "results.md", table)
    atomic_write_text(out / "results.yaml", yaml.safe_dump([{**{k: str(v) for k, v in r.items()}, "scores": s}
                                                            for r, s in results], sort_keys=False))
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
