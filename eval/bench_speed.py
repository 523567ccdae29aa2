"""Speed bench: ours vs TrackEval vs py-motmetrics on a MOT17-train-sized synthetic workload.

Run: ``python eval/bench_speed.py`` (or ``python -m eval.bench_speed``). Writes 7 sequences (MOT17 train
lengths, ~5,300 frames) into a temp folder, times each evaluator end to end (file parsing included, serial)
and checks that our numbers equal TrackEval's in every field. motmetrics is shown for reference: it does no
distractor removal, so its FP/IDSW/Frag differ on MOT17-style gt. ``--whole-process N`` also times whole
processes, what a user waits for (start-up included): ``python -m eval.mot17`` in-process (``--workers 1``)
and with a pool, against TrackEval's own evaluation (its ``run_mot_challenge.py`` defaults, results printed)
on the same files; medians of N runs, wall and CPU (user + system, children included).
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

if __package__ in (None, ""):  # allow `python eval/bench_speed.py`
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from eval.loading import evaluate_folder  # noqa: E402
from eval.pool import available_cpus  # noqa: E402
from eval.motmetrics_compat import motmetrics_mot_challenge  # noqa: E402
from eval.synthetic import make_sequence  # noqa: E402
from eval.trackeval_ref import differences, run_trackeval, write_trackeval_layout  # noqa: E402
from mot_kd.data.mot_files import write_seqinfo  # noqa: E402

MOT17_TRAIN = {"MOT17-02": 600, "MOT17-04": 1050, "MOT17-05": 837, "MOT17-09": 525, "MOT17-10": 654,
               "MOT17-11": 900, "MOT17-13": 750}
#: TrackEval's scripts/run_mot_challenge.py with its default evaluator config (serial; outputs files off).
TRACKEVAL_SCRIPT = """
import json, sys
import trackeval
config = {**json.load(open(sys.argv[1])), "BENCHMARK": "MOT17"}
evaluator = trackeval.Evaluator({"USE_PARALLEL": False, "OUTPUT_SUMMARY": False, "OUTPUT_DETAILED": False,
                                 "PLOT_CURVES": False})
