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
from dataclasses import dataclass
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
    """Everything trainable in one module (student, criterion's ID classifier, KD adapters) so one
    DistributedDataParallel wrapper synchronises all of it; the teacher lives inside KDHooks un-registered."""

    def __init__(self, student: nn.Module, criterion: nn.Module, kd: nn.Module | None):
        super().__init__()
        self.student, self.criterion, self.kd = student, criterion, kd

    def forward(self, images: torch.Tensor, targets: torch.Tensor, epoch: int):
        loss, parts = self.criterion(self.student(images), targets)
        parts = dict(parts)
        if self.kd is not None:
            kd_loss, kd_parts = self.kd(images, targets, epoch=epoch)
            loss = loss + kd_loss * images.shape[0]  # JDELoss sums over images (ultralytics); KD is a batch mean
            parts.update({f"kd_{k}" if not k.startswith("kd") else k: v for k, v in kd_parts.items()})
        return loss, parts


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


class Trainer:
    def __init__(self, settings: TrainSettings, make_loader: Callable[[int], object], student: nn.Module,
                 criterion: nn.Module, out: Path, device: torch.device, dist: DistContext,
                 make_kd: Callable[[nn.Module], nn.Module] | None = None,
                 validate: Callable[[nn.Module, int], dict] | None = None,
                 save_student: Callable[[nn.Module, Path, dict], None] | None = None, job: dict | None = None):
        self.s, self.make_loader, self.out, self.device, self.dist = settings, make_loader, Path(out), device, dist
        self.student, self.criterion, self.validate, self.save_student = student, criterion, validate, save_student
        self.job = job or {}
        # EMA first: ModelEMA deep-copies the student, which must not carry KD hooks yet.
        self.ema = ModelEMA(student, decay=settings.ema_decay, tau=settings.ema_tau) if settings.ema else None
        self.kd = kd = make_kd(student) if make_kd is not None else None
        self.step_module = dist.wrap(TrainStep(student, criterion, kd).to(device))
        world_batch = settings.batch * dist.world_size
        self.accumulate = max(round(settings.nbs / world_batch), 1)
        weight_decay = settings.weight_decay * world_batch * self.accumulate / settings.nbs
        trainable = [student, criterion] + ([kd] if kd is not None else [])
        self.optimizer = build_optimizer(trainable, settings.optimizer, settings.lr0, settings.momentum, weight_decay)
        self.use_amp = settings.amp and device.type == "cuda"
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.use_amp)
        self.batches_per_epoch = len(make_loader(0))
        steps_per_epoch = math.ceil(self.batches_per_epoch / self.accumulate)
        self.schedule = WarmupCosine(settings.lr0, settings.lrf, settings.momentum, settings.epochs * steps_per_epoch,
                                     round(settings.warmup_epochs * steps_per_epoch), settings.warmup_bias_lr,
                                     settings.warmup_momentum)
        self.start_epoch, self.opt_step, self.best_fitness, self.results = 0, 0, -math.inf, []
        self.pending_validation: int | None = None  # an epoch whose validation failed: re-run first on resume
        self.weights = self.out / "weights"

    # ----------------------------------------------------------------- state
    def state_dict(self, epoch: int, pending_validation: bool = False) -> dict:
        return {
            "job": self.job, "epoch": epoch, "opt_step": self.opt_step, "best_fitness": self.best_fitness,
            "pending_validation": epoch if pending_validation else None,
            "results": self.results,
            "student": self.student.state_dict(), "criterion": self.criterion.state_dict(),
            "kd": self.kd.state_dict() if self.kd is not None else None,
            "optimizer": self.optimizer.state_dict(), "scaler": self.scaler.state_dict(),
            "ema": self.ema.ema.state_dict() if self.ema else None, "ema_updates": self.ema.updates if self.ema else 0,
            "rng": rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.student.load_state_dict(state["student"])
        self.criterion.load_state_dict(state["criterion"])
        if self.kd is not None and state.get("kd") is not None:
            self.kd.load_state_dict(state["kd"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema and state.get("ema") is not None:
            self.ema.ema.load_state_dict(state["ema"])
            self.ema.updates = state["ema_updates"]
        self.start_epoch, self.opt_step = state["epoch"] + 1, state["opt_step"]
        self.pending_validation = state.get("pending_validation")
        self.best_fitness, self.results = state["best_fitness"], list(state["results"])
        set_rng_state(state["rng"])

    # ----------------------------------------------------------------- loop
    def fit(self) -> list[dict]:
        if self.pending_validation is not None:  # resumed after a failed validation: that epoch's runs first
            epoch, self.pending_validation = self.pending_validation, None
            self._end_epoch(epoch, self.results[-1], validate=True)
        for epoch in range(self.start_epoch, self.s.epochs):
            with self._resumable(epoch, "training"):
                row = {"epoch": epoch, **self.train_epoch(epoch)}
            self.results.append(row)
            last = epoch == self.s.epochs - 1
            self._end_epoch(epoch, row, validate=(epoch + 1) % self.s.val_interval == 0 or last)
        best = self.weights / "best.pt"
        if self.dist.is_main and self.results and not best.exists():
            logger.warning(f"no validation metric {self.s.val_metric!r} was measured: best.pt is the last epoch's "
                           "model")
            self._save_student(best, self.results[-1]["epoch"], {})
        return self.results

    def _end_epoch(self, epoch: int, row: dict, validate: bool) -> None:
        """Validate (if due) and save. The state written before validation notes it as pending, so a failing
        validation loses no training and ``--resume`` runs it first."""
        if self.validate is not None and self.dist.is_main and validate:
            ckpt.save_training_state(self.weights / "last.pt", self.state_dict(epoch, pending_validation=True))
            with self._resumable(epoch, "validation"):
                metrics = self.validate(self.ema.ema if self.ema else self.student, epoch)
            row.update({f"val/{k}": v for k, v in metrics.items() if isinstance(v, (int, float))})
            fitness = metrics.get(self.s.val_metric)
            if fitness is not None and fitness > self.best_fitness:
                self.best_fitness = float(fitness)
                self._save_student(self.weights / "best.pt", epoch, metrics)
        if self.dist.is_main:
            self._save_student(self.weights / "last_student.pt", epoch, {})
            ckpt.save_training_state(self.weights / "last.pt", self.state_dict(epoch))
            write_results_csv(self.out / "results.csv", self.results)
            plot_curves(self.out / "curves.png", self.results)
            logger.info("epoch {}/{}: {}", epoch + 1, self.s.epochs,
                        ", ".join(f"{k}={v:.4g}" for k, v in row.items() if isinstance(v, float)))
        self.dist.barrier()

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

    def train_epoch(self, epoch: int) -> dict:
        self.student.train()
        self.criterion.train()
        loader = self.make_loader(epoch)
        sums: dict[str, float] = {}
        count, bad_in_row, started = 0, 0, time.perf_counter()
        bar = tqdm(loader, total=self.batches_per_epoch, desc=f"epoch {epoch + 1}/{self.s.epochs}",
                   disable=not self.dist.is_main, leave=False, dynamic_ncols=True)
        self.optimizer.zero_grad(set_to_none=True)
        for i, (images, targets) in enumerate(bar):
            images = images.to(self.device, non_blocking=True)
            targets = targets.to(self.device, non_blocking=True)
            self.schedule.apply(self.optimizer, self.opt_step)
            try:
                with torch.autocast(self.device.type, enabled=self.use_amp):
                    loss, parts = self.step_module(images, targets, epoch)
            except torch.OutOfMemoryError:
                raise TrainingAborted(f"out of memory at batch size {self.s.batch} and input {tuple(images.shape[2:])} "
                                      f"(H, W): lower --batch (nbs={self.s.nbs} keeps the optimizer step size) "
                                      "or --imgsz") from None
            if self.dist.all_true(bool(torch.isfinite(loss.detach())), self.device):
                bad_in_row = 0
                self.scaler.scale(loss / self.accumulate).backward()
                count += 1
                for k, v in {"loss": loss, **parts}.items():
                    sums[k] = sums.get(k, 0.0) + float(v.detach() if torch.is_tensor(v) else v)
                bar.set_postfix({k: f"{v / count:.3g}" for k, v in sums.items()})
            else:  # skipped on every rank together, so DistributedDataParallel stays in step
                bad_in_row += 1
                logger.warning("epoch {} batch {}: non-finite loss, batch skipped", epoch + 1, i)
                del loss, parts
                if bad_in_row >= self.s.max_bad_steps:
                    raise TrainingAborted(f"training aborted: {bad_in_row} non-finite losses in a row (epoch "
                                          f"{epoch + 1}, batch {i}); lower lr0, check the data, or raise "
                                          "max_bad_steps")
            if (i + 1) % self.accumulate == 0 or i + 1 == self.batches_per_epoch:
                self._optimizer_step()
        sums, count = self.dist.sum_over_ranks(sums, count, self.device)
        if count == 0:
            raise TrainingAborted(f"epoch {epoch + 1}: no batch produced a finite loss")
        means = {f"train/{k}": v / count for k, v in sums.items()}
        means["train/lr"] = self.optimizer.param_groups[0]["lr"]
        means["time_s"] = time.perf_counter() - started
        return means

    def _optimizer_step(self) -> None:
        self.scaler.unscale_(self.optimizer)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        torch.nn.utils.clip_grad_norm_(params, self.s.grad_clip)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.opt_step += 1
        if self.ema:
            self.ema.update(self.student)

    def _save_student(self, path: Path, epoch: int, metrics: dict) -> None:
        if self.save_student is not None:
            model = self.ema.ema if self.ema else self.student
            self.save_student(model, path, {"epoch": epoch, "metrics": {k: v for k, v in metrics.items()
                                                                        if isinstance(v, (int, float))}})
