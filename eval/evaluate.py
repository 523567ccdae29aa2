"""Library entry point: evaluate per-sequence arrays and get per-sequence + COMBINED metric dicts."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

import numpy as np

from eval.metrics import clear, hota, identity
from eval.pool import run_ordered
from eval.protocol import SequenceData, listing, prepare
from mot_kd.errors import InputError

METRICS = {"HOTA": hota, "CLEAR": clear, "Identity": identity}
#: Public key -> (TrackEval metric, field). Ratios are fractions in [0, 1]; array fields are alpha means.
PUBLIC_KEYS = {
    "HOTA": ("HOTA", "HOTA"), "DetA": ("HOTA", "DetA"), "AssA": ("HOTA", "AssA"), "LocA": ("HOTA", "LocA"),
    "DetRe": ("HOTA", "DetRe"), "DetPr": ("HOTA", "DetPr"), "AssRe": ("HOTA", "AssRe"),
    "AssPr": ("HOTA", "AssPr"), "HOTA(0)": ("HOTA", "HOTA(0)"), "LocA(0)": ("HOTA", "LocA(0)"),
    "MOTA": ("CLEAR", "MOTA"), "MOTP": ("CLEAR", "MOTP"), "MODA": ("CLEAR", "MODA"),
    "IDF1": ("Identity", "IDF1"), "IDP": ("Identity", "IDP"), "IDR": ("Identity", "IDR"),
    "recall": ("CLEAR", "CLR_Re"), "precision": ("CLEAR", "CLR_Pr"),
    "MT": ("CLEAR", "MT"), "PT": ("CLEAR", "PT"), "ML": ("CLEAR", "ML"),
    "TP": ("CLEAR", "CLR_TP"), "FP": ("CLEAR", "CLR_FP"), "FN": ("CLEAR", "CLR_FN"),
    "IDSW": ("CLEAR", "IDSW"), "Frag": ("CLEAR", "Frag"),
    "IDTP": ("Identity", "IDTP"), "IDFP": ("Identity", "IDFP"), "IDFN": ("Identity", "IDFN"),
}
COUNT_KEYS = ("MT", "PT", "ML", "TP", "FP", "FN", "IDSW", "Frag", "IDTP", "IDFP", "IDFN", "GT_IDs", "IDs",
              "GT_Dets", "Dets")


def public_metrics(raw: dict, counts: dict) -> dict:
    """Flatten TrackEval-named results into the public keys (ints for counts, floats for ratios)."""
    out = {}
    for key, (metric, name) in PUBLIC_KEYS.items():
        value = raw[metric][name]
        out[key] = int(value) if key in COUNT_KEYS else float(np.mean(value))
    out.update({key: int(value) for key, value in counts.items()})
    return out


@dataclass
class EvalResult:
    """``sequences``/``combined``: public metric dicts; ``raw``: TrackEval-named fields (HOTA per alpha)."""

    benchmark: str
    sequences: dict[str, dict] = field(default_factory=dict)
    combined: dict = field(default_factory=dict)
    raw: dict[str, dict] = field(default_factory=dict)  # seq name or "COMBINED" -> metric -> fields


def evaluate(sequences: Iterable[SequenceData], benchmark: str = "MOT17", preprocess: bool = True,
             progress: bool = False, workers: int | None = 1) -> EvalResult:
    """Evaluate sequences like TrackEval's MotChallenge2DBox + HOTA/CLEAR/Identity; raises InputError.

    ``workers``: processes for the sequences (1, the default: in this process, safe in one that holds torch's
    threads or a GPU; None: a forked pool only where it pays, see :func:`eval.pool.choose_workers`, what the
    CLI uses). Results are identical whichever is used.
    """
    sequences = list(sequences)
    names = [s.name for s in sequences]
    unique, counts = np.unique(names, return_counts=True)
    if (counts > 1).any():
        raise InputError(f"duplicate sequence names: {listing(unique[counts > 1].tolist())}")
    jobs = [(seq, benchmark, preprocess) for seq in sequences]
    sizes = [len(seq.gt) + len(seq.tracker) for seq in sequences]
    return assemble(benchmark, names, run_ordered(count_sequence, jobs, sizes, workers, progress))


def assemble(benchmark: str, names: list[str], counted: list[tuple[dict, dict]]) -> EvalResult:
    """The result from each sequence's :func:`count_sequence` output (in sequence order), plus COMBINED."""
    result = EvalResult(benchmark)
    for name, (raw, counts) in zip(names, counted):
        result.raw[name] = raw
        result.sequences[name] = public_metrics(raw, counts)
    if names:
        raw = {metric: module.combine([result.raw[n][metric] for n in names]) for metric, module in METRICS.items()}
        result.raw["COMBINED"] = raw
        result.combined = public_metrics(raw, {k: sum(c[k] for _, c in counted) for k in counted[0][1]})
    return result


def count_sequence(seq: SequenceData, benchmark: str, preprocess: bool) -> tuple[dict, dict]:
    """One sequence's TrackEval-named counts and its detection/id counts (the unit a pool worker runs)."""
    prepared = prepare(seq, benchmark, preprocess)
    raw = {name: module.count(prepared) for name, module in METRICS.items()}
    return raw, {"GT_IDs": prepared.num_gt_ids, "IDs": prepared.num_trk_ids,
                 "GT_Dets": prepared.num_gt_dets, "Dets": prepared.num_trk_dets}
