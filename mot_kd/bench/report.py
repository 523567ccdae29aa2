"""The bench report: mean ± std per configuration, gap closed by KD, and the JSON / markdown / PNG files.

Everything is computed from the cached runs' eval records only (date and machine included), so
``--report-only`` rebuilds the same JSON byte for byte.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mot_kd.bench.presets import METRICS, SETS, Preset  # noqa: E402
from mot_kd.utils.io import atomic_path, atomic_write_text  # noqa: E402

GAP_METRICS = ("IDF1", "MOTA", "MT", "HOTA")
CARD = ("params_M", "GFLOPs", "FPS")
PLOT_METRICS = ("IDF1", "MOTA", "HOTA")
LABELS = {"none": "no KD", "all": "ERC + key-feature + pred-diff", "erc": "ERC only", "key_feature": "key-feature only",
          "pred_diff": "pred-diff only", "no_erc": "all but ERC", "no_key_feature": "all but key-feature",
          "no_pred_diff": "all but pred-diff", "logit": "logit KD (baseline)", "fitnet": "FitNet (baseline)",
          "cwd": "CWD (baseline)", "fgd": "FGD (baseline)", "embedding": "embedding KD (baseline)",
          "best_baselines": "FGD + logit + embedding KD (baselines)",
          "fused": "three losses + fused-model", "mutual": "three losses + mutual learning (trained together)"}
SIGNIFICANCE_METRICS = ("IDF1", "MOTA", "IDSW")
SIGNIFICANCE_NOTE = ("significance[arch][configuration][reference][metric]: diff = difference of means (row - "
                     "reference), pooled_std = sqrt(((n_a-1) s_a^2 + (n_b-1) s_b^2) / (n_a + n_b - 2)), ratio = diff / "
                     "pooled_std, t = diff / (pooled_std sqrt(1/n_a + 1/n_b)) (Student's t, n_a + n_b - 2 dof; with "
                     "3 + 3 seeds |t| > 2.78, i.e. |ratio| > 2.27, is p < 0.05 two-sided); null where a side has one "
                     "run "
                     "or the pooled std is 0. References: none (no KD) and all (our three losses)")
GAP_NOTE = ("gap_closed = (mean KD student - mean student) / (mean teacher - mean student) per metric; null where "
            "teacher and student means are equal (gap 0: the ratio is undefined)")


VERSUS_NOTE = ("versus[student]: the preset's pairs of architectures; per configuration both trained, compare(row, "
               "reference) as in significance (diff = row mean - reference mean, pooled seed std, ratio, t)")
STUDENT_CHECKPOINT = {"best": "best.pt (their best validation on the tune set)",
                      "last": "last epoch's model (last_student.pt)"}
SPEED_NOTE = ("speed: tracking FPS (model + association, decoding excluded) of each architecture timed alone after "
              "all runs (OUT/speed.json); configurations[*].mean.FPS is the mean of the runs' own timings, taken "
              "while other bench runs may have shared the cores")


def mean_std(values: list[float]) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof 1; 0.0 for a single run)."""
    arr = np.asarray(values, dtype=float)
    return float(arr.mean()), float(arr.std(ddof=1)) if len(arr) > 1 else 0.0


def gap_closed(teacher: float, student: float, kd: float) -> float | None:
    """Fraction of the teacher-student gap the KD student closes; None when the gap is 0 or a value is NaN."""
    gap = teacher - student
    if not all(math.isfinite(v) for v in (teacher, student, kd)) or abs(gap) < 1e-12:
        return None
    return (kd - student) / gap


def group_key(record: dict) -> str:
    return "teacher" if record["role"] == "teacher" else f"{record['arch']}/{record['configuration']}"


def aggregate(records: list[dict]) -> dict[str, dict]:
    """Per configuration (teacher, ``<student>/<configuration>``): runs, seeds, mean and std of each metric."""
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(group_key(record), []).append(record)
    out = {}
    for key, members in groups.items():
        stats = {m: mean_std([r[m] for r in members]) for m in (*METRICS, *CARD)}
        out[key] = {"arch": members[0]["arch"], "configuration": members[0]["configuration"], "n": len(members),
                    "seeds": sorted(r["seed"] for r in members), "mean": {m: s[0] for m, s in stats.items()},
                    "std": {m: s[1] for m, s in stats.items()}}
    return out


