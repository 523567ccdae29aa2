"""The detections the peer benchmark feeds every tracker: TUD (published boxes) and a model's synthetic-val output.

* ``tud_sequences()``: TUD-Campus and TUD-Stadtmitte from the motmetrics wheel. The wheel ships gt and one
  published tracker's result boxes, not raw detections; we take those boxes per frame (ids dropped, score
  1.0: the file has none) as the detections, so every tracker runs IoU-only on them (MOT15 protocol).
* ``crowd_sequence()``: the generated crowd of ``trackers.bench_speed`` (60 walkers, 50 detections/frame) with
  its true boxes as gt, to time every tracker at MOT17-like density.
* ``make_model_cache(weights, ...)`` runs a trained mot-kd model over the synthetic val split once and stores
  boxes, scores, float32 embeddings and the gt in one ``.npz``; ``load_cache`` reads it back, so the
  benchmark re-runs in seconds without the model.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from loguru import logger
from tqdm import tqdm

from mot_kd.data.mot_files import read_mot_txt
from mot_kd.errors import InputError
from mot_kd.utils.io import atomic_path
from trackers.bench_speed import crowd

TUD_FRAME_RATE = 25.0
CACHE_FORMAT = "mot-kd/peer-detections/1"


@dataclass(frozen=True)
class DetSequence:
    """One sequence's per-frame detections (index 0 = frame ``first``) and its gt rows."""

    name: str
    gt: np.ndarray
    first: int
    frame_rate: float
    frames: list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]  # (xyxy (N, 4), scores (N,), emb (N, D)|None)

    @property
    def num_frames(self) -> int:
        return len(self.frames)


