"""The one-shot assumption, measured: candidates picked across a search's inherited scores (``nas pick``) and the
rank correlation of those scores with the same candidates' retrained scores from a KD bench (``nas correlate``).

Why through the KD bench: retraining there gives every candidate the same data, seeds, schedule and KD as the
hand-designed student, with caching and mean over seeds; a candidate's bench runs pin its rows (``spec.json``),
so they are matched to the search's records by content, not by a file name that may have been reused.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats

from mot_kd.errors import InputError
from mot_kd.utils.io import atomic_write_text

SCORES = ("IDF1", "MOTA")
MIN_CANDIDATES = 3  # below that a rank correlation is +-1 or undefined; the issue asks for >= 5


def _key(candidate: dict) -> str:
    return json.dumps(candidate, sort_keys=True)


def read_search(search: str | Path) -> list[dict]:
    """The records of ``SEARCH/search.jsonl`` (one evaluated candidate per line), checked."""
    path = Path(search) / "search.jsonl"
    if not path.is_file():
        raise InputError(f"--search {search}: no search.jsonl in it (run `python -m mot_kd.nas search` first)")
    records = []
    for number, line in enumerate(path.read_text().splitlines(), 1):
        try:
            record = json.loads(line)
            if not isinstance(record["candidate"], dict) or not all(math.isfinite(record[m]) for m in SCORES):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            raise InputError(f"{path}:{number}: not a search record (candidate, IDF1, MOTA)") from None
        records.append(record)
    if not records:
        raise InputError(f"{path}: no records (the search was interrupted before its first candidate)")
    return records


def pick(records: list[dict], n: int, metric: str = "IDF1", exclude: dict[str, dict] | None = None) -> list[dict]:
    """``n`` records spread over the range of ``metric``: for n targets evenly spaced from the lowest to the
    highest score, the nearest record not picked yet (so the lowest and the highest are always in). Ascending.
    ``exclude``: file name -> candidate not to pick; one that is not in ``records`` is an error (it would exclude
    nothing, and the bench would train that candidate twice under two names)."""
    if metric not in SCORES:
        raise InputError(f"--metric: expected one of {', '.join(SCORES)}, got {metric!r}")
    searched = {_key(r["candidate"]) for r in records}
    for name, cand in (exclude or {}).items():
        if _key(cand) not in searched:
            raise InputError(f"--exclude {name}: its candidate is not in the search's records (from another search?)")
    skip = {_key(c) for c in (exclude or {}).values()}
    pool = [r for r in records if _key(r["candidate"]) not in skip]
    if n < 2 or n > len(pool):
        raise InputError(f"--n: expected 2..{len(pool)} (the search's candidates{' not excluded' * bool(skip)}), "
                         f"got {n}")
    chosen: list[dict] = []
    low, high = min(r[metric] for r in pool), max(r[metric] for r in pool)
    for target in np.linspace(low, high, n):
        rest = [r for r in pool if not any(r is c for c in chosen)]
        chosen.append(min(rest, key=lambda r: abs(r[metric] - target)))
    return sorted(chosen, key=lambda r: r[metric])


def write_picks(records: list[dict], out: str | Path) -> list[Path]:
    """``OUT/pick_1.json`` .. (ascending score), each a search record; refuses a folder that holds picks already
    (a bench may have trained them: replacing them would make its cached runs stale)."""
    out = Path(out)
    if out.is_dir() and any(out.glob("pick_*.json")):
        raise InputError(f"--out {out}: holds picked candidates already; use another --out")
    paths = [out / f"pick_{i}.json" for i in range(1, len(records) + 1)]
    for path, record in zip(paths, records):
        atomic_write_text(path, json.dumps(record, indent=2) + "\n")
    return paths


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text())
    except ValueError:
        data = None
    if not isinstance(data, dict):
        raise InputError(f"{path}: unreadable run file (not a JSON object)")
    return data


def _bench_candidates(bench: Path, names: list[str] | None, configuration: str) -> dict[str, dict]:
    """``{name: {"candidate", "runs": [eval records]}}`` for the bench's students whose runs pin a candidate."""
    root = bench / "runs"
    if not root.is_dir():
        raise InputError(f"--bench {bench}: no runs/ folder (not a KD bench output folder)")
    listed = names if names else sorted(p.name for p in root.iterdir() if p.is_dir() and p.name != "teacher")
    found = {}
    for name in listed:
        runs = []
        for seed in sorted((root / name / configuration).glob("seed*")):
            if (seed / "eval.json").is_file() and (seed / "spec.json").is_file():
                spec, record = _read_json(seed / "spec.json"), _read_json(seed / "eval.json")
                runs.append(((spec.get("model") or {}).get("cfg", {}).get("candidate"), record))
        candidates = {_key(c) for c, _ in runs if c is not None}
        if not runs or not candidates:
            if names:
                raise InputError(f"--names {name}: no finished {configuration} runs of a NAS candidate in "
                                 f"{root / name / configuration}")
            continue
        if len(candidates) > 1 or any(c is None for c, _ in runs):
            raise InputError(f"{root / name / configuration}: its seeds trained different architectures")
        found[name] = {"candidate": runs[0][0], "runs": [r for _, r in runs]}
    return found


