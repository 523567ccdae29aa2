"""The CLI's three stages as functions: presets, supernet training, search, and retraining through mot_kd.train.

Why retrain goes through ``mot_kd.train``'s own CLI: the chosen architecture is written as a model YAML (its
rows plus the candidate dict), so the normal trainer, its KD, validation and resume apply unchanged and the
checkpoint's ``arch["cfg"]`` rebuilds the network in every CLI.
"""
from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from loguru import logger

from mot_kd.config import check_keys, load_yaml, resolve_config
from mot_kd.data.data_config import load_data_config
from mot_kd.data.dataset import MOTTrainDataset, build_loader
from mot_kd.errors import InputError
from mot_kd.models import build_model, load_checkpoint
from mot_kd.models.info import model_card
from mot_kd.nas.evolution import EvolutionSettings, evolve
from mot_kd.nas.files import read_candidate, write_candidate_yaml
from mot_kd.nas.report import pareto_plot
from mot_kd.nas.score import TrackingScorer, cpu_latency_ms
from mot_kd.nas.space import build_candidate, load_space
from mot_kd.nas.supernet import Supernet
from mot_kd.nas.supernet_train import SupernetSettings, SupernetTrainer
from mot_kd.train.checkpoint import load_training_state
from mot_kd.utils.io import atomic_write_text

SUPERNET_KEYS = ("batch", *(f.name for f in fields(SupernetSettings)))
SEARCH_KEYS = ("budget_gflops", "min_gflops", "budget_latency_ms", "calib_batches",
               *(f.name for f in fields(EvolutionSettings)))
REFERENCES = ("yolov5n", "yolov5s-ghost")


def load_preset(name: str, overrides: list[str]) -> dict:
    """A preset (configs/nas/presets/<name>.yaml) with ``SECTION.KEY=JSON`` / ``KEY=JSON`` overrides, checked.
    Its ``space`` / ``data`` paths are relative to the preset file (so it works from any folder); overrides, typed
    by the user, stay relative to the working folder."""
    path = resolve_config(name, "nas/presets")
    preset = load_yaml(path, "nas/presets")
    for key in ("space", "data"):
        value = preset.get(key)
        if isinstance(value, str) and (path.parent / value).is_file():  # else a shipped name, resolved later
            preset[key] = str(path.parent / value)
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise InputError(f"--set {item}: expected KEY=VALUE")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        section, _, sub = key.partition(".")
        if sub:
            preset.setdefault(section, {})[sub] = parsed
        else:
            preset[key] = parsed
    check_keys(preset, ("space", "data", "imgsz", "kd", "supernet", "search"), f"preset {name}")
    for section, known in (("supernet", SUPERNET_KEYS), ("search", SEARCH_KEYS)):
        if not isinstance(preset.get(section, {}), dict):
            raise InputError(f"preset {name}: {section}: expected a mapping")
        check_keys(preset.get(section, {}), known, f"preset {name}: {section}")
    for key in ("space", "data", "imgsz"):
        if key not in preset:
            raise InputError(f"preset {name}: missing key '{key}'")
    imgsz = preset["imgsz"]
    if not isinstance(imgsz, list) or len(imgsz) != 2 or not all(isinstance(v, int) and v % 32 == 0 and v > 0
                                                                 for v in imgsz):
        raise InputError(f"preset {name}: imgsz: expected [W, H], multiples of 32, got {imgsz!r}")
    return preset


def _dataset(preset: dict, seed: int, augment: bool = True):
    """The data config (generated first if synthetic and missing) and its training set at the preset's size."""
    from mot_kd.train.cli import prepare_data

    data = load_data_config(preset["data"])
    prepare_data(data, True)
    kwargs = {} if augment else {"augment": None}
    return data, MOTTrainDataset.from_sources(data.train_sources(), size=tuple(preset["imgsz"]), seed=seed, **kwargs)


