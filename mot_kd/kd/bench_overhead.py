"""Overhead of KDHooks: t(KD step) / (t(student step) + t(teacher no-grad forward)); goal <= 1.10.

A KD step is student forward + JDE loss + ``kd(images, targets)`` (teacher forward, hooks, adapters, the three
losses) + backward + optimizer step; the denominator is what any distillation must pay anyway. Timings are
interleaved (one of each per round) and the median is reported, so load from other processes hits all three
alike. Usage: ``python -m mot_kd.kd.bench_overhead --teacher yolov5l --student yolov5s --size 320 192``.
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time

import torch
from loguru import logger
from tqdm import tqdm

from mot_kd.errors import cli_entry
from mot_kd.kd.hooks import KDHooks
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
    parser.add_argument("--student", default="yolov5s")
    parser.add_argument("--teacher-id-dim", type=int, default=512)
    parser.add_argument("--student-id-dim", type=int, default=128)
    parser.add_argument("--size", type=int, nargs=2, default=(320, 192), metavar=("W", "H"))
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--kd-config", default=None, help="KD config (YAML path or shipped name)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    teacher = build_model(args.teacher, id_dim=args.teacher_id_dim)
    student = build_model(args.student, id_dim=args.student_id_dim).train()
    images, targets = _synthetic_batch(args.batch, *args.size)
    plain = copy.deepcopy(student)  # the baseline student: no hooks at all
    num_ids = int(targets[:, 2].max()) + 1
    kd = KDHooks(teacher, student, args.kd_config)
    steps = {}
    for with_kd, model in ((True, student), (False, plain)):
        criterion = JDELoss(model, num_ids=num_ids)
        optimizer = torch.optim.SGD(list(model.parameters()) + list(criterion.parameters()), lr=1e-4)
        if with_kd:
            optimizer.add_param_group({"params": kd.parameters()})
        steps[with_kd] = (model, criterion, optimizer)

    def student_step(with_kd: bool) -> None:
        model, criterion, optimizer = steps[with_kd]
        optimizer.zero_grad(set_to_none=True)
        loss, _ = criterion(model(images), targets)
        if with_kd:
            loss = loss + kd(images, targets)[0]
        loss.backward()
        optimizer.step()

    def teacher_forward() -> None:
        with torch.no_grad():
            teacher(images)

    student_step(True), student_step(False), teacher_forward()  # warm-up
    times = {"kd": [], "student": [], "teacher": []}
    for _ in tqdm(range(args.rounds), desc="bench rounds"):
        times["kd"].append(_timed(lambda: student_step(True)))
        times["student"].append(_timed(lambda: student_step(False)))
        times["teacher"].append(_timed(teacher_forward))
    med = {k: statistics.median(v) for k, v in times.items()}
    ratio = med["kd"] / (med["student"] + med["teacher"])
    logger.info(f"{args.teacher}->{args.student} batch {args.batch} {args.size[0]}x{args.size[1]} "
                f"{args.threads} threads, median of {args.rounds}")
    print(f"student step {med['student'] * 1e3:.0f} ms, teacher no-grad forward {med['teacher'] * 1e3:.0f} ms, "
          f"KD step {med['kd'] * 1e3:.0f} ms")
    print(f"overhead ratio t(KD step) / (t(student step) + t(teacher forward)) = {ratio:.3f} (goal <= 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(cli_entry(main)())
