"""How hard each KD loss pulls on the student, next to the task loss: values, gradient norms, alignment.

Why: a distillation loss that is 100x weaker than the task loss does nothing, one that is 100x stronger
(or points against it) overrides the detector. Per loss part, as it enters the training total (weights
applied, times the batch size as in the trainer), on real batches of a data config, this reports the
value, the L2 norm of its gradient on each part of the student (backbone, neck, decouple, head,
embedding) and the cosine between that gradient and the task loss's (det + id) on the shared trunk, and, when
pred-diff is on, the cosine to pred-diff's (whether another loss adds a direction pred-diff lacks).

``python -m mot_kd.kd.bench_gradients --teacher T.pt --student yolov5n --data D.yaml [--student-weights S.pt]``
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch
import torch.nn.functional as F

from mot_kd.data.data_config import load_data_config
from mot_kd.data.dataset import MOTTrainDataset, build_loader
from mot_kd.errors import cli_entry
from mot_kd.kd.hooks import KDHooks
from mot_kd.kd.settings import LOSS_NAMES, load_kd_config
from mot_kd.models import JDELoss, build_model, load_checkpoint

GROUPS = ("backbone", "neck", "decouple", "head", "embedding")
TRUNK = ("backbone", "neck")


def single_loss_config(cfg: dict, name: str) -> dict:
    """``cfg`` with only loss ``name`` enabled (same weights), so each loss gets its own graph."""
    return {**cfg, "losses": {n: {**v, "enabled": n == name} for n, v in cfg["losses"].items()}}


def _grads(value: torch.Tensor, params: dict[str, list[torch.nn.Parameter]]) -> dict[str, torch.Tensor]:
    flat = [p for group in GROUPS for p in params[group]]
    grads = torch.autograd.grad(value, flat, retain_graph=True, allow_unused=True)
    out, i = {}, 0
    for group in GROUPS:
        n = len(params[group])
        out[group] = torch.cat([(g if g is not None else torch.zeros_like(p)).flatten()
                                for g, p in zip(grads[i:i + n], params[group])])
        i += n
    return out


def measure(teacher, student, criterion: JDELoss, kd_cfg: dict, batches) -> dict[str, dict[str, float]]:
    """Mean over ``batches`` of value, per-group gradient norm and trunk cosine to the task gradient."""
    hooks = {n: KDHooks(teacher, student, single_loss_config(kd_cfg, n)) for n in LOSS_NAMES
             if kd_cfg["losses"][n]["enabled"]}
    detection_only = JDELoss(student, criterion.num_ids, id_weight=0.0)  # det part of the task loss, in graph
    params = {g: [p for p in getattr(student, g).parameters() if p.requires_grad] for g in GROUPS}
    sums: dict[str, dict[str, float]] = {}
    try:
        for images, targets in batches:
            out = student(images)
            total, _ = criterion(out, targets)
            det, _ = detection_only(out, targets)
            values = {"task": total, "task_det": det, "task_id": total - det}
            values.update({f"kd_{n}": h(images, targets)[0] * images.shape[0] for n, h in hooks.items()})
            task = _grads(total, params)
            task_trunk = torch.cat([task[g] for g in TRUNK]).double()
            trunks = {}
            for name, value in values.items():
                grads = task if name == "task" else _grads(value, params)
                row = sums.setdefault(name, {})
                row["value"] = row.get("value", 0.0) + float(value.detach())
                for group in GROUPS:
                    row[group] = row.get(group, 0.0) + float(grads[group].norm())
                trunk = trunks[name] = torch.cat([grads[g] for g in TRUNK]).double()
                row["cos_task"] = row.get("cos_task", 0.0) + float(F.cosine_similarity(trunk, task_trunk, dim=0))
            for name, trunk in trunks.items() if "kd_pred_diff" in trunks else ():  # does a loss add to pred-diff?
                row = sums[name]
                row["cos_pred_diff"] = row.get("cos_pred_diff", 0.0) + float(
                    F.cosine_similarity(trunk, trunks["kd_pred_diff"], dim=0))
    finally:
        for h in hooks.values():
            h.remove()
    n = len(batches)
    return {name: {k: v / n for k, v in row.items()} for name, row in sums.items()}


def format_table(rows: dict[str, dict[str, float]]) -> str:
    extra = all("cos_pred_diff" in row for row in rows.values())
    header = ["part", "value", *[f"|g| {g}" for g in GROUPS], "cos(trunk, task)", *(["cos(trunk, pred-diff)"] * extra)]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for name, row in rows.items():
        cells = [name, f"{row['value']:.3g}", *[f"{row[g]:.3g}" for g in GROUPS], f"{row['cos_task']:+.2f}",
                 *([f"{row['cos_pred_diff']:+.2f}"] * extra)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m mot_kd.kd.bench_gradients", description=__doc__.splitlines()[0])
    p.add_argument("--teacher", required=True, help="teacher checkpoint")
    p.add_argument("--student", default="yolov5n", help="student architecture (fresh weights unless --student-weights)")
    p.add_argument("--student-weights", help="student checkpoint, e.g. a distilled run's best.pt")
    p.add_argument("--data", required=True, help="data config (its train sequences are used)")
    p.add_argument("--kd", default="default", help="KD config (YAML path or shipped name)")
    p.add_argument("--imgsz", type=int, nargs=2, default=(320, 192), metavar=("W", "H"))
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    torch.manual_seed(args.seed)
    teacher = load_checkpoint(Path(args.teacher))
    data = load_data_config(args.data)
    dataset = MOTTrainDataset.from_sources(data.train_sources(), size=tuple(args.imgsz), seed=args.seed)
    student = (load_checkpoint(Path(args.student_weights)) if args.student_weights else
               build_model(args.student, id_dim=teacher.id_dim)).train()
    criterion = JDELoss(student, dataset.num_ids)
    loader = build_loader(dataset, args.batch, shuffle=True, seed=args.seed, workers=0)
    batches = [batch for batch, _ in zip(loader, range(args.batches))]
    print(format_table(measure(teacher, student, criterion, load_kd_config(args.kd), batches)))
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