def run_supernet(preset: dict, teacher: str, out: Path, resume: bool) -> None:
    section = dict(preset.get("supernet", {}))
    batch = int(section.pop("batch", 8))
    settings = SupernetSettings(**section)
    if (out / "weights" / "last.pt").is_file() and not resume:
        raise InputError(f"--out {out}: holds a supernet state already; add --resume to continue it, or pick "
                         "another --out")
    _, dataset = _dataset(preset, settings.seed)
    loaders: dict = {}

    def batch_at(step: int):
        per_epoch = max(len(dataset) // batch, 1)
        epoch, index = divmod(step, per_epoch)
        if loaders.get("epoch") != epoch or loaders.get("next") != index:  # a resumed run skips to its batch
            loaders.update(epoch=epoch, next=0, it=iter(build_loader(dataset, batch, seed=settings.seed, epoch=epoch,
                                                                     drop_last=True)))
            for _ in range(index):
                next(loaders["it"])
                loaders["next"] += 1
        loaders["next"] += 1
        return next(loaders["it"])

    net = Supernet(load_space(preset["space"]))
    trainer = SupernetTrainer(net, load_checkpoint(teacher), dataset.num_ids, settings, out, preset.get("kd"))
    if resume:
        trainer.resume()
    trainer.fit(batch_at)


def run_search(preset: dict, supernet_dir: Path, out: Path) -> dict:
    if not (supernet_dir / "weights" / "last.pt").is_file():
        raise InputError(f"--supernet {supernet_dir}: no supernet state at {supernet_dir / 'weights' / 'last.pt'}")
    state = load_training_state(supernet_dir)
    if state["job"].get("kind") != "nas-supernet":
        raise InputError(f"--supernet {supernet_dir}: not a supernet run (its state is a {state['job'].get('kind')})")
    space = load_space(state["job"]["space"])
    net = Supernet(space)
    try:
        net.load_state_dict(state["student"])
    except RuntimeError:
        raise InputError(f"--supernet {supernet_dir}: its weights do not match the space {space.where} (was the "
                         "space YAML edited after the supernet was trained?)") from None
    s = dict(preset.get("search", {}))
    budget, latency_budget = s.pop("budget_gflops", None), s.pop("budget_latency_ms", None)
    min_gflops = s.pop("min_gflops", None)
    data, dataset = _dataset(preset, int(s.get("seed", 0)), augment=False)  # BN statistics of plain frames
    if data.val is None:
        raise InputError(f"{data.source}: val is null; the search scores candidates on its val (tune) sequences")
    calib_batches = int(s.pop("calib_batches", 4))
    calib = [images for (images, _), _ in zip(build_loader(dataset, 4, seed=0, epoch=0), range(calib_batches))]
    imgsz = tuple(preset["imgsz"])
    scorer = TrackingScorer(net, calib, data.root, data.val.split, list(data.val.sequences or []) or None, imgsz,
                            data.detector)
    latency = (lambda c: cpu_latency_ms(build_candidate(c), imgsz)) if latency_budget is not None else None
    records = evolve(space, scorer, budget, EvolutionSettings(**s), out / "search.jsonl", latency, latency_budget,
                     min_gflops)
    refs = {name: {"gflops": model_card(build_model(name, id_dim=128), space.imgsz)["gflops"]} for name in REFERENCES}
    pareto_plot(records, refs, out / "pareto.png", budget, min_gflops)
    best = max(records, key=lambda r: (r["IDF1"], r["MOTA"]))
    atomic_write_text(out / "best.json", json.dumps(best, indent=2) + "\n")
    logger.info("search: best IDF1 {:.2f} MOTA {:.2f} at {:.3f} GFLOPs; {}", best["IDF1"], best["MOTA"],
                best["gflops"], out / "best.json")
    return best


def retrain(candidate_path: str, out: str | Path, train_args: list[str]) -> int:
    """Write OUT/candidate.yaml and train it from scratch with ``python -m mot_kd.train`` (KD with --teacher)."""
    from mot_kd.train.cli import main as train_main

    cand = read_candidate(candidate_path, "--candidate")
    for flag in ("--model", "--student", "--id-dim", "--out"):
        if flag in train_args:
            raise InputError(f"retrain: {flag} is set by the candidate / --out; remove it from the train arguments")
    out = Path(out)
    arch = write_candidate_yaml(cand, out / "candidate.yaml")
    role = "--student" if "--teacher" in train_args else "--model"
    return train_main([role, str(arch), "--id-dim", str(cand["id_dim"]), "--out", str(out / "train"), *train_args])