def split_by_frame(frame: np.ndarray, first: int, num_frames: int, xyxy: np.ndarray, scores: np.ndarray,
                   emb: np.ndarray | None) -> list[tuple]:
    """Per-frame tuples for frames first..first+num_frames-1 from flat arrays (empty frames included)."""
    order = np.argsort(frame, kind="stable")
    frame, xyxy, scores = frame[order], xyxy[order], scores[order]
    emb = None if emb is None else emb[order]
    bounds = np.searchsorted(frame, np.arange(first, first + num_frames + 1))
    return [(xyxy[a:b], scores[a:b], None if emb is None else emb[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def tud_sequences(root: str | Path | None = None) -> list[DetSequence]:
    """TUD-Campus and TUD-Stadtmitte: gt.txt and the published test.txt boxes as detections."""
    if root is None:
        import motmetrics

        root = Path(motmetrics.__file__).parent / "data"
    out = []
    for name in ("TUD-Campus", "TUD-Stadtmitte"):
        gt = read_mot_txt(Path(root) / name / "gt.txt", min_cols=6, max_cols=10)
        boxes = read_mot_txt(Path(root) / name / "test.txt", min_cols=6, max_cols=10)
        num_frames = int(max(gt[:, 0].max(), boxes[:, 0].max()))
        xyxy = np.concatenate([boxes[:, 2:4], boxes[:, 2:4] + boxes[:, 4:6]], axis=1)
        frames = split_by_frame(boxes[:, 0].astype(int), 1, num_frames, xyxy, np.ones(len(boxes)), None)
        out.append(DetSequence(name, gt, 1, TUD_FRAME_RATE, frames))
    return out


def crowd_sequence(frames: int = 300, targets: int = 60, detections: int = 50, dim: int = 128) -> DetSequence:
    """``trackers.bench_speed``'s MOT17-like crowd (1920x1080, ~50 detections/frame with misses, jitter and
    low-score false positives, noisy embeddings) with its true boxes as gt: the peers' speed at crowd scale."""
    truth, dets = [], []
    for boxes, scores, emb in crowd(frames, targets, detections, dim, truth=truth):
        dets.append((boxes, scores, emb.astype(np.float32)))
    gt = np.concatenate([np.column_stack([np.full(len(ids), f + 1), ids, xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2],
                                          np.ones((len(ids), 3))]) for f, (ids, xyxy) in enumerate(truth)])
    return DetSequence("crowd", gt, 1, 30.0, dets)


def make_model_cache(weights: str | Path, cache: str | Path, data: str = "synthetic", conf: float = 0.1,
                     iou: float = 0.6) -> None:
    """Run the model over ``data``'s val split (e.g. synthetic val_half) and store detections + gt in ``cache``."""
    from eval.loading import load_gt  # composition: only the cache builder needs the gt loader and a model
    from mot_kd.data.data_config import load_data_config
    from mot_kd.models import load_checkpoint
    from trackers.frames import open_source
    from trackers.track import model_detector

    cfg = load_data_config(data)
    model = load_checkpoint(weights)
    imgsz = tuple(model.meta.get("imgsz") or (1088, 608))
    detect = model_detector(model, imgsz, conf, iou)
    seqs = []
    for gt in load_gt(cfg.root, cfg.val.split, cfg.detector):
        src = open_source(gt.seq.path, (gt.first, gt.last))
        frames = []
        for _, image in tqdm(src, total=src.num_frames, desc=f"detect {gt.name}", leave=False):
            boxes, scores, emb = detect(image)
            frames.append((np.asarray(boxes, np.float64).reshape(-1, 4), np.asarray(scores, np.float64),
                           np.asarray(emb, np.float32)))  # (N, D) unit vectors, (0, D) when none
        seqs.append(DetSequence(gt.name, gt.gt, gt.first, src.frame_rate, frames))
    write_cache(cache, seqs, {"weights": str(weights), "data": data, "split": cfg.val.split, "imgsz": list(imgsz),
                              "conf": conf, "iou": iou})


def write_cache(cache: str | Path, seqs: list[DetSequence], meta: dict) -> None:
    """Store sequences (with embeddings) and ``meta`` in one ``.npz``, atomically."""
    arrays = {}
    meta = {**meta, "format": CACHE_FORMAT, "sequences": []}
    for i, seq in enumerate(seqs):
        counts = [len(scores) for _, scores, _ in seq.frames]
        dim = next((e.shape[1] for _, _, e in seq.frames if e is not None and e.ndim == 2), 0)
        arrays.update({
            f"{i}/frame": np.repeat(np.arange(seq.first, seq.first + seq.num_frames), counts),
            f"{i}/xyxy": np.concatenate([b for b, _, _ in seq.frames] or [np.zeros((0, 4))]).reshape(-1, 4),
            f"{i}/score": np.concatenate([s for _, s, _ in seq.frames] or [np.zeros(0)]),
            f"{i}/emb": np.concatenate([np.asarray(e, np.float32).reshape(len(s), dim) for _, s, e in seq.frames]
                                       or [np.zeros((0, dim), np.float32)]),
            f"{i}/gt": seq.gt})
        meta["sequences"].append({"name": seq.name, "first": seq.first, "last": seq.first + seq.num_frames - 1,
                                  "frame_rate": seq.frame_rate})
    arrays["meta"] = np.array(json.dumps(meta))
    with atomic_path(cache) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    logger.info(f"cached {sum(len(arrays[f'{i}/score']) for i in range(len(seqs)))} detections of {len(seqs)} "
                f"sequences -> {cache}")


def load_cache(cache: str | Path) -> tuple[list[DetSequence], dict]:
    """Sequences and the cache's metadata (weights, data, split, imgsz, conf, iou)."""
    cache = Path(cache)
    if not cache.is_file():
        raise InputError(f"{cache}: no detection cache (make one with --weights CKPT)")
    try:
        with np.load(cache, allow_pickle=False) as z:
            meta = json.loads(str(z["meta"]))
            if meta.get("format") != CACHE_FORMAT:
                raise InputError(f"{cache}: not a peer-detection cache (format {meta.get('format')!r})")
            seqs = []
            for i, s in enumerate(meta["sequences"]):
                num = s["last"] - s["first"] + 1
                emb = z[f"{i}/emb"]
                frames = split_by_frame(z[f"{i}/frame"].astype(int), s["first"], num, z[f"{i}/xyxy"],
                                        z[f"{i}/score"], emb if emb.shape[1] else None)
                seqs.append(DetSequence(s["name"], z[f"{i}/gt"], s["first"], s["frame_rate"], frames))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"{cache}: unreadable detection cache ({exc})") from None
    return seqs, meta
