"""Overhead of KDHooks: t(KD step) / (t(student step) + t(teacher no-grad forward)); goal <= 1.10.

A KD step is student forward + JDE loss + ``kd(images, targets)`` (teacher forward, hooks, adapters, the three
losses) + backward + optimizer step; the denominator is what any distillation must pay anyway. With several
``--student`` the KD step trains all of them from ONE teacher forward (MultiStudentKD, mutual terms included)
and the denominator is the sum of their plain steps plus one teacher forward. Timings are interleaved (one of
each per round) and the median is reported, so load from other processes hits all alike. Usage:
``python -m mot_kd.kd.bench_overhead --teacher yolov5l --student yolov5s yolov5n --size 320 192``.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from loguru import logger
from tqdm import tqdm

from mot_kd.errors import InputError, cli_entry
from mot_kd.kd.hooks import KDHooks
from mot_kd.kd.multi import MultiStudentKD
from mot_kd.models import JDELoss, build_model


def _synthetic_batch(batch: int, width: int, height: int, per_image: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    images = torch.rand(batch, 3, height, width, generator=g)
    n = batch * per_image
    xy = 0.1 + 0.8 * torch.rand(n, 2, generator=g)
    wh = torch.stack([0.03 + 0.1 * torch.rand(n, generator=g), 0.1 + 0.3 * torch.rand(n, generator=g)], 1)
    targets = torch.cat([torch.arange(batch).repeat_interleave(per_image)[:, None].float(), torch.zeros(n, 1),
                         torch.arange(n)[:, None].float(), xy, wh], 1)
    return images, targets


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--teacher", default="yolov5l")
    parser.add_argument("--student", nargs="+", default=["yolov5s"],
                        help="one student (KDHooks) or several (MultiStudentKD: one teacher forward, mutual terms)")
    parser.add_argument("--teacher-id-dim", type=int, default=512)
    parser.add_argument("--student-id-dim", type=int, default=128)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 192), metavar=("W", "H"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--kd-config", default=None, help="KD config (YAML path or shipped name)")
    args = parser.parse_args(argv)
    if args.rounds < 1:
        raise InputError(f"--rounds: expected >= 1, got {args.rounds}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = build_model(args.teacher, id_dim=args.teacher_id_dim)
    students = [build_model(name, id_dim=args.student_id_dim).train() for name in args.student]
    images, targets = _synthetic_batch(args.batch, *args.size)
    plain = [copy.deepcopy(s) for s in students]  # the baseline students: no hooks at all
    num_ids = int(targets[:, 2].max()) + 1
    kd = KDHooks(teacher, students[0], args.kd_config) if len(students) == 1 else MultiStudentKD(
        teacher, students, args.kd_config)
    hooks = [kd] if len(students) == 1 else list(kd.members)

    def optimised(model, extra=()):
        criterion = JDELoss(model, num_ids=num_ids)
        params = list(model.parameters()) + list(criterion.parameters()) + [p for h in extra for p in h.parameters()]
        return model, criterion, torch.optim.SGD(params, lr=1e-4)

    kd_steps = [optimised(s, [h]) for s, h in zip(students, hooks)]
    plain_steps = [optimised(p) for p in plain]

    def kd_step() -> None:
        for _, _, optimizer in kd_steps:
            optimizer.zero_grad(set_to_none=True)
        losses = [criterion(model(images), targets)[0] for model, criterion, _ in kd_steps]
        kd_out = kd(images, targets)
        kd_losses = [kd_out[0]] if len(students) == 1 else [loss for loss, _ in kd_out]
        sum(loss + k for loss, k in zip(losses, kd_losses)).backward()
        for _, _, optimizer in kd_steps:
            optimizer.step()

    def plain_step(index: int) -> None:
        model, criterion, optimizer = plain_steps[index]
        optimizer.zero_grad(set_to_none=True)
        criterion(model(images), targets)[0].backward()
        optimizer.step()

    def teacher_forward() -> None:
        with torch.no_grad():
            teacher(images)

    kd_step(), teacher_forward(), [plain_step(i) for i in range(len(students))]  # warm-up
    times = {"kd": [], "teacher": [], **{f"student{i}": [] for i in range(len(students))}}
    for _ in tqdm(range(args.rounds), desc="bench rounds"):
        times["kd"].append(_timed(kd_step))
        for i in range(len(students)):
            times[f"student{i}"].append(_timed(lambda: plain_step(i)))
        times["teacher"].append(_timed(teacher_forward))
    med = {k: statistics.median(v) for k, v in times.items()}
    alone = [med[f"student{i}"] for i in range(len(students))]
    ratio = med["kd"] / (sum(alone) + med["teacher"])
    logger.info(f"{args.teacher}->{'+'.join(args.student)} batch {args.batch} {args.size[0]}x{args.size[1]} "
                f"{args.threads} threads, median of {args.rounds}")
    steps = ", ".join(f"{name} step {t * 1e3:.0f} ms" for name, t in zip(args.student, alone))
    print(f"{steps}, teacher no-grad forward {med['teacher'] * 1e3:.0f} ms, KD step {med['kd'] * 1e3:.0f} ms")
    plus = " + ".join(f"t({name} step)" for name in args.student)
    print(f"overhead ratio t(KD step) / ({plus} + t(teacher forward)) = {ratio:.3f} (goal <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
