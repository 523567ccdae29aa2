"""The prune benchmark: the KD bench's yolov5s teacher pruned to FLOPs targets, with and without KD recovery,
seed importance against BN scale, and the KD bench's yolov5n (trained from scratch, without and with KD).

``python -m mot_kd.prune.bench --preset cpu_equal --out runs/prune_bench_equal [--jobs 2] [--plan]`` reads
``configs/prune/<preset>``. It starts from a finished KD bench folder (``from_bench``, e.g. ``runs/bench_equal``
of ``python -m mot_kd.bench --preset cpu_equal``): its data (train TRAIN-*, choose best.pt and ``w`` on TUNE-*,
report on VAL-*), its settings as it ran (``configs/hyp.yaml``: hyper-parameters, detection thresholds, tracker;
the preset only states fine-tune overrides), its teacher, its KD config and its yolov5n runs (same data,
settings and seeds: a fair from-scratch reference). Every run goes to its own folder and is skipped when
already finished, so a killed bench continues where it stopped. ``--plan`` prints the runs and the cost
model's estimate and exits.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import numpy as np
import torch
import yaml
from loguru import logger
from tqdm import tqdm

from mot_kd.bench.parallel import threads_per_job
from mot_kd.config import check_keys, load_extended, load_yaml, resolve_config
from mot_kd.errors import InputError, cli_entry
from mot_kd.launch import LocalLauncher, Task
from mot_kd.launch.worker import run_logged
from mot_kd.models import load_checkpoint, read_checkpoint
from mot_kd.prune.bench_folder import KDBench, open_bench
from mot_kd.prune.finetune import FineTune
from mot_kd.prune.importance import KINDS
from mot_kd.prune.pipeline import PruneJob, check_target, run_prune
from mot_kd.prune.structure import gflops
from mot_kd.utils.io import atomic_write_text

KEYS = {"description", "from_bench", "bench_preset", "finetune", "targets", "steps", "sparsity_epochs",
        "sparsity", "epochs", "kd_epochs", "kd_configuration", "seeds", "scratch", "cost"}
COST_KEYS = {"train_step_s", "teacher_forward_s", "track_fps", "steps_per_epoch", "tune_frames", "val_frames",
             "prune_s"}
# Set by the prune preset's own keys (epochs, seeds) or fixed by the KD bench (what every model is evaluated with).
NOT_OVERRIDDEN = {"epochs", "seed", "imgsz", "conf", "iou", "tracker"}
METRICS = ("IDF1", "MOTA", "HOTA")


def load_preset(name: str) -> dict:
    """A prune preset; ``extends: BASE`` (chained) takes BASE's keys with this file's merged over them
    (``config.load_extended``; ``finetune`` is a settings section, where null is a value)."""
    path = resolve_config(name, "prune")
    preset = load_extended(path, "prune", ("finetune",))
    check_keys(preset, KEYS, f"prune preset {name}")
    cost = preset.get("cost", {})  # missing: named with the other missing keys below, not a KeyError
    check_keys(cost, COST_KEYS, f"prune preset {name}: cost")
    missing = sorted(KEYS - {"description"} - set(preset))
    missing += [f"cost.{k}" for k in sorted(COST_KEYS - set(cost))] if "cost" in preset else []
    if missing:
        raise InputError(f"prune preset {name}: missing {', '.join(missing)}")
    check_keys(preset["scratch"], {"model", "runs"}, f"prune preset {name}: scratch")
    known = set(load_yaml("default", "train")) - NOT_OVERRIDDEN
    for key in preset["finetune"]:
        if key in NOT_OVERRIDDEN:
            raise InputError(f"prune preset {name}: finetune: {key} is not a fine-tune override (epochs and seeds are "
                             "the preset's own keys; imgsz, conf, iou and tracker are the KD bench's)")
    check_keys(preset["finetune"], known, f"prune preset {name}: finetune")
    for target, kinds in preset["targets"].items():
        check_target(target)
        for kind in kinds:
            if kind not in KINDS:
                raise InputError(f"prune preset {name}: targets {target}: importance {kind!r} is not one of "
                                 f"{', '.join(KINDS)}")
    steps, fps = preset["cost"]["train_step_s"], preset["cost"]["track_fps"]
    if 1.0 not in steps or not all(0 < f <= 1 for f in steps):
        raise InputError(f"prune preset {name}: cost.train_step_s: expected {{FLOPs fraction in (0, 1]: seconds}} "
                         f"with the unpruned teacher at 1.0, got {steps}")
    for model in ("teacher", "pruned", preset["scratch"]["model"]):
        if model not in fps:
            raise InputError(f"prune preset {name}: cost.track_fps: no entry for {model}")
    return {**preset, "name": path.stem, "path": str(path)}


def plan(preset: dict, out: Path) -> list[dict]:
    """Seed-major runs: sparsity training (shared by the seed's prune jobs), the (target, importance) prune jobs and
    the evaluation of the KD bench's scratch-trained models without and with KD; then the unpruned teacher's."""
    runs = []
    for seed in preset["seeds"]:
        if preset["sparsity_epochs"]:
            runs.append({"kind": "sparsity", "seed": seed, "out": out / "sparsity" / f"seed{seed}"})
        runs += [{"kind": "prune", "target": t, "importance": imp, "seed": seed,
                  "out": out / f"flops{t:g}" / imp / f"seed{seed}"}
                 for t, kinds in preset["targets"].items() for imp in kinds]
        runs += [{"kind": "scratch", "variant": variant, "configuration": conf, "seed": seed,
                  "out": out / "scratch" / conf / f"seed{seed}"}
                 for variant, conf in preset["scratch"]["runs"].items()]
    return runs + [{"kind": "original", "seed": preset["seeds"][0], "out": out / "original"}]


def _validations(preset: dict, epochs: int) -> int:
    """Validations of one fine-tune (after every ``val_interval``-th and the last epoch; without the override,
    every epoch: an upper bound, the KD bench's interval being unknown before it has run)."""
    interval = preset["finetune"].get("val_interval", 1)
    return len({e for e in range(epochs) if (e + 1) % interval == 0 or e == epochs - 1})


def estimate_s(preset: dict, run: dict) -> float:
    """Seconds for one run with one torch thread beside another run: train steps (step time interpolated in the
    model's FLOPs fraction), validations (tune set), pruning and the final evaluations (val set)."""
    c = preset["cost"]
    fps, tune = c["track_fps"], c["tune_frames"]
    points = sorted(c["train_step_s"].items())

    def train(epochs: int, fraction: float, kd: bool = False) -> float:
        step = float(np.interp(fraction, [f for f, _ in points], [s for _, s in points]))
        return (epochs * c["steps_per_epoch"] * (step + (c["teacher_forward_s"] if kd else 0.0))
                + _validations(preset, epochs) * tune / (fps["teacher"] if fraction == 1.0 else fps["pruned"]))

    if run["kind"] == "sparsity":
        return train(preset["sparsity_epochs"], 1.0)
    if run["kind"] == "scratch":  # trained by the KD bench: evaluation only
        return c["val_frames"] / fps[preset["scratch"]["model"]]
    if run["kind"] == "original":
        return c["val_frames"] / fps["teacher"]
    t, k = run["target"], preset["steps"]
    fractions = [1 - (1 - t) * j / k for j in range(1, k + 1)]
    seconds = sum(train(preset["epochs"], f) for f in fractions[:-1])
    seconds += train(preset["kd_epochs"], t) + train(preset["kd_epochs"], t, kd=True) + k * c["prune_s"]
    seconds += (3 * k if run["importance"] == "seed" else 0) * tune / fps["pruned"]  # the w candidates
    seconds += tune / fps["teacher"] + 2 * tune / fps["pruned"]  # the job's summary: original, no KD, KD
    return seconds + 2 * c["val_frames"] / fps["pruned"]


def waves(preset: dict, runs: list[dict]) -> list[list[dict]]:
    """The order runs start in: the sparsity runs first (the prune jobs start from their weights), then the rest,
    each wave longest first (fewer idle workers at its end)."""
    first = [r for r in runs if r["kind"] == "sparsity"]
    rest = [r for r in runs if r["kind"] != "sparsity"]
    return [sorted(w, key=lambda r: -estimate_s(preset, r)) for w in (first, rest) if w]


def duration_s(preset: dict, runs: list[dict], jobs: int) -> float:
    """Estimated wall time: each wave's runs go to the first free of ``jobs`` workers; a wave waits for the last."""
    total = 0.0
    for wave in waves(preset, runs):
        free = [0.0] * jobs
        for run in wave:
            free[free.index(min(free))] += estimate_s(preset, run)
        total += max(free)
    return total


def plan_text(preset: dict, runs: list[dict], out: Path, jobs: int) -> str:
    """The pending runs by group and the estimated duration with ``jobs`` workers."""
    pending = [r for r in runs if not (r["out"] / "val.json").is_file()]
    lines = [f"prune bench plan: preset {preset['name']}, {len(runs)} runs ({len(runs) - len(pending)} cached, "
             f"{len(pending)} to run) in {out}, from the KD bench in {preset['from_bench']}"]
    groups: dict[str, list[dict]] = {}
    for r in pending:
        groups.setdefault(str(r["out"].relative_to(out)).removesuffix(f"/seed{r['seed']}"), []).append(r)
    for group, members in groups.items():
        lines.append(f"  {group:24s} x{len(members)}  ~{estimate_s(preset, members[0]) / 60:5.1f} min each")
    total = duration_s(preset, pending, jobs)
    lines.append(f"estimated duration: {total / 3600:.2f} h ({total / 60:.0f} min) with {jobs} job(s), from the "
                 f"preset's cost model ({preset['path']}: cost)")
    return "\n".join(lines)


# The prune preset's keys each kind of run trains with (the scratch and original runs are evaluations only).
TRAINED_WITH = {"sparsity": ("finetune", "sparsity_epochs", "sparsity"),
                "prune": ("finetune", "sparsity_epochs", "sparsity", "steps", "epochs", "kd_epochs"),
                "scratch": (), "original": ()}


def fingerprint(preset: dict, run: dict, bench: KDBench) -> dict:
    """What a run's scores depend on: the KD bench's teacher run (its spec.json pins data, teacher, tracker), the
    settings it ran with (hyp.yaml), the run's own keys and the preset keys its training uses, and the KD config
    (prune) or the KD bench run it re-evaluates (scratch); not the cost model, nor where the KD bench folder is."""
    own = {k: v for k, v in run.items() if k != "out" and (k, run["kind"]) != ("seed", "original")}  # eval only
    found = {"run": own, "hyp": load_yaml(bench.hyp, "train"),
             "teacher": json.loads((bench.root / "runs" / "teacher" / "spec.json").read_text()),
             **{k: preset[k] for k in TRAINED_WITH[run["kind"]]}}
    if run["kind"] == "prune":
        found["kd"] = load_yaml(bench.kd[run["seed"]], "kd")
    elif run["kind"] == "scratch":
        record = bench.scratch[run["configuration"], run["seed"]]
        found["scratch"] = {k: record[k] for k in ("weights", *METRICS)}
    return json.loads(json.dumps(found))


def check_cached(preset: dict, runs: list[dict], bench: KDBench) -> None:
    """Refuse a run folder made with other settings or from another KD bench (its cached scores would be reported
    as this preset's); pin every run's fingerprint in ``<run>/spec.json`` once all of them are accepted."""
    expected = [(run["out"] / "spec.json", fingerprint(preset, run, bench)) for run in runs]
    for path, pins in expected:
        if path.is_file() and json.loads(path.read_text()) != pins:
            raise InputError(f"{path}: this cached run was made with other settings (prune preset or KD bench "
                             f"changed); delete {path.parent} or use another --out")
    for path, pins in expected:
        if not path.is_file():
            atomic_write_text(path, json.dumps(pins, indent=1))


def execute(preset: dict, run: dict, bench: KDBench) -> dict:
    """Train/prune/evaluate one run unless finished; its VAL scores per variant (cached in ``run/val.json``)."""
    from eval.model_run import RunSettings, track_and_evaluate

    out, seed = run["out"], run["seed"]
    done = out / "val.json"
    if done.is_file():
        return json.loads(done.read_text())
    settings = bench.settings(seed, preset["finetune"])
    if run["kind"] == "sparsity":
        FineTune("sparsity", str(bench.data), settings, "cpu")(bench.teacher, out / "train",
                                                               preset["sparsity_epochs"], sparsity=preset["sparsity"])
        models = {}
    elif run["kind"] == "prune":
        sparse = out.parents[2] / "sparsity" / f"seed{seed}" / "train" / "weights" / "best.pt"
        run_prune(PruneJob(weights=sparse if preset["sparsity_epochs"] else bench.teacher, teacher=bench.teacher,
                           data=str(bench.data), target=run["target"], out=out / "prune", settings=settings,
                           steps=preset["steps"], importance=run["importance"], epochs=preset["epochs"],
                           kd_epochs=preset["kd_epochs"], kd=str(bench.kd[seed])))
        models = {"no KD": out / "prune" / "pruned_no_kd.pt", "KD": out / "prune" / "pruned.pt"}
    elif run["kind"] == "scratch":
        models = {run["variant"]: bench.scratch_weights(run["configuration"], seed)}
    else:
        models = {"unpruned": bench.teacher}
    evaluation = bench.settings(seed, {})  # every model is tracked exactly as the KD bench tracked its own
    imgsz = tuple(evaluation["imgsz"])
    tracking = RunSettings(imgsz, evaluation["conf"], evaluation["iou"], evaluation["tracker"])
    scores = {}
    for name, path in models.items():
        model = load_checkpoint(path)
        result, _, speed = track_and_evaluate(model, bench.root / "data", out / "val" / name.replace(" ", "_"), "full",
                                              "all", list(bench.val), tracking)
        scores[name] = {**{k: result.combined[k] for k in METRICS}, "fps": speed["fps"], "gflops": gflops(model, imgsz)}
    if run["kind"] == "scratch":  # the same checkpoint and settings: the KD bench's own numbers expected
        own, mine = bench.scratch[run["configuration"], seed], scores[run["variant"]]
        mine["same_as_kd_bench"] = all(abs(mine[k] - own[k]) < 1e-9 for k in METRICS)
        if not mine["same_as_kd_bench"]:
            logger.warning(f"{models[run['variant']]}: re-evaluated " + ", ".join(f"{k} {mine[k]:.4f}" for k in METRICS)
                           + "; the KD bench's eval.json has " + ", ".join(f"{k} {own[k]:.4f}" for k in METRICS))
    atomic_write_text(done, json.dumps(scores, indent=2))
    return scores


def _in_worker(preset: dict, run: dict, bench: KDBench, threads: int) -> dict:
    return run_logged(run["out"] / "bench.log", threads, execute, preset, run, bench)


def run_all(preset: dict, runs: list[dict], bench: KDBench, out: Path, jobs: int) -> list[tuple[dict, dict]]:
    """Every run not yet finished, wave by wave: in this process (``jobs`` 1) or in ``jobs`` worker processes with
    an equal share of the torch threads each, logging to ``<run>/bench.log``. Each run is a pure function of its
    settings and seed, so the results do not depend on ``jobs`` at equal threads per run. Returns (run, scores)
    in plan order."""
    pending = [r for r in runs if not (r["out"] / "val.json").is_file()]
    threads = threads_per_job(jobs, torch.get_num_threads())
    with tqdm(total=len(pending), desc="prune bench runs", unit="run", dynamic_ncols=True) as bar:
        for wave in waves(preset, pending):
            if jobs == 1:
                for run in wave:
                    bar.set_postfix_str(str(run["out"].relative_to(out)))
                    execute(preset, run, bench)
                    bar.update()
                continue
            logger.info(f"prune bench: {len(wave)} run(s) in {jobs} worker processes, {threads} torch thread(s) "
                        "each; each run logs to <run folder>/bench.log")
            tasks = [Task(str(r["out"].relative_to(out)), _in_worker, (preset, r, bench, threads),
                          r["out"] / "bench.log", cpus=threads) for r in wave]
            LocalLauncher(jobs).run(tasks, lambda task, _: (logger.info(f"prune bench: {task.name} done"),
                                                            bar.update()))
    return [(r, json.loads((r["out"] / "val.json").read_text())) for r in runs]


def report(preset: dict, results: list[tuple[dict, dict]], out: Path, teacher: str) -> str:
    """Mean ± std over seeds per configuration, as Markdown; also ``out/results.png`` (IDF1 vs GFLOPs)."""
    groups: dict[str, list[dict]] = {}
    for run, scores in results:
        for variant, s in scores.items():
            groups.setdefault(_label(preset, run, variant, teacher), []).append(s)
    lines = ["| model | seeds | GFLOPs | tracking FPS | " + " | ".join(METRICS) + " |",
             "| --- | ---: | ---: | ---: | " + " | ".join("---:" for _ in METRICS) + " |"]
    for label, rows in groups.items():
        cells = [_mean_std([r[k] for r in rows]) for k in METRICS]
        lines.append(f"| {label} | {len(rows)} | {statistics.mean(r['gflops'] for r in rows):.3f} | "
                     f"{statistics.mean(r['fps'] for r in rows):.1f} | " + " | ".join(cells) + " |")
    scratch = [s for run, scores in results if run["kind"] == "scratch" for s in scores.values()]
    lines += ["", f"From-scratch rows: the KD bench's checkpoints re-evaluated with its settings; "
                  f"{sum(s['same_as_kd_bench'] for s in scratch)} of {len(scratch)} match its own "
                  f"{'/'.join(METRICS)} exactly (`{preset['from_bench']}`)."]
    _plot(groups, out / "results.png")
    return "\n".join(lines) + "\n"


def _label(preset: dict, run: dict, variant: str, teacher: str) -> str:
    if run["kind"] == "prune":
        return f"{teacher} pruned to {run['target']:g} FLOPs, {run['importance']} importance, {variant}"
    if run["kind"] == "scratch":
        return f"{preset['scratch']['model']} from scratch, {variant}"
    return f"{teacher} unpruned (the KD bench's teacher)"


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
    p.add_argument("--jobs", type=int, default=1, help="runs side by side in worker processes (one torch thread "
                   "each on a 2-core CPU with --jobs 2)")
    p.add_argument("--plan", action="store_true", help="print the runs and the estimated time, run nothing")
    args = p.parse_args(argv)
    if args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    preset, out = load_preset(args.preset), Path(args.out)
    runs = plan(preset, out)
    print(plan_text(preset, runs, out, args.jobs), flush=True)
    if args.plan:
        return 0
    bench = open_bench(preset)
    check_cached(preset, runs, bench)
    results = run_all(preset, runs, bench, out, args.jobs)
    table = report(preset, results, out, str(read_checkpoint(bench.teacher)["arch"].get("name")))
    atomic_write_text(out / "results.md", table)
    atomic_write_text(out / "results.yaml", yaml.safe_dump([{**{k: str(v) for k, v in r.items()}, "scores": s}
                                                            for r, s in results], sort_keys=False))
    print(table, end="")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
