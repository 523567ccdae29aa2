"""Our tracker against ByteTrack / BoT-SORT / OC-SORT on the same detections: ``python -m trackers.bench_peers``.

Datasets (``trackers.peer_data``): ``tud`` (published TUD boxes from the motmetrics wheel, IoU-only for
everyone, MOT15 protocol), ``synthetic`` (a trained model's detections + embeddings on the synthetic val
half, cached in ``--cache``; MOT17 protocol) and ``crowd`` (bench_speed's generated 50-detection crowd with
its true boxes as gt: speed at MOT17 density). Every tracker sees the same arrays and is scored by our
TrackEval-exact evaluator; ms/frame is the CPU time of the tracker's update call alone (``time.thread_time``,
adapters excluded), all under one BLAS thread: no helper threads go uncounted, and other processes on a
shared machine do not inflate it as they do wall time. Peers that are not
installed are skipped with the command that installs them. This is a benchmark script, a composition root:
it imports ``eval`` to score the trackers.

Cache once (a tiny CPU model is enough; it only has to produce realistic detections and embeddings):
``python -m mot_kd.train --model yolov5n --data synthetic --hyp demo --epochs 10 --out runs/bench_peers/model``
then ``python -m trackers.bench_peers --weights runs/bench_peers/model/weights/best.pt``.
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from loguru import logger
from tqdm import tqdm

from eval import SequenceData, evaluate
from mot_kd.errors import InputError, cli_entry
from mot_kd.utils.io import atomic_write_text
from trackers import load_tracker_config
from trackers.blas import BlasLimit
from trackers.peer_data import DetSequence, crowd_sequence, load_cache, make_model_cache, tud_sequences
from trackers.peers import BOXMOT_INSTALL, Boxmot, Ours, Ultralytics, boxmot_available

DEFAULT_CACHE = Path("runs/bench_peers/synthetic_dets.npz")
COLUMNS = ("IDF1", "HOTA", "MOTA", "IDSW", "IDs", "FP", "FN")
PEER_KINDS = ("bytetrack", "botsort", "ocsort")
#: ultralytics' default score split (track_high_thresh, track_low_thresh, new_track_thresh) in our keys
PEER_SPLIT = {"det_thresh": 0.25, "low_thresh": 0.1, "new_track_thresh": 0.25}


def tracker_factories(ours: dict[str, dict], peer_cfg: dict, thresholds: tuple[str, ...], with_boxmot: bool
                      ) -> list[tuple[str, callable]]:
    """(label ``package:kind:mode``, make(frame_rate, appearance)) for ours and every peer in every mode.

    Mode ``ours``: everyone uses ``peer_cfg``'s score split (our first config). Mode ``own``: peers keep their
    defaults, and our configs run with ultralytics' default split (``PEER_SPLIT``), so that each of our rows
    has a peer row with the same split.
    """
    out = []
    for mode in thresholds:
        split = {} if mode == "ours" else PEER_SPLIT
        out += [(f"ours:{name}:{mode}", lambda fps, app, c={**cfg, **split}, n=name: Ours(c, fps, app, n))
                for name, cfg in ours.items()]
    packages = [("ultralytics", Ultralytics)] + ([("boxmot", Boxmot)] if with_boxmot else [])
    for package, cls in packages:
        for kind in PEER_KINDS:
            for mode in thresholds:
                out.append((f"{package}:{kind}:{mode}",
                            lambda fps, app, c=cls, k=kind, m=mode: c(k, peer_cfg, fps, app, m)))
    return out


def run_tracker(make, seq: DetSequence, appearance: bool) -> tuple[np.ndarray, float, str]:
    """Track one sequence; return (MOT rows with original frame numbers, CPU seconds in update, tracker name)."""
    tracker = make(seq.frame_rate, appearance)
    chunks, seconds = [], 0.0
    with BlasLimit(1).limit():
        for i, (xyxy, scores, emb) in enumerate(seq.frames):
            start = time.thread_time()
            output = tracker.update(xyxy, scores, emb if appearance else None)
            seconds += time.thread_time() - start
            chunks.append(tracker.rows(seq.first + i, output))
    return np.concatenate(chunks) if chunks else np.zeros((0, 10)), seconds, tracker.name


def bench_dataset(seqs: list[DetSequence], benchmark: str, appearance: bool, factories, repeat: int = 3
                  ) -> list[dict]:
    """One row per tracker: combined metrics over ``seqs`` and ms/frame, the best of ``repeat`` passes.

    The first pass of a tracker pays one-off costs (imports, first calls into compiled code); the others
    show its steady per-frame cost. Results are deterministic, so every pass tracks the same.
    """
    rows = []
    frames = sum(s.num_frames for s in seqs)
    for label, make in tqdm(factories, desc=f"trackers ({benchmark})", leave=False):
        passes = []
        for _ in range(repeat):
            passes.append([run_tracker(make, seq, appearance) for seq in seqs])
        seconds = min(sum(sec for _, sec, _ in p) for p in passes)
        name = passes[0][0][2]
        results = [SequenceData(seq.name, seq.gt, tracked, seq.num_frames, seq.first)
                   for seq, (tracked, _, _) in zip(seqs, passes[0])]
        combined = evaluate(results, benchmark, workers=1).combined  # no fork of a process holding torch
        mode = label.rsplit(":", 1)[-1]
        is_ours = label.startswith("ours:")
        rows.append({"tracker": name, "thresholds": "ultralytics" if is_ours and mode == "own" else mode,
                     "mode": mode, "ours": is_ours,
                     "ms_per_frame": 1e3 * seconds / max(frames, 1),
                     **{k: combined[k] for k in COLUMNS}})
    return rows


def format_table(title: str, rows: list[dict]) -> str:
    lines = [f"### {title}", "", "| tracker | thresholds | IDF1 | HOTA | MOTA | IDSW | IDs | FP | FN | CPU ms/frame |",
             "|" + " --- |" * 10]
    for r in rows:
        lines.append(f"| {r['tracker']} | {r['thresholds']} | {100 * r['IDF1']:.1f} | {100 * r['HOTA']:.1f} | "
                     f"{100 * r['MOTA']:.1f} | {r['IDSW']} | {r['IDs']} | {r['FP']} | {r['FN']} | "
                     f"{r['ms_per_frame']:.3f} |")
    return "\n".join(lines)


def verdict(rows: list[dict]) -> str:
    """Goal lines: our first config against the best peer (IDF1, HOTA) and the fastest peer (ms/frame), at the
    same score split (each mode), and over all rows."""
    first = rows[0]["tracker"]
    lines = []
    for mode in sorted({r["mode"] for r in rows}, key=lambda m: m != "ours") + ["any"]:
        here = [r for r in rows if mode in ("any", r["mode"])]
        # like for like: in "own" mode our rows use ultralytics' split, so only ultralytics' peers share it
        peers = [r for r in here if not r["ours"] and (mode != "own" or r["tracker"].startswith("ultralytics"))]
        mine = [r for r in here if r["tracker"] == first]
        if not peers or not mine:
            continue
        parts = []
        for key in ("IDF1", "HOTA"):
            ours, best = max(mine, key=lambda r: r[key]), max(peers, key=lambda r: r[key])
            parts.append(f"{key} {100 * ours[key]:.1f} vs {100 * best[key]:.1f} ({best['tracker']}, "
                         f"{best['thresholds']}) {'met' if ours[key] >= best[key] else 'missed'}")
        ours, fastest = min(mine, key=lambda r: r["ms_per_frame"]), min(peers, key=lambda r: r["ms_per_frame"])
        parts.append(f"ms/frame {ours['ms_per_frame']:.3f} vs {fastest['ms_per_frame']:.3f} ({fastest['tracker']}) "
                     f"{'met' if ours['ms_per_frame'] <= fastest['ms_per_frame'] else 'missed'}")
        split = {"ours": "our score split", "any": "best of any split",
                 "own": "ultralytics' split ({det_thresh}/{low_thresh}/{new_track_thresh})".format(**PEER_SPLIT)}
        lines.append(f"- {first} vs peers, {split[mode]}: " + "; ".join(parts))
    return "\n".join(lines) or "no peers ran"


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m trackers.bench_peers", description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="tud,synthetic,crowd", help="comma list of tud, synthetic, crowd")
    p.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="synthetic detections + embeddings (.npz)")
    p.add_argument("--weights", help="model checkpoint: (re)build --cache from the synthetic val split first")
    p.add_argument("--data", default="synthetic", help="data config for --weights (name or YAML)")
    p.add_argument("--tracker", default="default,jde",
                   help="comma list of our tracker configs (names or YAML); the first is judged against the peers "
                        "and gives the 'ours' threshold mode")
    p.add_argument("--thresholds", default="own,ours",
                   help="peer score thresholds: own (peer defaults), ours (our det/low/new-track split), or both")
    p.add_argument("--repeat", type=int, default=3, help="timed passes per tracker; ms/frame is the best")
    p.add_argument("--no-boxmot", action="store_true", help="skip boxmot even when it is installed")
    p.add_argument("--json", type=Path, help="also write all rows as JSON")
    return p.parse_args(argv)


@cli_entry
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    datasets = [d.strip() for d in args.datasets.split(",") if d.strip()]
    unknown = sorted(set(datasets) - {"tud", "synthetic", "crowd"})
    if unknown or not datasets:
        raise InputError(f"--datasets: unknown {', '.join(unknown) or '(empty)'}; choose from tud, synthetic, crowd")
    thresholds = tuple(t.strip() for t in args.thresholds.split(",") if t.strip())
    if not thresholds or set(thresholds) - {"own", "ours"}:
        raise InputError(f"--thresholds: expected own, ours or own,ours, got {args.thresholds!r}")
    if args.repeat < 1:
        raise InputError(f"--repeat: must be at least 1, got {args.repeat}")
    names = [t.strip() for t in args.tracker.split(",") if t.strip()]
    if not names:
        raise InputError("--tracker: give at least one tracker config")
    ours = {Path(n).stem: load_tracker_config(n) for n in names}
    with_boxmot = not args.no_boxmot and boxmot_available()
    if not with_boxmot and not args.no_boxmot:
        logger.warning(f"boxmot not installed: its trackers are skipped (install beside, not into, the main "
                       f"environment: {BOXMOT_INSTALL})")
    factories = tracker_factories(ours, next(iter(ours.values())), thresholds, with_boxmot)
    if args.weights:
        make_model_cache(args.weights, args.cache, args.data)
    report, tables = {}, []
    if "tud" in datasets:
        rows = bench_dataset(tud_sequences(), "MOT15", False, factories, args.repeat)
        report["tud"] = rows
        tables.append(format_table("TUD-Campus + TUD-Stadtmitte (published boxes, IoU-only, MOT15)", rows)
                      + "\n\n" + verdict(rows))
    if "synthetic" in datasets:
        if args.cache.is_file() or args.weights:
            seqs, meta = load_cache(args.cache)
            rows = bench_dataset(seqs, "MOT17", True, factories, args.repeat)
            report["synthetic"] = {"cache": meta, "rows": rows}
            title = (f"synthetic {meta['split']} ({len(seqs)} sequences, {sum(s.num_frames for s in seqs)} frames), "
                     f"{Path(meta['weights']).name} detections + embeddings, MOT17")
            tables.append(format_table(title, rows) + "\n\n" + verdict(rows))
        elif datasets == ["synthetic"]:
            raise InputError(f"{args.cache}: no detection cache (build it with --weights CKPT; see --help)")
        else:
            logger.warning(f"{args.cache}: no detection cache, synthetic skipped (build it with --weights CKPT; "
                           "see python -m trackers.bench_peers --help)")
    if "crowd" in datasets:
        seq = crowd_sequence()
        rows = bench_dataset([seq], "MOT17", True, factories, args.repeat)
        report["crowd"] = rows
        tables.append(format_table(f"crowd ({seq.num_frames} frames, 60 walkers, 50 detections/frame incl. 5 low-score "
                                   "false positives, 128-d noisy embeddings; trackers.bench_speed), MOT17", rows)
                      + "\n\n" + verdict(rows))
    print("\n\n".join(tables))
    if args.json:
        atomic_write_text(args.json, json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