def gaps(groups: dict[str, dict]) -> dict[str, dict]:
    """``{student: {configuration: {metric: gap closed or None}}}`` for every KD configuration."""
    if "teacher" not in groups:
        return {}
    teacher = groups["teacher"]["mean"]
    out: dict[str, dict] = {}
    for key, group in groups.items():
        base = groups.get(f"{group['arch']}/none")
        if key == "teacher" or group["configuration"] == "none" or base is None:
            continue
        out.setdefault(group["arch"], {})[group["configuration"]] = {
            m: gap_closed(teacher[m], base["mean"][m], group["mean"][m]) for m in GAP_METRICS}
    return out


def compare(a: dict, b: dict, metric: str) -> dict:
    """Difference of means of two configurations and its size against their pooled seed spread."""
    diff, dof = a["mean"][metric] - b["mean"][metric], a["n"] + b["n"] - 2
    pooled = math.sqrt(((a["n"] - 1) * a["std"][metric] ** 2 + (b["n"] - 1) * b["std"][metric] ** 2) / dof) \
        if dof > 0 else 0.0
    if a["n"] < 2 or b["n"] < 2 or not pooled > 0:
        return {"diff": diff, "pooled_std": None, "ratio": None, "t": None}
    return {"diff": diff, "pooled_std": pooled, "ratio": diff / pooled,
            "t": diff / (pooled * math.sqrt(1 / a["n"] + 1 / b["n"]))}


def significance(groups: dict[str, dict]) -> dict[str, dict]:
    """``{student: {configuration: {reference: {metric: compare(...)}}}}`` against no KD and our three losses."""
    out: dict[str, dict] = {}
    for key, group in groups.items():
        if key == "teacher" or group["configuration"] == "none":
            continue
        refs = {r: groups[f"{group['arch']}/{r}"] for r in ("none", "all")
                if f"{group['arch']}/{r}" in groups and r != group["configuration"]}
        out.setdefault(group["arch"], {})[group["configuration"]] = {
            r: {m: compare(group, ref, m) for m in SIGNIFICANCE_METRICS} for r, ref in refs.items()}
    return out


def versus(groups: dict[str, dict], pairs: dict[str, str]) -> dict[str, dict]:
    """``{student: {"reference", "configurations": {configuration: {metric: compare(...)}}}}`` for the preset's
    ``versus`` pairs, over the configurations both architectures have runs of (row minus reference)."""
    out = {}
    for arch, ref in pairs.items():
        rows = {g["configuration"]: g for k, g in groups.items() if k != "teacher" and g["arch"] == arch}
        out[arch] = {"reference": ref, "configurations": {
            conf: {m: compare(g, groups[f"{ref}/{conf}"], m) for m in SIGNIFICANCE_METRICS}
            for conf, g in rows.items() if f"{ref}/{conf}" in groups}}
    return out


def schedule_statement(preset: Preset) -> str:
    """Which protocol a preset measures: equal schedules (capacity gap only) or a short student schedule."""
    t, s = preset.teacher["epochs"], preset.student_epochs
    if t == s:
        return (f"equal schedule: teacher and students train {s} epoch{'s' * (s != 1)} on the same data, so the "
                "teacher-student "
                "gap is one of capacity and KD is measured against a student trained as long as its teacher")
    return (f"short student schedule: the teacher trains {t} epochs, the students {s}; the gap mixes capacity with "
            "training length, so KD may also be measured speeding up convergence")


def build_report(preset: Preset, records: list[dict], planned: int, tuning: dict | None,
                 speed: dict | None = None) -> dict:
    """The whole report; ``speed`` (OUT/speed.json) gives each architecture's FPS timed alone."""
    groups = aggregate(records)
    d = preset.data
    return {
        "preset": preset.name, "preset_file": f"configs/bench/{preset.path.name}",
        "machine": "; ".join(sorted({r["machine"] for r in records})),
        "date": max((r["finished"] for r in records), default=None),
        "runs_done": len(records), "runs_planned": planned,
        "compute_h": sum(r["train_s"] + r["eval_s"] for r in records) / 3600,
        "data": {"size": [d["width"], d["height"]], "frames_per_sequence": d["frames"], "scene": d["scene"],
                 **{which: {**d[which], "sequences": preset.sequence_names(which)} for which in SETS}},
        "protocol": "train on the train set; the tune set chooses the teacher's best.pt and the KD weights "
                    f"(--tune); students are evaluated with their {STUDENT_CHECKPOINT[preset.student_checkpoint]}; "
                    "every final model is evaluated once on the val set (full split); same seed => same data "
                    "order, schedule and augmentation for every configuration",
        "imgsz": list(preset.imgsz),
        "tuning": tuning_statement(preset, tuning),
        "speed": speed or {}, "speed_note": SPEED_NOTE,
        "schedule": schedule_statement(preset),
        "configurations": groups, "gap_closed": gaps(groups), "gap_closed_note": GAP_NOTE,
        "significance": significance(groups), "significance_note": SIGNIFICANCE_NOTE,
        **({"versus": versus(groups, preset.versus), "versus_note": VERSUS_NOTE} if preset.versus else {}),
        "runs": records,
    }


