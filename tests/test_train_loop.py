"""The training loop on a toy model: non-finite losses are skipped then abort, OOM gives a hint, the
schedule warms up then decays, accumulation reaches the nominal batch."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from mot_kd.errors import InputError
from mot_kd.train.checkpoint import load_training_state
from mot_kd.train.distributed import DistContext
from mot_kd.train.optim import WarmupCosine, param_groups
from mot_kd.train.trainer import Trainer, TrainingAborted, TrainSettings

SETTINGS = dict(epochs=2, batch=2, nbs=4, optimizer="SGD", lr0=0.1, lrf=0.01, momentum=0.9, weight_decay=0.0,
                warmup_epochs=0.0, warmup_bias_lr=0.0, warmup_momentum=0.8, grad_clip=10.0, ema=True,
                ema_decay=0.9, ema_tau=1.0, amp=False, val_interval=1, val_metric="IDF1", max_bad_steps=3)


class ScriptedLoss(nn.Module):
    """Squared error of a linear model, or a scripted failure at chosen calls."""

    def __init__(self, failures: dict[int, str] | None = None):
        super().__init__()
        self.calls, self.failures = 0, failures or {}

    def forward(self, out, targets):
        self.calls += 1
        failure = self.failures.get(self.calls)
        if failure == "oom":
            raise torch.OutOfMemoryError("CUDA out of memory")
        loss = ((out - targets) ** 2).mean()
        if failure == "nan":
            loss = loss * float("nan")
        return loss, {"mse": loss.detach()}


def batches(n: int = 8):
    torch.manual_seed(0)
    x = torch.randn(n * 2, 3)
    return [(x[i:i + 2], x[i:i + 2] @ torch.tensor([[1.0], [2.0], [3.0]])) for i in range(0, n * 2, 2)]


def make_trainer(tmp_path, criterion, validate=None, **overrides) -> Trainer:
    data = batches()
    return Trainer(TrainSettings.from_dict({**SETTINGS, **overrides}), lambda epoch: data, nn.Linear(3, 1), criterion,
                   tmp_path, torch.device("cpu"), DistContext(), validate=validate)


def test_loop_learns_and_accumulates_to_the_nominal_batch(tmp_path):
    trainer = make_trainer(tmp_path, ScriptedLoss())
    rows = trainer.fit()
    assert trainer.accumulate == 2 and trainer.opt_step == 2 * 4  # 8 batches of 2 -> 4 steps of 4 images per epoch
    assert rows[1]["train/mse"] < rows[0]["train/mse"]
    assert (tmp_path / "results.csv").is_file() and (tmp_path / "weights" / "last.pt").is_file()


def test_isolated_non_finite_losses_are_skipped(tmp_path):
    trainer = make_trainer(tmp_path, ScriptedLoss({2: "nan", 5: "nan"}))
    rows = trainer.fit()
    assert all(math.isfinite(r["train/loss"]) for r in rows)
    assert trainer.opt_step == 8  # a skipped batch does not shift the accumulation windows (4 steps per epoch)


def test_non_finite_losses_in_a_row_abort_with_a_message(tmp_path):
    trainer = make_trainer(tmp_path, ScriptedLoss({2: "nan", 3: "nan", 4: "nan"}))
    with pytest.raises(TrainingAborted, match="3 non-finite losses in a row"):
        trainer.fit()


def test_out_of_memory_says_what_to_lower(tmp_path):
    trainer = make_trainer(tmp_path, ScriptedLoss({1: "oom"}))
    with pytest.raises(TrainingAborted, match="lower --batch"):
        trainer.fit()


def test_schedule_warms_up_then_decays_to_lrf():
    schedule = WarmupCosine(lr0=0.01, lrf=0.1, momentum=0.9, total_steps=100, warmup_steps=10,
                            warmup_bias_lr=0.1, warmup_momentum=0.5)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
    optimizer = torch.optim.SGD(param_groups([model], 5e-4), lr=0.01, momentum=0.9)
    schedule.apply(optimizer, 0)
    lrs = {g["group"]: g["lr"] for g in optimizer.param_groups}
    assert lrs["bias"] == pytest.approx(0.1) and lrs["weight"] == 0.0
    assert optimizer.param_groups[0]["momentum"] == pytest.approx(0.5)
    schedule.apply(optimizer, 100)
    assert all(g["lr"] == pytest.approx(0.001) for g in optimizer.param_groups)
    assert [len(g["params"]) for g in optimizer.param_groups] == [1, 1, 2]  # conv w | bn w | conv b, bn b


def test_failed_validation_loses_no_training_and_resume_continues(tmp_path):
    """last.pt is written before validation runs: an error there leaves the finished epoch resumable."""
    calls = []

    def validate(model, epoch):
        calls.append(epoch)
        if epoch == 0 and len(calls) == 1:
            raise InputError("gt class ids [-1] are not MOTChallenge classes 1..13")
        return {"IDF1": 0.5 + epoch}

    straight = make_trainer(tmp_path / "straight", ScriptedLoss(), validate=lambda model, epoch: {"IDF1": 0.5})
    straight.fit()
    trainer = make_trainer(tmp_path / "run", ScriptedLoss(), validate=validate)
    with pytest.raises(InputError, match="not MOTChallenge classes"):
        trainer.fit()
    state = load_training_state(tmp_path / "run")
    assert state["epoch"] == 0 and state["opt_step"] == 4 and len(state["results"]) == 1
    assert state["pending_validation"] == 0 and not any(key.startswith("val/") for key in state["results"][0])
    resumed = make_trainer(tmp_path / "run", ScriptedLoss(), validate=validate)
    resumed.load_state_dict(state)
    rows = resumed.fit()
    assert calls == [0, 0, 1] and [r["epoch"] for r in rows] == [0, 1]  # the failed validation ran again first
    assert rows[0]["val/IDF1"] == 0.5 and rows[1]["val/IDF1"] == 1.5
    assert load_training_state(tmp_path / "run")["pending_validation"] is None
    for mine, reference in zip(resumed.student.parameters(), straight.student.parameters()):
        torch.testing.assert_close(mine, reference, rtol=0, atol=0)  # the epoch's training was kept exactly


def test_failed_validation_of_the_last_epoch_runs_on_resume(tmp_path):
    """With no epochs left, --resume still runs the validation that failed (else nothing is ever validated)."""
    calls = []

    def validate(model, epoch):
        calls.append(epoch)
        if len(calls) == 1:
            raise InputError("validation data missing")
        return {"IDF1": 0.75}

    with pytest.raises(InputError, match="validation data missing"):
        make_trainer(tmp_path, ScriptedLoss(), validate=validate, epochs=1).fit()
    resumed = make_trainer(tmp_path, ScriptedLoss(), validate=validate, epochs=1)
    resumed.load_state_dict(load_training_state(tmp_path))
    rows = resumed.fit()
    assert calls == [0, 0] and rows[0]["val/IDF1"] == 0.75 and load_training_state(tmp_path)["best_fitness"] == 0.75
    assert resumed.opt_step == 4 and "val/IDF1" in (tmp_path / "results.csv").read_text().splitlines()[0]
