"""``python -m mot_kd.train``: train a teacher/baseline (``--model``) or distil (``--teacher`` + ``--student``).

This is the composition root: it is the one place in ``mot_kd`` that wires the trainer to the tracker and
evaluator (``eval.model_run``) for per-epoch validation; the trainer itself only sees a callback.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import torch
from loguru import logger

from mot_kd.config import resolve_config
from mot_kd.data.augment import AugmentConfig
from mot_kd.data.data_config import DataConfig, load_data_config
from mot_kd.data.dataset import MOTTrainDataset, build_loader
from mot_kd.errors import InputError, cli_entry
from mot_kd.models import JDELoss, build_model, load_checkpoint, read_checkpoint, save_checkpoint
from mot_kd.models.pretrained import build_pretrained, checkpoint_kind
from mot_kd.models.yolo_backbone import resolve_model_cfg
from mot_kd.train.checkpoint import load_training_state
from mot_kd.train.distributed import init_distributed, select_device
from mot_kd.train.settings import resolve_settings
from mot_kd.train.state import seed_everything
from mot_kd.train.trainer import Trainer, TrainSettings
from mot_kd.utils.io import atomic_write_text

FLAG_KEYS = ("epochs", "batch", "nbs", "imgsz", "workers", "seed", "lr0", "id_dim", "optimizer")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m mot_kd.train", description=__doc__.splitlines()[0])
    p.add_argument("--model", help="architecture to train without distillation: yolov5n/s/m/l/x, yolov5s-ghost or a YAML")
    p.add_argument("--student", nargs="+", help="student architecture(s) when distilling (with --teacher); several "
                   "train together from one teacher forward per batch, each in OUT/ARCH/, learning from each other "
                   "too (KD config mutual:)")
    p.add_argument("--teacher", help="teacher: an architecture name (with --teacher-weights) or a checkpoint path")
    p.add_argument("--teacher-weights", help="teacher checkpoint (e.g. runs/teacher/weights/best.pt)")
    p.add_argument("--weights", help="initialise the trained model from a mot-kd checkpoint (fine-tuning) or from an "
                   "ultralytics COCO .pt such as yolov5su.pt (trunk and detection head, person class)")
    p.add_argument("--data", help="data config: YAML path or shipped name (synthetic, mot17)")
    p.add_argument("--kd", default="default", help="KD config: YAML path or shipped name (configs/kd/)")
    p.add_argument("--hyp", help="hyper-parameter YAML merged over configs/train/default.yaml")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override any hyper-parameter")
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch", type=int)
    p.add_argument("--nbs", type=int, help="nominal batch size (gradient accumulation target)")
    p.add_argument("--imgsz", type=int, nargs=2, metavar=("W", "H"))
    p.add_argument("--workers", type=int)
    p.add_argument("--seed", type=int)
    p.add_argument("--lr0", type=float)
    p.add_argument("--id-dim", type=int)
    p.add_argument("--optimizer", choices=("SGD", "AdamW"))
    p.add_argument("--device", default="auto", help="cpu, 0 (cuda:0) or auto")
    p.add_argument("--out", help="run folder (weights/, results.csv, curves.png, val/)")
    p.add_argument("--exist-ok", action="store_true", help="allow --out to hold a previous run (it is overwritten)")
    p.add_argument("--resume", metavar="RUN_DIR", help="continue the run in RUN_DIR from weights/last.pt")
    return p.parse_args(argv)


def job_from_args(args: argparse.Namespace) -> dict:
    """Everything that defines the run, resolved and checked; stored in last.pt so --resume needs nothing else."""
    distil = args.teacher is not None
    if args.student and not distil:  # else --model trains alone, or the error asks for --model
        raise InputError("--student needs --teacher (distillation); to train one model without a teacher use "
                         "--model ARCH")
    if distil and args.model:
        raise InputError("--model trains without distillation; with --teacher use --student for the student")
    students = list(args.student or []) if distil else []
    arch = students[0] if students else args.model
    if not arch:
        raise InputError("say what to train: --model ARCH, or --teacher T --student S to distil")
    folders = [student_folder(a) for a in students]
    if len(set(folders)) != len(folders):
        twice = next(a for a in students if folders.count(student_folder(a)) > 1)
        raise InputError(f"--student: {twice} is given twice; each student trains in its own folder OUT/"
                         f"{student_folder(twice)}")
    if len(students) > 1 and args.weights:
        raise InputError("--weights initialises one model; with several --student each starts fresh (drop --weights)")
    for name in students[1:]:
        resolve_model_cfg(name)
    if not args.data:
        raise InputError("--data is required (e.g. --data synthetic or --data configs/data/mot17.yaml)")
    if not args.out:
        raise InputError("--out is required (the run folder)")
    resolve_model_cfg(arch)  # an unknown architecture or a wrong file is reported before any data is read
    teacher = _absolute(teacher_checkpoint(args.teacher, args.teacher_weights)) if distil else None
    if args.teacher_weights and not distil:
        raise InputError("--teacher-weights needs --teacher")
    if args.weights:
        checkpoint_kind(args.weights)  # mot-kd or ultralytics, told apart without unpickling; loaded once later
    out = Path(args.out)
    if (out / "weights" / "last.pt").exists() and not args.exist_ok:
        raise InputError(f"--out {out}: holds a previous run; use --resume {out} to continue or --exist-ok to overwrite")
    flags = {k: getattr(args, k) for k in FLAG_KEYS}
    flags["imgsz"] = list(args.imgsz) if args.imgsz else None
    settings = resolve_settings(args.hyp, flags, args.set)
    check_validation_settings(settings)
    job = {"arch": arch, "weights": _absolute(args.weights), "data": _absolute(resolve_config(args.data, "data")),
           "settings": settings, "out": str(out), "teacher": teacher,
           "kd": _absolute(resolve_config(args.kd, "kd")) if distil else None}
    if len(students) > 1:
        job["students"] = students
    if distil:
        from mot_kd.kd.multi import mutual_enabled
        from mot_kd.kd.settings import load_kd_config

        mutual_enabled(load_kd_config(job["kd"]), len(students), f"--kd {args.kd}")  # mutual: true with one student
    load_data_config(job["data"])  # its keys and values, before anything is built
    return job


def _absolute(path) -> str | None:
    """Paths stored in last.pt are absolute, so --resume works from any working directory."""
    return None if path is None else str(Path(path).resolve())


def check_validation_settings(settings: dict) -> None:
    """Fail before training, not after the first epoch, on validation settings that cannot work."""
    from eval.evaluate import PUBLIC_KEYS
    from trackers import load_tracker_config

    if settings["val_metric"] not in PUBLIC_KEYS:
        raise InputError(f"val_metric: {settings['val_metric']!r} is not a metric; choose one of "
                         f"{', '.join(PUBLIC_KEYS)}")
    for key in ("conf", "iou"):
        if not 0.0 <= settings[key] <= 1.0:
            raise InputError(f"{key}: must be in [0, 1], got {settings[key]}")
    load_tracker_config(settings["tracker"])


def clear_previous_run(out: Path, student_folders: list[str] = ()) -> None:
    """--exist-ok: remove what a previous run wrote, so no stale best.pt or results survive."""
    for name in ("weights", "val", *student_folders):
        shutil.rmtree(out / name, ignore_errors=True)
    for name in ("results.csv", "curves.png", "job.json"):
        (out / name).unlink(missing_ok=True)


def teacher_checkpoint(teacher: str, weights: str | None) -> str:
    """The teacher's checkpoint path; an architecture name without weights is an error saying what to do."""
    if Path(teacher).suffix == ".pt" or Path(teacher).is_file():
        if weights:
            raise InputError("--teacher is already a checkpoint; drop --teacher-weights")
        weights = teacher
    else:
        resolve_model_cfg(teacher)
    if not weights:
        raise InputError(f"--teacher {teacher} has no weights: train it first, e.g. `python -m mot_kd.train --model "
                         f"{teacher} --data DATA --out runs/teacher`, then pass --teacher-weights "
                         "runs/teacher/weights/best.pt")
    try:
        arch = read_checkpoint(weights)["arch"].get("name")
    except InputError:
        if checkpoint_kind(weights) == "ultralytics":
            flag, name = ("--teacher", "ARCH") if teacher == weights else ("--teacher-weights", teacher)
            raise InputError(f"{flag} {weights}: an ultralytics COCO checkpoint is not a MOT-trained teacher (no "
                             f"identity embedding); train one from it first: `python -m mot_kd.train --model {name} "
                             f"--weights {weights} --data DATA --out runs/teacher`, then pass --teacher-weights "
                             "runs/teacher/weights/best.pt") from None
        raise
    if teacher != weights and arch != teacher:
        logger.warning(f"--teacher {teacher}: the checkpoint {weights} holds a {arch}; using the checkpoint")
    return str(weights)


