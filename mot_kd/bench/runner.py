"""Plan and execute the bench's runs, each cached by its folder so an interrupted bench resumes where it stopped.

A run folder holds ``spec.json`` (what defines the run), ``train/`` (the trainer's run folder) and, once
finished, ``eval.json`` (metrics on its evaluation set, written atomically, naming the evaluated weights).
A half-trained run continues from ``train/weights/last.pt`` (the trainer's exact resume). A finished run
whose record evaluated another checkpoint than the preset now asks for (``student_checkpoint``) is
evaluated again without training (its record reused when both checkpoints hold the same weights).
"""
from __future__ import annotations

import datetime
import json
import math
import os
import platform
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import yaml
from loguru import logger
from tqdm import tqdm

from eval.model_run import RunSettings, track_and_evaluate
from mot_kd.bench.data import data_root, frames_of, write_train_data_config
from mot_kd.bench.parallel import run_parallel, threads_per_job
from mot_kd.bench.presets import CHECKPOINTS, CONFIGURATIONS, METRICS, Preset
from mot_kd.config import deep_merge, load_yaml
from mot_kd.errors import InputError
from mot_kd.kd.settings import LOSS_NAMES, load_kd_config
from mot_kd.launch import Launcher, LocalLauncher
from mot_kd.models import load_checkpoint, read_checkpoint
from mot_kd.models.info import model_card
from mot_kd.train import cli as train_cli
from mot_kd.train.distributed import DistContext, select_device
from mot_kd.train.report import read_results_csv
from mot_kd.utils.io import atomic_write_text
from trackers.config import load_tracker_config


@dataclass(frozen=True)
class RunSpec:
    """One training + one evaluation. ``kd`` is the KD config dict (None: trained without KD)."""

    name: str  # "teacher", "yolov5n/all/seed0", "tune/<point>"
    folder: Path
    role: str  # teacher | student | tune
    arch: str
    configuration: str | None  # key of CONFIGURATIONS (None for the teacher)
    seed: int
    epochs: int
    kd: dict | None
    eval_set: str  # val (the bench) | tune (the tuning grid)
    checkpoint: str  # file in train/weights/ that is evaluated: best.pt | last_student.pt
    team: tuple[str, ...] = ()  # configuration mutual: the architectures trained together in one run (this first?)

    @property
    def eval_path(self) -> Path:
        return self.folder / "eval.json"

    @property
    def train_dir(self) -> Path:
        """The trainer's run folder; a team's is shared: runs/A+B/mutual/seedN/train, student files in it/ARCH."""
        if not self.team:
            return self.folder / "train"
        return self.folder.parents[2] / "+".join(self.team) / self.folder.parent.name / self.folder.name / "train"

    @property
    def weights(self) -> Path:
        if self.team:
            return self.train_dir / train_cli.student_folder(self.arch) / "weights" / self.checkpoint
        return self.train_dir / "weights" / self.checkpoint

    @property
    def follower(self) -> bool:
        """A team member other than the first: trained and evaluated by the first one's run."""
        return bool(self.team) and self.arch != self.team[0]

    @property
    def evaluated(self) -> bool:
        """Trained and evaluated, with any checkpoint (training is finished: it is never redone)."""
        return self.eval_path.is_file()

    @property
    def done(self) -> bool:
        """Evaluated with this spec's checkpoint (a record names the weights it evaluated)."""
        return self.evaluated and Path(self.record()["weights"]).name == self.checkpoint

    def record(self) -> dict:
        try:
            return json.loads(self.eval_path.read_text())
        except ValueError:
            raise InputError(f"{self.eval_path}: unreadable run record (delete it to re-evaluate the run)") from None


def kd_config(configuration: str, preset_kd: dict, tuned: dict | None) -> dict:
    """Fully resolved KD config of a configuration: the preset's and the tuned values, its losses on/off.

    Only the ``enabled`` flags come from the configuration's file (configs/kd/), so the tuned weights and
    temperatures are the same in the all-losses run and every ablation. Resolved (every default filled in)
    so that a run's ``spec.json`` pins every KD value: a changed default in configs/kd/default.yaml makes
    the cached runs stale instead of silently mixing two versions of a loss in one report. A scheme the
    configuration does not use (``fused`` off, ``mutual`` outside the mutual configuration) keeps the defaults,
    so a preset's weight for it never enters the other runs' fingerprints (cpu_fused reuses cpu's runs).
    """
    shipped = load_kd_config(CONFIGURATIONS[configuration])
    enabled = shipped["losses"]
    flags = {"losses": {name: {"enabled": enabled[name]["enabled"]} for name in LOSS_NAMES},
             "fused": {k: shipped["fused"][k] for k in ("enabled", "points")}}
    merged = deep_merge(deep_merge(preset_kd, tuned or {}), flags)
    if not shipped["fused"]["enabled"]:
        merged["fused"] = {"enabled": False}  # the rest: defaults
    if configuration != "mutual":
        merged.pop("mutual", None)
    return load_kd_config(merged)  # fails early on a bad key