def _correlation(x: list[float], y: list[float]) -> dict:
    """Spearman's rho and Kendall's tau (scipy.stats) with their p-values; None where undefined (a constant)."""
    def finite(v: float) -> float | None:
        return float(v) if math.isfinite(v) else None

    if len(set(x)) < 2 or len(set(y)) < 2:  # scipy would warn and return NaN
        return {"spearman": None, "spearman_p": None, "kendall": None, "kendall_p": None}
    rho, tau = stats.spearmanr(x, y), stats.kendalltau(x, y)
    return {"spearman": finite(rho.statistic), "spearman_p": finite(rho.pvalue),
            "kendall": finite(tau.statistic), "kendall_p": finite(tau.pvalue)}


def correlate(search: str | Path, bench: str | Path, names: list[str] | None = None,
              configuration: str = "all") -> dict:
    """Inherited (search, tune split) vs retrained (bench, val split, mean over seeds) scores per candidate."""
    search, bench = Path(search), Path(bench)
    by_key = {_key(r["candidate"]): r for r in read_search(search)}
    rows, named = [], {}
    for name, found in _bench_candidates(bench, names, configuration).items():
        record = by_key.get(_key(found["candidate"]))
        if record is None:
            raise InputError(f"--bench {bench}: the candidate of {name} is not in {search / 'search.jsonl'} (from "
                             "another search?); leave it out with --names")
        twin = named.setdefault(_key(found["candidate"]), name)
        if twin != name:  # one candidate counted twice would inflate n and the correlation
            raise InputError(f"--bench {bench}: {twin} and {name} trained the same candidate; leave one out with "
                             "--names")
        runs = found["runs"]
        rows.append({"name": name, "gflops": record["gflops"], "params": record["params"],
                     "seeds": sorted(r["seed"] for r in runs), "inherited": {m: record[m] for m in SCORES},
                     "retrained": {m: float(np.mean([r[m] for r in runs])) for m in SCORES},
                     "retrained_std": {m: float(np.std([r[m] for r in runs], ddof=1)) if len(runs) > 1 else 0.0
                                       for m in SCORES}})
    if len(rows) < MIN_CANDIDATES:
        raise InputError(f"--bench {bench}: {len(rows)} candidate(s) with finished {configuration} runs "
                         f"({', '.join(r['name'] for r in rows) or 'none'}); a rank correlation needs at least "
                         f"{MIN_CANDIDATES}")
    return {"search": str(search), "bench": str(bench), "configuration": configuration, "n": len(rows),
            "note": "inherited: supernet weights, BN recalibrated, scored on the search's tune split; retrained: "
                    f"the bench's '{configuration}' runs from scratch, val split, mean over seeds",
            "correlation": {m: _correlation([r["inherited"][m] for r in rows], [r["retrained"][m] for r in rows])
                            for m in SCORES},
            "candidates": rows}


def format_correlation(result: dict) -> str:
    def num(v: float | None, digits: int = 2) -> str:
        return "n/a" if v is None else f"{v:.{digits}f}"

    lines = [f"Rank correlation, n = {result['n']} candidates ({result['note']}):", "",
             "| metric | Spearman rho | p | Kendall tau | p |", "| --- | ---: | ---: | ---: | ---: |"]
    for m, c in result["correlation"].items():
        lines.append(f"| {m} | {num(c['spearman'])} | {num(c['spearman_p'], 3)} | {num(c['kendall'])} | "
                     f"{num(c['kendall_p'], 3)} |")
    if any(c["spearman"] is None for c in result["correlation"].values()):
        lines += ["", "n/a: one side's scores are all equal, so a rank correlation is undefined."]
    lines += ["", "| candidate | GFLOPs (search's cost image) | seeds | inherited IDF1 | retrained IDF1 | inherited MOTA "
                  "| retrained MOTA |",
              "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for r in result["candidates"]:
        lines.append(f"| {r['name']} | {r['gflops']:.2f} | {len(r['seeds'])} | {100 * r['inherited']['IDF1']:.1f} | "
                     f"{100 * r['retrained']['IDF1']:.1f} | {100 * r['inherited']['MOTA']:.1f} | "
                     f"{100 * r['retrained']['MOTA']:.1f} |")
    return "\n".join(lines) + "\n"


def write_correlation(result: dict, path: str | Path) -> Path:
    path = Path(path)
    atomic_write_text(path, json.dumps(result, indent=1) + "\n")
    atomic_write_text(path.with_suffix(".md"), format_correlation(result))
    return path
