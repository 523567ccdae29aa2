"""The prune job: optional sparsity training, K pruning steps to the FLOPs target with short fine-tunes, then
the last fine-tune twice from the same pruned model (without and with distillation from the unpruned one).

Everything is written into a temporary folder that replaces ``--out`` only when the job finished, so a bad
input or a failure leaves nothing behind. The seed importance's weight ``w`` is chosen at each step among
``w``, ``w - dw`` and ``w + dw`` by the validation fitness of the pruned (not yet fine-tuned) candidates, ties
broken by how close each stays to the model it was pruned from (:func:`output_gap`).
"""
from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from loguru import logger
from tqdm import tqdm

from mot_kd.data.data_config import load_data_config
from mot_kd.data.dataset import MOTTrainDataset, build_loader
from mot_kd.errors import InputError
from mot_kd.models import JDEModel, load_checkpoint, save_checkpoint
from mot_kd.models.info import model_card
from mot_kd.prune.finetune import FineTune
from mot_kd.prune.importance import Calibration, importance_for
from mot_kd.prune.report import summary_markdown
from mot_kd.prune.structure import check_reachable, gflops, prune_to_gflops, pruned_copy
from mot_kd.train.cli import make_validator, prepare_data
from mot_kd.train.distributed import DistContext, select_device
from mot_kd.utils.io import atomic_dir, atomic_write_text


@dataclass(frozen=True)
class PruneJob:
    weights: Path  # the mot-kd checkpoint to prune (also the KD teacher unless ``teacher`` is given)
    data: str  # data config path
    target: float  # fraction of the original GFLOPs to keep, in (0, 1)
    out: Path
    settings: dict  # resolved trainer settings (imgsz, batch, val_metric, ...)
    steps: int = 1
    importance: str = "seed"  # seed | bn | l1
    w: float = 0.5  # seed importance: initial weight of the BN-scale term
    w_step: float = 0.25
    sparsity_epochs: int = 0
    sparsity: float = 1e-3  # lambda of the L1 penalty on BN scales
    epochs: int = 1  # fine-tune after each intermediate step
    kd_epochs: int = 2  # the last fine-tune (with and without KD)
    kd: str | None = None  # KD config path
    calib_batches: int = 4
    teacher: Path | None = None  # the unpruned model, when ``weights`` is already a sparsity-trained copy of it
    round_to: int | None = None  # keep channel counts multiples of this
    device: str = "cpu"


def run_prune(job: PruneJob) -> list[dict]:
    """Run ``job``; returns the summary rows (also in ``out/summary.md`` and ``out/summary.json``)."""
    original = load_checkpoint(job.weights)
    imgsz = tuple(job.settings["imgsz"])
    base = gflops(original, imgsz)
    what = f"--target-flops {job.target}"
    check_reachable(original, importance_for("bn"), job.target * base, imgsz, what)  # before any training
    data = load_data_config(job.data)
    prepare_data(data, True)
    data.check()
    device = select_device(job.device, DistContext())
    with atomic_dir(job.out) as tmp:
        validate = make_validator(data, job.settings, tmp / "val")
        if validate is None:
            logger.warning(f"{job.data}: no validation sequences: w follows the output gap alone and the summary has "
                           "no accuracy")
        tune = FineTune(str(original.arch.get("name")), job.data, job.settings, job.device)
        current = job.weights
        if job.sparsity_epochs:
            logger.info(f"sparsity training: {job.sparsity_epochs} epochs, L1 {job.sparsity} on BN scales")
            current = tune(current, tmp / "sparsity", job.sparsity_epochs, sparsity=job.sparsity)
        batches = calibration_batches(data, job, device) if job.importance == "seed" else []
        w, log = job.w, []
        for k in tqdm(range(1, job.steps + 1), desc="prune steps"):
            goal = base * (1 - (1 - job.target) * k / job.steps)
            model = load_checkpoint(current, device)
            pruned, w, row = prune_step(model, goal, imgsz, job, batches, w, validate, what)
            log.append({"step": k, **row})
            logger.info(f"step {k}/{job.steps}: {row['gflops']:.4g} GFLOPs (goal {goal:.4g}), ratio {row['ratio']:.3f}"
                        + (f", w {w:.2f}" if job.importance == "seed" else ""))
            current = tmp / f"step{k}" / "pruned.pt"
            save_checkpoint(pruned, current, num_ids=original.num_ids,
                            meta={**original.meta, "pruned_from": str(job.weights), "prune_step": k})
            if k < job.steps:
                current = tune(current, tmp / f"step{k}" / "finetune", job.epochs)
        plain = tune(current, tmp / "final_no_kd", job.kd_epochs)
        distilled = tune(current, tmp / "final_kd", job.kd_epochs, teacher=job.teacher or job.weights, kd=job.kd)
        shutil.copyfile(plain, tmp / "pruned_no_kd.pt")
        shutil.copyfile(distilled, tmp / "pruned.pt")
        rows = [{**summary_row(label, path, imgsz, device, validate), "path": str(shown)}
                for label, path, shown in (("original", job.teacher or job.weights, job.teacher or job.weights),
                                           ("pruned, no KD", plain, job.out / "pruned_no_kd.pt"),
                                           ("pruned + KD", distilled, job.out / "pruned.pt"))]
        atomic_write_text(tmp / "summary.json", json.dumps({"job": {**asdict(job), "weights": str(job.weights),
                                                                    "teacher": str(job.teacher), "out": str(job.out)},
                                                            "steps": log, "models": rows}, indent=2))
        atomic_write_text(tmp / "summary.md", summary_markdown(rows, log, imgsz, device))
    return rows