def teacher_spec(preset: Preset, out: Path) -> RunSpec:
    """The teacher's run: always evaluated (and distilled from) with its best.pt, chosen on the tune set."""
    return RunSpec("teacher", out / "runs" / "teacher", "teacher", preset.teacher["model"], None,
                   preset.teacher["seed"], preset.teacher["epochs"], None, "val", CHECKPOINTS["best"])


def plan_runs(preset: Preset, out: Path, tuned: dict | None) -> list[RunSpec]:
    """The teacher, then every student x configuration x seed (seed-major: partial results cover all configs)."""
    student_weights = CHECKPOINTS[preset.student_checkpoint]
    runs = [teacher_spec(preset, out)]
    team = tuple(arch for arch, configurations in preset.students.items() if "mutual" in configurations)
    for seed in preset.seeds:
        for arch, configurations in preset.students.items():
            for conf in configurations:
                kd = None if CONFIGURATIONS[conf] is None else kd_config(conf, preset.kd, tuned)
                runs.append(RunSpec(f"{arch}/{conf}/seed{seed}", out / "runs" / arch / conf / f"seed{seed}", "student",
                                    arch, conf, seed, preset.student_epochs, kd, "val", student_weights,
                                    team if conf == "mutual" else ()))
    return runs


def fingerprint(preset: Preset, spec: RunSpec) -> dict:
    """Everything that determines a run's result; a cached run with another fingerprint is an error."""
    teacher = {**preset.teacher} if spec.kd is not None else None
    hyp = {**preset.hyp, **preset.eval}
    tracker = load_tracker_config({**load_yaml("default", "train"), **hyp}["tracker"])  # contents, not the name
    model = preset.models.get(spec.arch)  # a models: student: its rows and id_dim, not the file's path
    return {"name": spec.name, "arch": spec.arch, "seed": spec.seed, "epochs": spec.epochs, "kd": spec.kd,
            "teacher": teacher, "hyp": hyp, "tracker": tracker, "data": preset.data, "eval_set": spec.eval_set,
            **({"team": list(spec.team)} if spec.team else {}),
            **({"model": {"cfg": model["cfg"], "id_dim": model["id_dim"]}} if model else {})}


def check_spec(preset: Preset, spec: RunSpec, write: bool = True) -> None:
    """Refuse a cached run made with other settings; pin a new run's settings in ``spec.json``."""
    path, expected = spec.folder / "spec.json", json.loads(json.dumps(fingerprint(preset, spec)))
    if path.is_file():
        if json.loads(path.read_text()) != expected:
            raise InputError(f"{path}: this cached run was made with other settings (preset, KD or tuned values "
                             f"changed); delete {spec.folder} or use another --out")
    elif write:
        atomic_write_text(path, json.dumps(expected, indent=1))


def same_weights(a: Path, b: Path) -> bool:
    """Whether two model checkpoints hold the same architecture and bit-identical weights."""
    first, second = read_checkpoint(a), read_checkpoint(b)
    return first["arch"] == second["arch"] and first["state_dict"].keys() == second["state_dict"].keys() and \
        all(torch.equal(t, second["state_dict"][k]) for k, t in first["state_dict"].items())


def done_line(spec: RunSpec, record: dict) -> str:
    return f"bench: {spec.name} done: " + ", ".join(f"{m}={record[m]:.4g}" for m in METRICS)


def describe_machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    text = f"{cpu}, {os.cpu_count()} CPU cores, torch {torch.__version__} (torch threads: {torch.get_num_threads()})"
    if torch.cuda.is_available():
        text += f", GPU {torch.cuda.get_device_name(0)}"
    return text