def prepare_data(data: DataConfig, is_main: bool) -> None:
    if data.needs_generation and is_main:
        from mot_kd.data.synthetic import generate_dataset

        logger.info(f"{data.root}: generating the synthetic set ({data.synthetic})")
        generate_dataset(data.root, **data.synthetic)


def make_validator(data: DataConfig, settings: dict, out: Path):
    """Per-epoch validation: model + tracker on the val sequences, evaluated with the project's evaluator."""
    from eval.model_run import RunSettings, track_and_evaluate

    names = [s.name for s in data.val_sequences()]
    run = RunSettings(tuple(settings["imgsz"]), settings["conf"], settings["iou"], settings["tracker"])

    def validate(model: torch.nn.Module, epoch: int) -> dict:
        result, _, speed = track_and_evaluate(model, data.root, out / "val" / "results", data.val.split,
                                              data.detector, names, run, benchmark=data.benchmark)
        return {**result.combined, "fps": speed["fps"]}

    return validate if names else None


def initial_model(job: dict, arch: str | None = None):
    """Fresh, a mot-kd checkpoint (its own architecture), or ``arch`` (default ``job["arch"]``) started from an
    ultralytics .pt."""
    arch = arch or job["arch"]
    if not job["weights"]:
        return build_model(arch, id_dim=job["settings"]["id_dim"])
    if checkpoint_kind(job["weights"]) == "ultralytics":
        return build_pretrained(arch, job["weights"], id_dim=job["settings"]["id_dim"])
    return load_checkpoint(job["weights"])


