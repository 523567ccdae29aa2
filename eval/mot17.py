"""Command line: ``python -m eval.mot17 --data-root DIR --results RES [--split ...] [--json OUT.json]``.

Prints HOTA/CLEAR/Identity per sequence and COMBINED, exactly as TrackEval computes them.
"""
from __future__ import annotations

import argparse
import sys
import time

from loguru import logger

from eval.loading import describe_numbering, evaluate_folder
from eval.protocol import BENCHMARKS
from eval.report import format_table, write_csv, write_json
from mot_kd.data.motchallenge import DETECTORS, SPLITS
from mot_kd.errors import cli_entry


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eval.mot17", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="sequence folders, or a MOT17/MOT20 root with train/")
    parser.add_argument("--results", required=True, help="folder of <SEQ>.txt files in MOTChallenge format")
    parser.add_argument("--split", default="full", choices=SPLITS)
    parser.add_argument("--benchmark", default="MOT17", choices=BENCHMARKS)
    parser.add_argument("--detector", default="FRCNN", choices=(*DETECTORS, "all"),
                        help="which MOT17 copy to evaluate (the three share gt)")
    parser.add_argument("--json", help="write {combined, sequences, protocol} here")
    parser.add_argument("--csv", help="write one row per sequence plus COMBINED here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    result, protocol = evaluate_folder(args.data_root, args.results, args.split, args.benchmark, args.detector,
                                       progress=True)
    logger.info(f"{len(result.sequences)} sequences, {args.benchmark} protocol, split {args.split}, "
                f"results use {describe_numbering(protocol.numbering)} "
                f"({time.perf_counter() - start:.2f} s)")
    print(format_table(result))
    if args.json:
        write_json(args.json, result, protocol.as_dict())
        logger.info(f"wrote {args.json}")
    if args.csv:
        write_csv(args.csv, result)
        logger.info(f"wrote {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(cli_entry(main)())
