"""``python -m mot_kd.bench --preset smoke|cpu|gpu|PRESET.yaml --out runs/bench``: the KD benchmark.

Trains a teacher once, then every student x configuration (no KD, all three losses, ablations) x seed on a
synthetic train set, validates on a separate tune set (the teacher's best.pt; the students' too unless the
preset's ``student_checkpoint`` is ``last``), evaluates every final model once on a separate val set, and
writes ``OUT/kd_bench.json``, ``kd_bench.md`` and ``kd_bench.png``. Like ``mot_kd.demo`` this is a
composition root (trainer + tracker + evaluator). Every run is cached in ``OUT/runs/``: run the same
command again to resume after an interruption.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from loguru import logger

from mot_kd.bench.data import prepare_data
from mot_kd.bench.presets import Preset, load_preset
from mot_kd.bench.report import build_report, format_markdown, write_report
from mot_kd.bench.runner import Runner, check_spec, plan_runs, teacher_spec
from mot_kd.bench.speed import load_speed, time_architectures
from mot_kd.bench.tune import load_tuning, tune_specs, tuned_overrides, write_tuning
from mot_kd.errors import InputError, cli_entry
from mot_kd.launch import LAUNCHERS, make_launcher


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mot_kd.bench", description=__doc__.splitlines()[0])
    p.add_argument("--preset", required=True, help="smoke, cpu, gpu (configs/bench/) or a preset YAML")
    p.add_argument("--out", default="runs/bench", help="output folder: data, cached runs and the report")
    p.add_argument("--device", help="cpu, 0 or auto (default: the preset's device)")
    p.add_argument("--tune", action="store_true",
                   help="first train the preset's tuning grid and choose KD weights on the tune set (OUT/tuning.json)")
    p.add_argument("--jobs", type=int, default=1,
                   help="runs trained side by side in worker processes (e.g. 2 on a 2-core CPU; the teacher "
                        "runs alone)")
    p.add_argument("--launcher", choices=LAUNCHERS, default="local",
                   help="local: --jobs worker processes here; ray: every run a Ray task with its CPU/GPU request "
                        "(needs the ray extra; --jobs then sets the torch threads per run = this machine's / N)")
    p.add_argument("--address", help="--launcher ray: the cluster (auto, ray://host:10001; default: a local instance)")
    p.add_argument("--gpus-per-run", type=float,
                   help="--launcher ray: GPUs each run asks for (default: 0 on cpu, 1 on a GPU id or auto with a GPU)")
    p.add_argument("--plan", action="store_true", help="print the runs and the estimated duration, then stop")
    p.add_argument("--report-only", action="store_true", help="rebuild the report from the cached runs; train nothing")
    args = p.parse_args(argv)
    if args.report_only and (args.tune or args.plan):
        raise InputError("--report-only trains nothing: drop --tune/--plan")
    if args.jobs < 1:
        raise InputError(f"--jobs: expected an integer >= 1, got {args.jobs}")
    if args.launcher != "ray" and (args.address is not None or args.gpus_per_run is not None):
        raise InputError("--address/--gpus-per-run are for --launcher ray")
    if args.gpus_per_run is not None and args.gpus_per_run < 0:
        raise InputError(f"--gpus-per-run: expected a number >= 0, got {args.gpus_per_run}")
    return args


def report(preset: Preset, out: Path, tuning: dict | None) -> dict:
    """Build and write the report from the finished runs of the plan (refusing runs cached with other settings)."""
    runs = plan_runs(preset, out, tuned_overrides(tuning))
    done = [r for r in runs if r.done]
    for spec in done:
        check_spec(preset, spec, write=False)
    records = [r.record() for r in done]
    if not records:
        raise InputError(f"--out {out}: no finished runs of preset {preset.name} to report")
    result = build_report(preset, records, len(runs), tuning, load_speed(out))
    paths = write_report(result, out)
    print(format_markdown(result))
    logger.info(f"wrote {paths['json']}, {paths['md']} and {paths['png']}")
    return result


def default_gpus(device: str) -> float:
    """GPUs a Ray task asks for: none on cpu, one for a GPU id, one for auto where this machine has a GPU."""
    if device == "auto":
        import torch

        return float(torch.cuda.is_available())
    return 0.0 if device == "cpu" else 1.0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    preset, out, start = load_preset(args.preset), Path(args.out).absolute(), time.perf_counter()
    if args.report_only:
        report(preset, out, load_tuning(out))
        return 0
    launcher = make_launcher(args.launcher, args.jobs, args.address)
    if args.launcher == "ray" and not args.plan:
        launcher.connect()  # a wrong --address fails before any data or run folder is written
    runner = Runner(preset, out, args.device)
    tuning = load_tuning(out)
    gpus = args.gpus_per_run if args.gpus_per_run is not None else default_gpus(runner.device)
    if args.tune:
        specs = tune_specs(preset, out)
        print(runner.plan_text(specs, args.jobs).replace("bench plan", "tuning plan"), flush=True)
    print(runner.plan_text(plan_runs(preset, out, tuned_overrides(tuning)), args.jobs), flush=True)
    if args.plan:
        return 0
    prepare_data(preset, out)
    if args.tune:  # the teacher (its run is the same with or without tuning) first: the grid distils from it
        tuning = write_tuning(preset, out, runner.execute([teacher_spec(preset, out), *specs], args.jobs, launcher,
                                                                     gpus)[1:])
        logger.info(f"tuning: chose {tuning['chosen']} {tuning['chosen_overrides']} on the tune set")
    records = runner.execute(plan_runs(preset, out, tuned_overrides(tuning)), args.jobs, launcher, gpus)
    time_architectures(preset, out, records, runner.device, runner.run_settings)
    report(preset, out, tuning)
    logger.info(f"bench finished in {(time.perf_counter() - start) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