def student_folder(arch: str) -> str:
    """A several-student run keeps each student's files in OUT/<this>: the architecture name or YAML stem."""
    return Path(arch).stem


def run(job: dict, device_arg: str, state: dict | None = None, prepare=None) -> list[dict]:
    """Train ``job``; ``prepare(student)``, when given, runs once on the built student (e.g. mot_kd.prune's
    BN-scale sparsity penalty as gradient hooks), so callers reuse this loop instead of writing another."""
    dist = init_distributed(device_arg)
    device = select_device(device_arg, dist)
    s, out = job["settings"], Path(job["out"])
    seed_everything(s["seed"] + dist.rank)
    if s["deterministic"]:
        torch.use_deterministic_algorithms(True, warn_only=True)
    data = load_data_config(job["data"])
    prepare_data(data, dist.is_main)
    dist.barrier()
    data.check()  # sequence names, val gt vs benchmark: before the dataset scan and the first epoch
    augment = None if s["augment"] is None else AugmentConfig.from_dict(s["augment"])
    dataset = MOTTrainDataset.from_sources(data.train_sources(), size=tuple(s["imgsz"]), augment=augment, seed=s["seed"])
    archs = job.get("students") or [job["arch"]]
    students, criteria = [], []
    for arch in archs:
        seed_everything(s["seed"] + dist.rank)  # every student starts from the initialisation it would get alone
        students.append(initial_model(job, arch).to(device).train())
        if prepare is not None:
            prepare(students[-1])
        criteria.append(JDELoss(students[-1], dataset.num_ids, s["id_weighting"], s["id_weight"]).to(device))
    make_kd = None
    if job["teacher"]:
        from mot_kd.kd import KDHooks, MultiStudentKD

        teacher = load_checkpoint(job["teacher"], device)
        sample = torch.zeros(1, 3, s["imgsz"][1], s["imgsz"][0], device=device)
        kd_class = MultiStudentKD if len(archs) > 1 else KDHooks
        make_kd = lambda st: kd_class(teacher, st, job["kd"], sample_input=sample)  # noqa: E731

    def make_loader(epoch: int):
        return build_loader(dataset, s["batch"], shuffle=True, seed=s["seed"], epoch=epoch, workers=s["workers"],
                            rank=dist.rank, world_size=dist.world_size)

    def saver(arch: str):
        def save_student(model, path: Path, meta: dict) -> None:
            save_checkpoint(model, path, num_ids=dataset.num_ids, meta={**meta, "arch": arch, "imgsz": s["imgsz"],
                                                                        "distilled_from": job["teacher"]})
        return save_student

    folders = [student_folder(a) for a in archs]
    validators = [make_validator(data, s, out / f if len(archs) > 1 else out) if dist.is_main else None
                  for f in folders]
    if len(archs) > 1:
        trainer = Trainer(TrainSettings.from_dict(s), make_loader, students, criteria, out, device, dist,
                          make_kd=make_kd, validate=validators, save_student=[saver(a) for a in archs], job=job,
                          names=folders)
    else:
        trainer = Trainer(TrainSettings.from_dict(s), make_loader, students[0], criteria[0], out, device, dist,
                          make_kd=make_kd, validate=validators[0], save_student=saver(archs[0]), job=job)
    if state is not None:
        trainer.load_state_dict(state)
        logger.info(f"resumed {out} after epoch {state['epoch'] + 1} (optimizer step {state['opt_step']})")
    if dist.is_main:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "job.json", json.dumps(job, indent=2))
    return trainer.fit()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.resume:
        given = sorted(f"--{k.replace('_', '-')}" for k, v in vars(args).items()
                       if k not in ("resume", "device", "kd", "set") and v not in (None, False))
        if given or args.set or args.kd != "default":
            raise InputError(f"--resume continues the run exactly as it was started; drop {', '.join(given) or '--set/--kd'}"
                             " (only --device may change)")
        state = load_training_state(Path(args.resume))
        job = state["job"]
        job["out"] = str(Path(args.resume))
    else:
        state, job = None, job_from_args(args)
        if args.exist_ok and not int(os.environ.get("RANK", "0")):
            clear_previous_run(Path(job["out"]), [student_folder(a) for a in job.get("students", [])])
    results = run(job, args.device, state)
    if results:
        where = [Path(job["out"]) / student_folder(a) for a in job["students"]] if "students" in job else [
            Path(job["out"])]
        logger.info(f"done: {len(results)} epochs, weights in {', '.join(str(w / 'weights') for w in where)}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
