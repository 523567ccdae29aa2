"""Forward-time comparison of model scales, measured interleaved so machine load hits all of them alike.

``python -m mot_kd.models.bench_forward yolov5l yolov5s --imgsz 1088 608 --rounds 5`` prints the median
milliseconds per forward of each model and its time ratio to the last named model (median of the per-round
ratios, and ratio of the minima).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
from loguru import logger
from tqdm import tqdm

from mot_kd.errors import InputError, cli_entry
from mot_kd.models.jde_model import build_model
from mot_kd.models.predict import check_imgsz


@torch.no_grad()
def interleaved_times(names: list[str], imgsz: tuple[int, int], batch: int, rounds: int, device: str,
                      id_dim: int = 512) -> dict[str, list[float]]:
    """Seconds per forward for each named model (see :func:`time_models`)."""
    models = {name: build_model(name, id_dim=id_dim).to(device).eval() for name in names}
    return time_models(models, torch.rand(batch, 3, imgsz[1], imgsz[0], device=device), rounds, device)


@torch.no_grad()
def time_models(models: dict[str, torch.nn.Module], x: torch.Tensor, rounds: int,
                device: str) -> dict[str, list[float]]:
    """Seconds per forward of ``x`` for each (eval-mode) model, interleaved round by round, one warm-up each."""
    times: dict[str, list[float]] = {name: [] for name in models}
    for model in models.values():
        model(x)
    for _ in tqdm(range(rounds), desc="rounds"):
        for name, model in models.items():
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            start = time.perf_counter()
            model(x)
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            times[name].append(time.perf_counter() - start)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m mot_kd.models.bench_forward", description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+", help="model names, e.g. yolov5l yolov5s")
    parser.add_argument("--imgsz", nargs=2, type=int, default=(1088, 608), metavar=("W", "H"))
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--id-dim", type=int, default=512)
    args = parser.parse_args(argv)
    if args.batch < 1 or args.rounds < 1:
        raise InputError(f"--batch and --rounds must be >= 1, got {args.batch} and {args.rounds}")
    imgsz = check_imgsz(args.imgsz)
    logger.info("{} at {}x{}, batch {}, {} rounds on {} ({} threads)", ", ".join(args.models), *imgsz, args.batch,
                args.rounds, args.device, torch.get_num_threads())
    times = interleaved_times(args.models, imgsz, args.batch, args.rounds, args.device, args.id_dim)
    reference = times[args.models[-1]]
    for name, values in times.items():
        per_round = statistics.median(v / r for v, r in zip(values, reference))  # robust to load drifting over rounds
        print(f"{name}: median {statistics.median(values) * 1e3:.1f} ms/forward (min {min(values) * 1e3:.1f}), "
              f"ratio to {args.models[-1]}: median per round {per_round:.2f}, of minima {min(values) / min(reference):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