def tuning_statement(preset: Preset, tuning: dict | None) -> dict:
    if tuning is None:
        return {"tuned": False, "what": "nothing tuned: KD weights/temperatures are configs/kd/default.yaml merged "
                                        f"with the preset's kd section {preset.kd}"}
    return {"tuned": True, "what": tuning["tuned"], "on": tuning["tuned_on"], "chosen": tuning["chosen"],
            "chosen_overrides": tuning["chosen_overrides"], "select_by": tuning["select_by"]}


def _cell(group: dict, metric: str) -> str:
    mean, std = group["mean"][metric], group["std"][metric]
    if metric in ("MT", "IDSW"):
        return f"{mean:.1f} ± {std:.1f}"
    return f"{100 * mean:.1f} ± {100 * std:.1f}"


def _speed_sentence(speed: dict) -> str:
    if not speed:
        return " FPS: model + association, the mean of each run's own timing."
    row = next(iter(speed.values()))
    return (f" FPS (alone): model + association (decoding excluded), each architecture timed alone after the runs on "
            f"{row['sequence']} with {row['torch_threads']} torch thread(s).")


def format_markdown(report: dict) -> str:
    groups = report["configurations"]
    lines = [f"# KD benchmark: preset `{report['preset']}`", "",
             (f"Measured on {report['machine']}, {report['date']}, preset `{report['preset']}` "
              f"({report['preset_file']}), input {report['imgsz'][0]}x{report['imgsz'][1]}; "
              f"{report['runs_done']}/{report['runs_planned']} runs. Mean ± std over seeds (n runs); IDF1, MOTA, "
              "HOTA in %, MT and IDSW counts; evaluated once on the val set "
              f"({', '.join(report['data']['val']['sequences'])}, people never seen in training or tuning)."
              + _speed_sentence(report["speed"]) + f" Protocol: {report['protocol']}."), "",
             f"Schedule: {report['schedule']}.", "",
             "| model | KD | n | params (M) | GFLOPs | FPS" + (" (alone)" if report["speed"] else "") +
             " | IDF1 | MOTA | MT | HOTA | IDSW |",
             "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for key, g in groups.items():
        model = f"teacher {g['arch']}" if key == "teacher" else f"student {g['arch']}"
        kd = "-" if key == "teacher" else LABELS[g["configuration"]]
        m = g["mean"]
        fps = report["speed"].get(g["arch"], {"fps": m["FPS"]})["fps"]
        lines.append(f"| {model} | {kd} | {g['n']} | {m['params_M']:.2f} | {m['GFLOPs']:.2f} | {fps:.1f} | "
                     + " | ".join(_cell(g, metric) for metric in METRICS) + " |")
    lines += ["", ("Gap closed = (KD student − student) / (teacher − student), on the means "
                   "(n/a: teacher and student equal, the ratio is undefined):"), "",
              "| student | KD | " + " | ".join(GAP_METRICS) + " |", "| --- | --- |" + " ---: |" * len(GAP_METRICS)]
    for arch, configs in report["gap_closed"].items():
        for conf, values in configs.items():
            cells = ["n/a" if v is None else f"{100 * v:.0f}%" for v in values.values()]
            lines.append(f"| {arch} | {LABELS[conf]} | " + " | ".join(cells) + " |")
    lines += _significance_lines(report) + _versus_lines(report)
    t = report["tuning"]
    lines += ["", f"Tuning: {t['what']}" + (f"; tuned on the {t['on']}; chosen point `{t['chosen']}` "
                                            f"{json.dumps(t['chosen_overrides'])}" if t["tuned"] else ".")]
    return "\n".join(lines) + "\n"


def _delta(c: dict, metric: str) -> str:
    scale = 1 if metric == "IDSW" else 100
    ratio = "" if c["ratio"] is None else f" ({c['ratio']:+.1f}σ)"
    return f"{scale * c['diff']:+.1f}{ratio}"


def _significance_lines(report: dict) -> list[str]:
    """Per row: difference of means to no KD and to our three losses, in units of the pooled seed std."""
    refs = ("none", "all")
    lines = ["", ("Significance: difference of means (IDF1/MOTA in points, IDSW in counts) and, in brackets, that "
                  "difference over the pooled seed std (σ); with 3 + 3 seeds |Δ/σ| > 2.27 is p < 0.05 "
                  "(Student's t):"),
             "", "| student | KD | " + " | ".join(f"{m} vs {'no KD' if r == 'none' else 'ours'}"
                                                   for r in refs for m in SIGNIFICANCE_METRICS) + " |",
             "| --- | --- |" + " ---: |" * (len(refs) * len(SIGNIFICANCE_METRICS))]
    for arch, configs in report["significance"].items():
        for conf, by_ref in configs.items():
            cells = [_delta(by_ref[r][m], m) if r in by_ref else "–" for r in refs for m in SIGNIFICANCE_METRICS]
            lines.append(f"| {arch} | {LABELS[conf]} | " + " | ".join(cells) + " |")
    return lines


def _versus_lines(report: dict) -> list[str]:
    """Per pair and shared configuration: the difference of means and, in brackets, over the pooled seed std."""
    if not report.get("versus"):
        return []
    lines = ["", ("Architectures compared (preset `versus`): difference of means, row − reference, in the same "
                  "configuration (IDF1/MOTA in points, IDSW in counts; Δ/σ in brackets):"), "",
             "| student | reference | KD | " + " | ".join(SIGNIFICANCE_METRICS) + " |",
             "| --- | --- | --- |" + " ---: |" * len(SIGNIFICANCE_METRICS)]
    for arch, pair in report["versus"].items():
        for conf, by_metric in pair["configurations"].items():
            lines.append(f"| {arch} | {pair['reference']} | {LABELS[conf]} | "
                         + " | ".join(_delta(by_metric[m], m) for m in SIGNIFICANCE_METRICS) + " |")
    return lines


def plot(report: dict, path: Path) -> None:
    """One panel per student: teacher and every configuration, IDF1/MOTA/HOTA bars with ±std error bars."""
    groups = report["configurations"]
    students = sorted({g["arch"] for k, g in groups.items() if k != "teacher"})
    fig, axes = plt.subplots(1, max(1, len(students)), figsize=(6.4 * max(1, len(students)), 4.6), squeeze=False)
    for ax, arch in zip(axes[0], students):
        bars = [(f"teacher {groups['teacher']['arch']}", groups["teacher"])] if "teacher" in groups else []
        bars += [(LABELS[g["configuration"]], g) for k, g in groups.items() if k != "teacher" and g["arch"] == arch]
        width = 0.8 / len(bars)
        colors = plt.get_cmap("tab20" if len(bars) > 10 else "tab10").colors  # tab10 repeats after 10 bars
        for i, (label, g) in enumerate(bars):
            xs = [m + (i - (len(bars) - 1) / 2) * width for m in range(len(PLOT_METRICS))]
            ax.bar(xs, [100 * g["mean"][m] for m in PLOT_METRICS], width,
                   yerr=[100 * g["std"][m] for m in PLOT_METRICS],
                   capsize=2, color=colors[i % len(colors)], label=f"{label} (n={g['n']})")
        ax.set_xticks(range(len(PLOT_METRICS)), PLOT_METRICS)
        ax.set_ylabel("% on the val set (mean ± std)")
        ax.set_title(f"student {arch}", fontsize=10)
        ax.legend(fontsize=6, ncol=3, loc="upper center", bbox_to_anchor=(0.5, -0.1), frameon=False)
    fig.suptitle(f"mot-kd KD bench, preset {report['preset']} ({report['date']})", fontsize=10)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)


def json_safe(value):
    """NaN/inf -> None (null) at any depth: strict JSON, and a missing value reads as missing."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_safe(v) for v in value]
    return value


def write_report(report: dict, out: Path) -> dict[str, Path]:
    """Write OUT/kd_bench.json, kd_bench.md and kd_bench.png; returns their paths."""
    out = Path(out)
    paths = {"json": out / "kd_bench.json", "md": out / "kd_bench.md", "png": out / "kd_bench.png"}
    atomic_write_text(paths["json"], json.dumps(json_safe(report), indent=1, allow_nan=False) + "\n")
    atomic_write_text(paths["md"], format_markdown(report))
    plot(report, paths["png"])
    return paths