class Runner:
    """Executes runs of one preset in one output folder (data already prepared)."""

    def __init__(self, preset: Preset, out: Path, device: str | None = None):
        self.preset, self.out = preset, Path(out).absolute()
        self.device = device or preset.device
        self.data_config = write_train_data_config(preset, self.out)
        self.hyp_path = self.out / "configs" / "hyp.yaml"
        atomic_write_text(self.hyp_path, yaml.safe_dump({**preset.hyp, **preset.eval}, sort_keys=False))
        # models: students -> OUT/configs/models/<name>.yaml, what the trainer builds (written by execute)
        self.model_paths = {name: self.out / "configs" / "models" / f"{name}.yaml" for name in preset.models}
        self.settings = {**load_yaml("default", "train"), **preset.hyp, **preset.eval}

    @property
    def run_settings(self) -> RunSettings:
        """How every final model is tracked (input size, detection thresholds, tracker)."""
        return RunSettings(self.preset.imgsz, self.settings["conf"], self.settings["iou"], self.settings["tracker"])

    @property
    def teacher_weights(self) -> Path:
        return teacher_spec(self.preset, self.out).weights

    # ------------------------------------------------------------------ estimate
    def estimate_s(self, spec: RunSpec) -> float:
        """Seconds for one run from the preset's cost model (train steps, per-epoch validation, evaluation).

        A run evaluated with another checkpoint is trained already: only its evaluation is left.
        """
        cost, s = self.preset.cost, self.settings
        fps = cost["track_fps"][spec.arch]
        evaluation = frames_of(self.preset, spec.eval_set) / fps
        if spec.evaluated or spec.follower:
            return evaluation
        steps = spec.epochs * math.ceil(frames_of(self.preset, "train") / s["batch"])
        step_s = sum(cost["train_step_s"][a] for a in spec.team or [spec.arch]) + (
            cost["teacher_forward_s"] if spec.kd is not None else 0.0)  # a team: one teacher forward for all
        if spec.kd is not None and spec.kd["fused"]["enabled"]:
            step_s += len(spec.kd["fused"]["points"]) * cost["hybrid_forward_s"]
        validations = len({e for e in range(spec.epochs) if (e + 1) % s["val_interval"] == 0 or e == spec.epochs - 1})
        return steps * step_s + validations * frames_of(self.preset, "tune") / fps + evaluation

    def plan_text(self, runs: list[RunSpec], jobs: int = 1) -> str:
        """The pending runs and the estimated duration (the teacher alone, the rest shared by ``jobs``)."""
        pending = [r for r in runs if not r.done]
        total = sum(self.estimate_s(r) for r in pending if r.role == "teacher") + \
            sum(self.estimate_s(r) for r in pending if r.role != "teacher") / jobs
        lines = [(f"bench plan: preset {self.preset.name}, {len(runs)} runs ({len(runs) - len(pending)} cached, "
                  f"{len(pending)} to run) in {self.out}")]
        groups: dict[str, list[RunSpec]] = {}
        for r in pending:
            groups.setdefault(r.name.rsplit("/seed", 1)[0], []).append(r)
        for group, members in groups.items():
            each = self.estimate_s(members[0])
            lines.append(f"  {group:32s} x{len(members)}  ~{each / 60:6.1f} min each")
        lines.append(f"estimated duration: {total / 3600:.2f} h ({total / 60:.0f} min) with {jobs} job(s), from the "
                     f"preset's cost model (configs/bench/{self.preset.name}.yaml: cost)")
        return "\n".join(lines)

    # ------------------------------------------------------------------ execute
    def execute(self, runs: list[RunSpec], jobs: int = 1, launcher: Launcher | None = None,
                gpus: float = 0.0) -> list[dict]:
        """Run what is not cached and return every run's eval record.

        The teacher runs first and alone (every KD run distils from it). Locally (``launcher`` None or a
        LocalLauncher) it runs in this process, and with ``jobs`` > 1 the other runs go to that many worker
        processes, each with an equal share of the torch threads; a Ray launcher gets every run as a task (the
        teacher with all of this process's torch threads, the others with a ``jobs``-th each, ``gpus`` each).
        """
        launcher = launcher or LocalLauncher(jobs)
        local = isinstance(launcher, LocalLauncher)
        pending = [r for r in runs if not r.done]
        for spec in runs:
            check_spec(self.preset, spec)
        for name, path in self.model_paths.items():  # after the checks: a refused preset leaves the cache's file
            atomic_write_text(path, yaml.safe_dump(self.preset.models[name]["cfg"], sort_keys=False))
        pending = [r for r in pending if not (r.follower and any(p.team == r.team and p.seed == r.seed and not
                                                                   p.follower for p in pending))]  # led by that run
        serial = [r for r in pending if local and (jobs == 1 or r.role == "teacher")]  # the teacher is first
        first = [r for r in pending if not local and r.role == "teacher"]
        rest = [r for r in pending if r not in serial and r not in first]
        with tqdm(total=len(pending), desc="bench runs", unit="run", dynamic_ncols=True) as bar:
            for spec in serial:
                bar.set_postfix_str(spec.name)
                self.run_one(spec)
                bar.update()

            def finished(spec: RunSpec, record: dict) -> None:
                logger.info(done_line(spec, record))
                bar.update()

            for batch, threads in ((first, torch.get_num_threads()),
                                   (rest, threads_per_job(jobs, torch.get_num_threads()))):
                if batch:
                    logger.info(f"bench: {len(batch)} run(s) by the {type(launcher).__name__} ({jobs} job(s)), "
                                f"{threads} torch thread(s) each; each run logs to <run folder>/bench.log")
                    run_parallel(self.preset, self.out, self.device, batch, launcher, threads, gpus, finished)
        return [r.record() for r in runs]

    def run_one(self, spec: RunSpec) -> dict:
        logger.info(f"bench: {spec.name} ({spec.arch}, {spec.epochs} epochs, seed {spec.seed}, "
                    f"{'KD' if spec.kd is not None else 'no KD'})")
        previous = spec.record() if spec.evaluated else None  # trained; evaluated with another checkpoint
        if previous is not None and same_weights(self.out / previous["weights"], spec.weights):
            # best.pt of the last epoch: the same model, hence the same evaluation (tracking is deterministic)
            record = {**previous, "weights": str(spec.weights.relative_to(self.out)),
                      "same_weights_as": previous["weights"]}
            atomic_write_text(spec.eval_path, json.dumps(record, indent=1))
            logger.info(done_line(spec, record) + f" (same weights as {previous['weights']}, not tracked again)")
            return record
        start = time.perf_counter()
        self.train(spec)
        train_s = time.perf_counter() - start
        record = self.evaluate(spec)
        eval_s = time.perf_counter() - start - train_s
        record.update(train_s=previous["train_s"] if previous else train_s, eval_s=eval_s)
        atomic_write_text(spec.eval_path, json.dumps(record, indent=1))
        logger.info(done_line(spec, record))
        for arch in spec.team[1:] if not spec.follower else ():  # the team trained together: evaluate the others
            other = replace(spec, name=f"{arch}/{spec.configuration}/seed{spec.seed}",
                            folder=spec.folder.parents[2] / arch / spec.folder.parent.name / spec.folder.name,
                            arch=arch)
            if not other.done:
                self.run_one(other)
        return record

    def train(self, spec: RunSpec) -> None:
        """Train (or finish training) the run; nothing to do when its results.csv holds every epoch."""
        train_dir = spec.train_dir
        table = train_dir / train_cli.student_folder(spec.arch) if spec.team else train_dir
        finished = len(read_results_csv(table / "results.csv")) >= spec.epochs
        if not finished and (train_dir / "weights" / "last.pt").is_file():
            train_cli.main(["--resume", str(train_dir), "--device", self.device])
        elif not finished:
            argv = ["--data", str(self.data_config), "--hyp", str(self.hyp_path), "--epochs", str(spec.epochs),
                    "--seed", str(spec.seed), "--out", str(train_dir), "--exist-ok", "--device", self.device]
            model = self.preset.models.get(spec.arch)
            if model is not None and model["id_dim"] is not None:  # a candidate's searched embedding size
                argv += ["--id-dim", str(model["id_dim"])]
            if spec.kd is None:
                argv += ["--model", str(self.model_paths.get(spec.arch, spec.arch))]
            else:
                if not self.teacher_weights.is_file():
                    raise InputError(f"{self.teacher_weights}: the teacher has not been trained yet")
                kd_path = spec.folder / "kd.yaml"
                atomic_write_text(kd_path, yaml.safe_dump(spec.kd, sort_keys=False))
                argv += ["--teacher", str(self.teacher_weights), "--student",
                         *(str(self.model_paths.get(a, a)) for a in spec.team or [spec.arch]), "--kd", str(kd_path)]
            logger.info("python -m mot_kd.train " + " ".join(argv))
            train_cli.main(argv)

    def evaluate(self, spec: RunSpec) -> dict:
        """Track and evaluate ONCE on the spec's evaluation set; metrics, size, speed and provenance."""
        model = load_checkpoint(spec.weights, select_device(self.device, DistContext()))
        names = self.preset.sequence_names(spec.eval_set)
        result, _, speed = track_and_evaluate(model, data_root(self.out), spec.folder / "eval" / "results", "full",
                                              "all", names, self.run_settings)
        card = model_card(model, self.preset.imgsz)
        spec_fields = {k: v for k, v in asdict(spec).items() if k not in ("folder", "kd", "checkpoint")}
        return {**spec_fields, **{m: result.combined[m] for m in METRICS}, "GT_IDs": result.combined["GT_IDs"],
                "params_M": card["params"] / 1e6, "GFLOPs": card["gflops"], "FPS": speed["fps"],
                "weights": str(spec.weights.relative_to(self.out)), "eval_sequences": names,
                "finished": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
                "machine": describe_machine()}