metrics = [trackeval.metrics.HOTA(), trackeval.metrics.CLEAR(), trackeval.metrics.Identity()]
evaluator.evaluate([trackeval.datasets.MotChallenge2DBox(config)], metrics)
"""
SHOWN = ("HOTA", "DetA", "AssA", "MOTA", "IDF1", "MT", "PT", "ML", "FP", "FN", "IDSW", "Frag")


def build_workload(root: Path, seed: int, tracks: int) -> dict:
    rng = np.random.default_rng(seed)
    sequences = [make_sequence(rng, f"{name}-FRCNN", n, tracks)
                 for name, n in MOT17_TRAIN.items()]
    config = write_trackeval_layout(sequences, root)
    for seq in sequences:
        write_seqinfo(root / "gt" / seq.name, seq.name, seq.num_frames, 30, 1920, 1080)
    gt_rows = sum(len(s.gt) for s in sequences)
    ped = sum(int(((s.gt[:, 7] == 1) & (s.gt[:, 6] != 0)).sum()) for s in sequences)
    trk = sum(len(s.tracker) for s in sequences)
    print(f"workload: {len(sequences)} sequences, {sum(MOT17_TRAIN.values())} frames, {ped} scored pedestrian gt "
          f"boxes ({gt_rows} gt rows incl. distractor/zero-marked), {trk} tracker boxes")
    return config


def timed(fn, repeat: int):
    best, out = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - start)
    return best, out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tracks", type=int, default=127, help="gt tracks per sequence (~26 gt rows a frame)")
    parser.add_argument("--repeat", type=int, default=3, help="best of N runs for ours (TrackEval/motmetrics: 1)")
    parser.add_argument("--skip-motmetrics", action="store_true")
    parser.add_argument("--whole-process", type=int, default=0, metavar="N",
                        help="also time whole processes (ours serial and pooled, TrackEval), median of N runs each")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        config = build_workload(root, args.seed, args.tracks)
        results_dir = root / "trackers" / "ours" / "data"
        t_ours, (ours, _) = timed(lambda: evaluate_folder(root / "gt", results_dir, detector="all"), args.repeat)
        t_ref, ref = timed(lambda: run_trackeval(config), 1)
        names = list(config["SEQ_INFO"])
        if not args.skip_motmetrics:
            t_mm, mm = timed(lambda: motmetrics_mot_challenge(
                {n: str(root / "gt" / n / "gt" / "gt.txt") for n in names},
                {n: str(results_dir / f"{n}.txt") for n in names}), 1)
        if args.whole_process:
            whole = whole_process_times(root, config, results_dir, args.whole_process)
    problems = differences(ours, ref, atol=1e-9)
    print(f"\n{'COMBINED':<12}" + "".join(f"{k:>9}" for k in SHOWN))
    rows = [("ours", ours.combined), ("TrackEval", {**ours.combined, **_public(ref["COMBINED"])})]
    if not args.skip_motmetrics:
        rows.append(("motmetrics", {k: mm["COMBINED"].get(k, float("nan")) for k in SHOWN}))
    for label, values in rows:
        print(f"{label:<12}" + "".join(f"{_fmt(k, values.get(k, float('nan'))):>9}" for k in SHOWN))
    print(f"\nours       {t_ours:7.3f} s")
    print(f"TrackEval  {t_ref:7.3f} s   -> ours is {t_ref / t_ours:5.1f}x faster")
    if not args.skip_motmetrics:
        print(f"motmetrics {t_mm:7.3f} s   -> ours is {t_mm / t_ours:5.1f}x faster")
    if args.whole_process:
        print(f"\nwhole process, median of {args.whole_process} (wall / CPU s):")
        ref_wall, ref_cpu = whole["TrackEval"]
        for label, (wall, cpu) in whole.items():
            print(f"{label:<28} {wall:6.3f} / {cpu:6.3f}   TrackEval / this: wall {ref_wall / wall:5.2f}x, "
                  f"CPU {ref_cpu / cpu:5.2f}x")
    if problems:
        print(f"\nMISMATCH with TrackEval in {len(problems)} fields:\n" + "\n".join(problems[:20]))
        return 1
    print("\nall TrackEval fields identical (counts exact, ratios within 1e-9), every sequence and COMBINED")
    return 0


def whole_process_times(root: Path, config: dict, results_dir: Path, runs: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each command, run in turn (A B C A B C ...) so drifting load hits all."""
    (root / "config.json").write_text(json.dumps(config))
    ours = [sys.executable, "-m", "eval.mot17", "--data-root", str(root / "gt"), "--results", str(results_dir),
            "--detector", "all"]
    pool = min(len(config["SEQ_INFO"]), available_cpus())
    commands = {"ours (--workers 1)": ours + ["--workers", "1"], f"ours (--workers {pool})": ours + ["--workers",
                str(pool)], "TrackEval": [sys.executable, "-c", TRACKEVAL_SCRIPT, str(root / "config.json")]}
    times = {label: [] for label in commands}
    cwd = Path(__file__).resolve().parent.parent
    for _ in range(runs):
        for label, command in commands.items():
            before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
            subprocess.run(command, check=True, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
            cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
            times[label].append((wall, cpu))
    return {label: (statistics.median(w for w, _ in t), statistics.median(c for _, c in t))
            for label, t in times.items()}


def _public(raw: dict) -> dict:
    h, c, i = raw["HOTA"], raw["CLEAR"], raw["Identity"]
    return {"HOTA": np.mean(h["HOTA"]), "DetA": np.mean(h["DetA"]), "AssA": np.mean(h["AssA"]), "MOTA": c["MOTA"],
            "IDF1": i["IDF1"], "MT": c["MT"], "PT": c["PT"], "ML": c["ML"], "FP": c["CLR_FP"], "FN": c["CLR_FN"],
            "IDSW": c["IDSW"], "Frag": c["Frag"]}


def _fmt(key: str, value) -> str:
    if key in ("HOTA", "DetA", "AssA", "MOTA", "IDF1"):
        return f"{100 * float(value):.3f}"
    return str(int(value))


if __name__ == "__main__":
    sys.exit(main())
