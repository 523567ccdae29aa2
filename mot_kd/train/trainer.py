"""The training loop shared by plain training (teacher or baseline student) and distillation.

The loop knows nothing about data formats, trackers or evaluators: it receives a loader factory, the
student, its criterion, an optional :class:`~mot_kd.kd.KDHooks` and an optional ``validate(model, epoch)``
callback. One optimizer step happens every ``accumulate`` batches (nominal batch ``nbs``); the learning
rate is a pure function of the optimizer-step counter, data order and augmentation are pure functions of
(seed, epoch, index), and RNG states are checkpointed, so ``--resume`` after a kill continues exactly.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import torch
from loguru import logger
from torch import nn
from tqdm import tqdm
from ultralytics.utils.torch_utils import ModelEMA

from mot_kd.errors import InputError
from mot_kd.train import checkpoint as ckpt
from mot_kd.train.distributed import DistContext
from mot_kd.train.optim import WarmupCosine, build_optimizer
from mot_kd.train.report import plot_curves, write_results_csv
from mot_kd.train.state import rng_state, set_rng_state


class TrainingAborted(InputError):
    """Training cannot go on (e.g. too many non-finite losses in a row); message says why."""


class TrainStep(nn.Module):
    """Everything trainable in one module (students, criteria's ID classifiers, KD adapters) so one
    DistributedDataParallel wrapper synchronises all of it; the teacher lives inside the KD owner un-registered.

    ``kd`` is a :class:`~mot_kd.kd.KDHooks` (one student) or a :class:`~mot_kd.kd.MultiStudentKD` (several: every
    student runs its forward first, then one kd() call gives each its loss from one teacher forward).
    """

    def __init__(self, students: list[nn.Module], criteria: list[nn.Module], kd: nn.Module | None):
        super().__init__()
        self.students, self.criteria, self.kd = nn.ModuleList(students), nn.ModuleList(criteria), kd

    def forward(self, images: torch.Tensor, targets: torch.Tensor, epoch: int) -> list[tuple[torch.Tensor, dict]]:
        results = [(loss, dict(parts)) for loss, parts in
                   (criterion(student(images), targets) for student, criterion in zip(self.students, self.criteria))]
        if self.kd is None:
            return results
        kd = self.kd(images, targets, epoch=epoch)
        out = []
        for (loss, parts), (kd_loss, kd_parts) in zip(results, kd if isinstance(kd, list) else [kd]):
            parts.update({f"kd_{k}" if not k.startswith("kd") else k: v for k, v in kd_parts.items()})
            out.append((loss + kd_loss * images.shape[0], parts))  # JDELoss sums over images; KD is a batch mean
        return out


@dataclass
class TrainSettings:
    epochs: int
    batch: int
    nbs: int
    optimizer: str
    lr0: float
    lrf: float
    momentum: float
    weight_decay: float
    warmup_epochs: float
    warmup_bias_lr: float
    warmup_momentum: float
    grad_clip: float
    ema: bool
    ema_decay: float
    ema_tau: float
    amp: bool
    val_interval: int
    val_metric: str
    max_bad_steps: int

    @classmethod
    def from_dict(cls, values: dict) -> "TrainSettings":
        names = set(cls.__dataclass_fields__)
        missing = sorted(names - values.keys())
        if missing:
            raise InputError(f"train settings: missing keys {', '.join(missing)}")
        return cls(**{k: values[k] for k in names})


@dataclass
class _Member:
    """One student's share of a run: its model, criterion, EMA, optimizer, scaler, folder and results."""

    name: str
    student: nn.Module
    criterion: nn.Module
    out: Path
    validate: Callable[[nn.Module, int], dict] | None
    save_student: Callable[[nn.Module, Path, dict], None] | None
    ema: ModelEMA | None = None
    optimizer: torch.optim.Optimizer | None = None
    scaler: torch.amp.GradScaler | None = None
    best_fitness: float = -math.inf
    results: list = field(default_factory=list)

    @property
    def weights(self) -> Path:
        return self.out / "weights"

    def state_dict(self) -> dict:
        return {"best_fitness": self.best_fitness, "results": self.results, "student": self.student.state_dict(),
                "criterion": self.criterion.state_dict(), "optimizer": self.optimizer.state_dict(),
                "scaler": self.scaler.state_dict(), "ema": self.ema.ema.state_dict() if self.ema else None,
                "ema_updates": self.ema.updates if self.ema else 0}

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.criterion.load_state_dict(state["criterion"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema and state.get("ema") is not None:
            self.ema.ema.load_state_dict(state["ema"])
            self.ema.updates = state["ema_updates"]
        self.best_fitness, self.results = state["best_fitness"], list(state["results"])


class Trainer:
    """One student (``student``/``criterion``/``validate``/``save_student`` single objects, files in ``out``) or
    several (lists of them and their ``names``: each student's files in ``out/NAME``, one ``make_kd(students)``
    and one training state ``out/weights/last.pt`` for all, so a kill never leaves them at different epochs)."""

    def __init__(self, settings: TrainSettings, make_loader: Callable[[int], object], student, criterion, out: Path,
                 device: torch.device, dist: DistContext, make_kd: Callable | None = None, validate=None,
                 save_student=None, job: dict | None = None, names: list[str] | None = None):
        self.s, self.make_loader, self.out, self.device, self.dist = settings, make_loader, Path(out), device, dist
        self.job = job or {}
        self.multi = names is not None
        if self.multi:
            if not (len(names) == len(student) == len(criterion) == len(validate) == len(save_student)) or len(
                    set(names)) != len(names):
                raise InputError("Trainer: names, students, criteria, validate and save_student must be lists of "
                                 "one entry per student, names distinct")
            self.members = [_Member(n, st, c, self.out / n, v, sv)
                            for n, st, c, v, sv in zip(names, student, criterion, validate, save_student)]
        else:
            self.members = [_Member("", student, criterion, self.out, validate, save_student)]
        for m in self.members:  # EMA before KD: its deep copy starts hook-free (KD's hooks are inert in copies anyway)
            m.ema = ModelEMA(m.student, decay=settings.ema_decay, tau=settings.ema_tau) if settings.ema else None
        students = [m.student for m in self.members]
        self.kd = kd = (make_kd(students if self.multi else students[0]) if make_kd is not None else None)
        self.step_module = dist.wrap(TrainStep(students, [m.criterion for m in self.members], kd).to(device))
        world_batch = settings.batch * dist.world_size
        self.accumulate = max(round(settings.nbs / world_batch), 1)
        weight_decay = settings.weight_decay * world_batch * self.accumulate / settings.nbs
        self.use_amp = settings.amp and device.type == "cuda"
        for i, m in enumerate(self.members):
            own_kd = [] if kd is None else [kd.members[i] if self.multi else kd]  # its adapters
            m.optimizer = build_optimizer([m.student, m.criterion, *own_kd], settings.optimizer, settings.lr0,
                                          settings.momentum, weight_decay)
            m.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.batches_per_epoch = len(make_loader(0))
        steps_per_epoch = math.ceil(self.batches_per_epoch / self.accumulate)
        self.schedule = WarmupCosine(settings.lr0, settings.lrf, settings.momentum, settings.epochs * steps_per_epoch,
                                     round(settings.warmup_epochs * steps_per_epoch), settings.warmup_bias_lr,
                                     settings.warmup_momentum)
        self.start_epoch, self.opt_step = 0, 0
        self.pending_validation: int | None = None  # an epoch whose validation failed: re-run first on resume
        self.weights = self.out / "weights"

    @property
    def student(self) -> nn.Module:
        """The (first) student."""
        return self.members[0].student

    @property
    def results(self) -> list[dict]:
        """The (first) student's per-epoch rows."""
        return self.members[0].results

    # ----------------------------------------------------------------- state
    def state_dict(self, epoch: int, pending_validation: bool = False) -> dict:
        common = {"job": self.job, "epoch": epoch, "opt_step": self.opt_step,
                  "pending_validation": epoch if pending_validation else None,
                  "kd": self.kd.state_dict() if self.kd is not None else None, "rng": rng_state()}
        if self.multi:
            return {**common, "students": [{"name": m.name, **m.state_dict()} for m in self.members]}
        return {**common, **self.members[0].state_dict()}

    def load_state_dict(self, state: dict) -> None:
        saved = state["students"] if self.multi else [state]
        if self.multi and [s["name"] for s in saved] != [m.name for m in self.members]:
            raise InputError(f"training state holds students {[s['name'] for s in saved]}, this run "
                             f"{[m.name for m in self.members]}")
        for m, member_state in zip(self.members, saved):
            m.load_state_dict(member_state)
        if self.kd is not None and state.get("kd") is not None:
            self.kd.load_state_dict(state["kd"])
        self.start_epoch, self.opt_step = state["epoch"] + 1, state["opt_step"]
        self.pending_validation = state.get("pending_validation")
        set_rng_state(state["rng"])

    # ----------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        if self.pending_validation is not None:  # resumed after a failed validation: that epoch's runs first
            epoch, self.pending_validation = self.pending_validation, None
            self._end_epoch(epoch, [m.results[-1] for m in self.members], validate=True)
        for epoch in range(self.start_epoch, self.s.epochs):
            with self._resumable(epoch, "training"):
                rows = [{"epoch": epoch, **means} for means in self.train_epoch(epoch)]
            for m, row in zip(self.members, rows):
                m.results.append(row)
            last = epoch == self.s.epochs - 1
            self._end_epoch(epoch, rows, validate=(epoch + 1) % self.s.val_interval == 0 or last)
        for m in self.members:
            best = m.weights / "best.pt"
            if self.dist.is_main and m.results and not best.exists():
                logger.warning(f"no validation metric {self.s.val_metric!r} was measured: {best} is the last epoch's "
                               "model")
                self._save_student(m, best, m.results[-1]["epoch"], {})
        return self.results

    def _end_epoch(self, epoch: int, rows: list[dict], validate: bool) -> None:
        """Validate (if due) and save. The state written before validation notes it as pending, so a failing
        validation loses no training and ``--resume`` runs it first."""
        if self.dist.is_main and validate and any(m.validate is not None for m in self.members):
            ckpt.save_training_state(self.weights / "last.pt", self.state_dict(epoch, pending_validation=True))
            for m, row in zip(self.members, rows):
                self._validate(m, row, epoch)
        if self.dist.is_main:
            ckpt.save_training_state(self.weights / "last.pt", self.state_dict(epoch))
            for m, row in zip(self.members, rows):
                self._save_student(m, m.weights / "last_student.pt", epoch, {})
                write_results_csv(m.out / "results.csv", m.results)
                plot_curves(m.out / "curves.png", m.results)
                logger.info("epoch {}/{}{}: {}", epoch + 1, self.s.epochs, f" {m.name}" if m.name else "",
                            ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
        self.dist.barrier()

    def _validate(self, m: _Member, row: dict, epoch: int) -> None:
        if m.validate is None:
            return
        with self._resumable(epoch, "validation"):
            metrics = m.validate(m.ema.ema if m.ema else m.student, epoch)
        row.update({f"val/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
        fitness = metrics.get(self.s.val_metric)
        if fitness is not None and fitness > m.best_fitness:
            m.best_fitness = float(fitness)
            self._save_student(m, m.weights / "best.pt", epoch, metrics)

    @contextmanager
    def _resumable(self, epoch: int, stage: str):
        """On a failure in ``stage`` of ``epoch``, log what is saved and how to continue; the error propagates."""
        try:
            yield
        except BaseException:
            done = epoch + (stage == "validation")
            if self.dist.is_main:
                saved = (f"{self.weights / 'last.pt'} holds {done} finished epoch(s): fix the cause and continue "
                         f"with `python -m mot_kd.train --resume {self.out}`") if done else "no epoch had finished"
                logger.error(f"epoch {epoch + 1} {stage} failed; {saved}")
            raise

    def train_epoch(self, epoch: int) -> list[dict]:
        """Per student: the epoch's mean losses, lr and time. A batch whose loss is not finite for some student
        is skipped for all (on every rank together, so DistributedDataParallel stays in step)."""
        for m in self.members:
            m.student.train()
            m.criterion.train()
            m.optimizer.zero_grad(set_to_none=True)
        loader = self.make_loader(epoch)
        sums: list[dict[str, float]] = [{} for _ in self.members]
        count, bad_in_row, started = 0, 0, time.perf_counter()
        bar = tqdm(loader, total=self.batches_per_epoch, desc=f"epoch {epoch + 1}/{self.s.epochs}",
                   disable=not self.dist.is_main, leave=False, dynamic_ncols=True)
        for i, (images, targets) in enumerate(bar):
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            for m in self.members:
                self.schedule.apply(m.optimizer, self.opt_step)
            try:
                with torch.autocast(self.device.type, enabled=self.use_amp):
                    results = self.step_module(images, targets, epoch)
            except torch.OutOfMemoryError:
                raise TrainingAborted(f"out of memory at batch size {self.s.batch} and input {tuple(images.shape[2:])} "
                                      f"(H, W): lower --batch (nbs={self.s.nbs} keeps the optimizer step size) "
                                      "or --imgsz") from None
            finite = [bool(torch.isfinite(loss.detach())) for loss, _ in results]
            if self.dist.all_true(all(finite), self.device):
                bad_in_row = 0
                sum(m.scaler.scale(loss / self.accumulate) for m, (loss, _) in zip(self.members, results)).backward()
                count += 1
                for member_sums, (loss, parts) in zip(sums, results):
                    for k, v in {"loss": loss, **parts}.items():
                        member_sums[k] = member_sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
                bar.set_postfix({f"{m.name or 'loss'}": f"{s['loss'] / count:.3g}" for m, s in zip(self.members, sums)})
            else:
                bad_in_row += 1
                who = ", ".join(m.name for m, ok in zip(self.members, finite) if not ok and m.name)
                logger.warning("epoch {} batch {}: non-finite loss{}, batch skipped", epoch + 1, i,
                               f" ({who})" if who else "")
                del results
                if bad_in_row >= self.s.max_bad_steps:
                    raise TrainingAborted(f"training aborted: {bad_in_row} non-finite losses in a row (epoch "
                                          f"{epoch + 1}, batch {i}); lower lr0, check the data, or raise "
                                          "max_bad_steps")
            if (i + 1) % self.accumulate == 0 or i + 1 == self.batches_per_epoch:
                self._optimizer_step()
        rows = []
        elapsed = time.perf_counter() - started
        for m, member_sums in zip(self.members, sums):
            member_sums, total = self.dist.sum_over_ranks(member_sums, count, self.device)
            if total == 0:
                raise TrainingAborted(f"epoch {epoch + 1}: no batch produced a finite loss")
            means = {f"train/{k}": v / total for k, v in member_sums.items()}
            means["train/lr"] = m.optimizer.param_groups[0]["lr"]
            means["time_s"] = elapsed
            rows.append(means)
        return rows

    def _optimizer_step(self) -> None:
        for m in self.members:
            m.scaler.unscale_(m.optimizer)
            params = [p for g in m.optimizer.param_groups for p in g["params"]]
            torch.nn.utils.clip_grad_norm_(params, self.s.grad_clip)
            m.scaler.step(m.optimizer)
            m.scaler.update()
            m.optimizer.zero_grad(set_to_none=True)
            if m.ema:
                m.ema.update(m.student)
        self.opt_step += 1

    @staticmethod
    def _save_student(m: _Member, path: Path, epoch: int, metrics: dict) -> None:
        if m.save_student is not None:
            numbers = {k: v for k, v in metrics.items() if isinstance(v, (int, float))}
            m.save_student(m.ema.ema if m.ema else m.student, path, {"epoch": epoch, "metrics": numbers})