def calibration_batches(data, job: PruneJob, device: torch.device) -> list[torch.Tensor]:
    """A few training images (no augmentation) for the independence statistics."""
    s = job.settings
    dataset = MOTTrainDataset.from_sources(data.train_sources(), size=tuple(s["imgsz"]), augment=None, seed=s["seed"])
    loader = build_loader(dataset, s["batch"], shuffle=True, seed=s["seed"])
    return [images.to(device) for images, _ in itertools.islice(loader, job.calib_batches)]


def prune_step(model: JDEModel, goal: float, imgsz: tuple[int, int], job: PruneJob, batches: list[torch.Tensor],
               w: float, validate, what: str) -> tuple[JDEModel, float, dict]:
    """Prune ``model`` to ``goal`` GFLOPs; with the seed importance, also pick the next ``w``."""
    if job.importance != "seed":
        pruned, ratio = prune_to_gflops(model, importance_for(job.importance), goal, imgsz, what,
                                        round_to=job.round_to)
        return pruned, w, {"ratio": ratio, "gflops": gflops(pruned, imgsz)}
    calibration = Calibration.measure(model, batches)
    moves = sorted({min(max(w + d, 0.0), 1.0) for d in (-job.w_step, job.w_step)} - {w})
    choices = [w, *moves]  # the current w first: it wins full ties, so w only moves when a measure says so
    pruned, ratio = prune_to_gflops(model, importance_for("seed", calibration, w), goal, imgsz, what,
                                    round_to=job.round_to)
    candidates = [pruned] + [pruned_copy(model, importance_for("seed", calibration, c), ratio, imgsz, job.round_to)
                             for c in moves]
    fitness = [validate(c, 0).get(job.settings["val_metric"], 0.0) if validate else 0.0 for c in candidates]
    gaps = [output_gap(c, model, batches) for c in candidates]
    best = max(range(len(choices)), key=lambda i: (fitness[i], -gaps[i], -i))
    row = {"ratio": ratio, "gflops": gflops(candidates[best], imgsz), "w": choices[best],
           "w_fitness": {f"{c:.2f}": f for c, f in zip(choices, fitness)},
           "w_output_gap": {f"{c:.2f}": g for c, g in zip(choices, gaps)}}
    return candidates[best], choices[best], row


@torch.no_grad()
def output_gap(candidate: JDEModel, reference: JDEModel, batches: list[torch.Tensor]) -> float:
    """Mean squared difference of the head outputs and unit embeddings from the unpruned ``reference``.

    Why a second measure: right after pruning, before any fine-tune, a small model often tracks nothing at all
    whatever ``w`` is (validation fitness 0 for every candidate, measured on the smoke set); the candidate that
    stays closest to the model it was pruned from then breaks the tie.
    """
    gap = 0.0
    for images in batches:
        a, b = candidate.eval()(images), reference.eval()(images)
        gap += sum(float((x - y).pow(2).mean()) for x, y in zip(a["feats"], b["feats"]))
        unit = [torch.nn.functional.normalize(o["embedding"], dim=1) for o in (a, b)]
        gap += float((unit[0] - unit[1]).pow(2).sum(1).mean())
    return gap / max(len(batches), 1)


def summary_row(label: str, path: Path, imgsz: tuple[int, int], device: torch.device, validate) -> dict:
    """Params, GFLOPs, tracking FPS and IDF1/MOTA/HOTA of one checkpoint on the validation sequences."""
    model = load_checkpoint(path, device)
    card = model_card(model, imgsz)
    metrics = validate(model, 0) if validate else {}
    return {"model": label, "params": card["params"], "gflops": card["gflops"],
            **{k: metrics.get(k) for k in ("fps", "IDF1", "MOTA", "HOTA")}}


def check_target(target: float) -> float:
    if not 0.0 < target < 1.0:
        raise InputError(f"--target-flops {target}: must be in (0, 1), the fraction of the original FLOPs to keep "
                         "(e.g. 0.5)")
    return target
