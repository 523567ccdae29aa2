"""The training dataset (MOTChallenge sequences and/or JDE label sets), its collate, and a seeded loader.

Every source is turned into the same record: an image path and its pedestrians as JDE rows
``[class, identity, cx, cy, w, h]`` normalised to the original image, with identities numbered globally
(MOTChallenge sequences first, in name order, then each JDE set offset past the previous ones).

Targets are pedestrians only: MOT17 rows with class 1 and the consider flag set, optionally above a
visibility. Distractors (classes 2/7/8/12) and consider=0 rows are *not* targets, so their pixels count as
background, which is FairMOT's and CSTrack's convention; the detection loss has no ignore regions, and
the evaluator ignores boxes matched to them anyway.

Randomness: item ``i`` of epoch ``e`` draws from ``default_rng([seed, e, i])``, so the same seed gives the
same images and targets whatever the number of workers or the order they are fetched in.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import torch
from loguru import logger
from torch.utils.data import DataLoader, Dataset

from mot_kd.data.augment import AugmentConfig, augment, clip_boxes
from mot_kd.data.images import read_image
from mot_kd.data.jde_labels import load_jde_set, offset_identities
from mot_kd.data.letterbox import boxes_to_letterbox, letterbox
from mot_kd.data.motchallenge import (Sequence, find_sequences, global_identities, read_gt, select_sequences,
                                      split_range, unique_by_gt)
from mot_kd.errors import InputError

DEFAULT_SIZE = (1088, 608)  # (width, height), JDE/FairMOT's training input
PEDESTRIAN_CLS = 0


@dataclass(frozen=True)
class MOTSource:
    """MOTChallenge sequences under ``root`` (one sequence, a folder of them, or a MOT17 root)."""

    root: Path
    split: str = "train_half"
    sequences: tuple[str, ...] | None = None  # None: all; names may omit the MOT17 detector suffix
    detector: str = "FRCNN"  # which MOT17 copy to read ('all' keeps every copy, deduplicated)
    min_visibility: float = 0.0


@dataclass(frozen=True)
class JDESource:
    """A JDE/FairMOT list file of images with ``labels_with_ids``; ``root`` prefixes relative paths."""

    list_file: Path
    root: Path | None = None
    name: str | None = None


@dataclass(frozen=True)
class Sample:
    """One training image: labels (n, 6) [cls, identity, cx, cy, w, h] normalised to the original image."""

    image: Path
    labels: np.ndarray
    size: tuple[int, int] | None = None  # (width, height) the labels were normalised by, when known


def training_sequences(source: MOTSource) -> list[Sequence]:
    """The source's sequences: one MOT17 detector copy each, filtered by name, image counts checked."""
    sequences = select_sequences(unique_by_gt(find_sequences(source.root, source.detector)),
                                 list(source.sequences) if source.sequences is not None else None)
    for seq in sequences:
        seq.check_images()
    return sequences


def _mot_samples(sources: list[MOTSource]) -> tuple[list[Sample], int]:
    """Samples of every frame in each source's split; identities numbered across all sources."""
    gts, seqs = {}, {}
    for source in sources:
        for seq in training_sequences(source):
            gt = read_gt(seq, source.split)
            key = str(seq.path.resolve())
            gts[key] = gt.select(gt.pedestrians & (gt.visibility >= source.min_visibility))
            seqs[key] = (seq, source.split)
    identities = global_identities(gts)
    samples = []
    for key in sorted(gts):
        gt, (seq, split) = gts[key], seqs[key]
        ids = np.array([identities[(key, int(t))] for t in gt.track_id], dtype=np.float64)
        scale = np.array([seq.width, seq.height, seq.width, seq.height], dtype=np.float64)
        cxcywh = np.concatenate([gt.tlwh[:, :2] + gt.tlwh[:, 2:] / 2, gt.tlwh[:, 2:]], axis=1) / scale
        rows = np.column_stack([np.full(len(gt), PEDESTRIAN_CLS), ids, cxcywh])
        order = np.argsort(gt.frame, kind="stable")
        rows, frames = rows[order], gt.frame[order]
        first, last = split_range(seq.seq_length, split)
        starts = np.searchsorted(frames, np.arange(first, last + 2))
        for frame, lo, hi in zip(range(first, last + 1), starts[:-1], starts[1:]):
            samples.append(Sample(seq.image_path(frame), rows[lo:hi], (seq.width, seq.height)))
    return samples, len(identities)


def collect_samples(sources: list[MOTSource | JDESource]) -> tuple[list[Sample], int]:
    """All samples of ``sources`` and the number of identities (known ids are 0..num_ids-1)."""
    mot = [s for s in sources if isinstance(s, MOTSource)]
    jde = [s for s in sources if isinstance(s, JDESource)]
    unknown = [s for s in sources if not isinstance(s, (MOTSource, JDESource))]
    if unknown:
        raise InputError(f"unknown data source {unknown[0]!r}; expected MOTSource or JDESource")
    if not sources:
        raise InputError("no training data sources given")
    samples, num_ids = _mot_samples(mot) if mot else ([], 0)
    for source in jde:
        jde_set = load_jde_set(source.list_file, source.root, source.name)
        samples += [Sample(image, offset_identities(labels, num_ids))
                    for image, labels in zip(jde_set.images, jde_set.labels)]
        logger.info(f"JDE set {jde_set.name}: {len(jde_set)} images, ids {num_ids}..{num_ids + jde_set.num_ids - 1}")
        num_ids += jde_set.num_ids
    return samples, num_ids


class MOTTrainDataset(Dataset):
    """Letterboxed, augmented training images with ``(n, 6) [cls, identity, cx, cy, w, h]`` targets.

    Boxes in the targets are normalised by the letterboxed input size ``size`` = (W, H).
    """

    def __init__(self, samples: list[Sample], num_ids: int, size: tuple[int, int] = DEFAULT_SIZE,
                 augment: AugmentConfig | None = AugmentConfig(), seed: int = 0):
        width, height = size
        if width <= 0 or height <= 0 or width % 32 or height % 32:
            raise InputError(f"input size {width}x{height}: width and height must be positive multiples of 32")
        if not samples:
            raise InputError("training dataset is empty: the sources hold no images")
        self.samples, self.num_ids, self.size = samples, num_ids, (int(width), int(height))
        self.augment, self.seed, self.epoch = augment, int(seed), 0

    @classmethod
    def from_sources(cls, sources: list[MOTSource | JDESource], size: tuple[int, int] = DEFAULT_SIZE,
                     augment: AugmentConfig | None = AugmentConfig(), seed: int = 0) -> "MOTTrainDataset":
        samples, num_ids = collect_samples(sources)
        boxes = sum(len(s.labels) for s in samples)
        logger.info(f"training data: {len(samples)} images, {boxes} pedestrian boxes, {num_ids} identities")
        return cls(samples, num_ids, size, augment, seed)

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's augmentations (call before iterating; workers copy the dataset per epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        sample = self.samples[index]
        image = read_image(sample.image)
        h0, w0 = image.shape[:2]
        if sample.size is not None and sample.size != (w0, h0):
            raise InputError(f"{sample.image}: image is {w0}x{h0} but seqinfo.ini says "
                             f"{sample.size[0]}x{sample.size[1]}")
        labels = sample.labels
        xyxy = np.column_stack([labels[:, 2] - labels[:, 4] / 2, labels[:, 3] - labels[:, 5] / 2,
                                labels[:, 2] + labels[:, 4] / 2, labels[:, 3] + labels[:, 5] / 2]) * (w0, h0, w0, h0)
        limits = self.augment or AugmentConfig()
        xyxy, keep = clip_boxes(xyxy, w0, h0, limits.min_size, limits.min_area_frac)
        image, info = letterbox(image, self.size)
        xyxy = boxes_to_letterbox(xyxy, info)
        if self.augment is not None:
            rng = np.random.default_rng([self.seed, self.epoch, int(index)])
            image, xyxy, kept = augment(image, xyxy, rng, self.augment)
            keep = keep[kept]
        return _to_tensor(image), _targets(labels[keep, :2], xyxy, self.size)


def _to_tensor(bgr: np.ndarray) -> torch.Tensor:
    rgb = np.ascontiguousarray(bgr[:, :, ::-1].transpose(2, 0, 1))
    return torch.from_numpy(rgb).float().div_(255.0)


def _targets(cls_id: np.ndarray, xyxy: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    width, height = size
    cxcywh = np.column_stack([(xyxy[:, 0] + xyxy[:, 2]) / 2 / width, (xyxy[:, 1] + xyxy[:, 3]) / 2 / height,
                              (xyxy[:, 2] - xyxy[:, 0]) / width, (xyxy[:, 3] - xyxy[:, 1]) / height])
    return torch.from_numpy(np.column_stack([cls_id, cxcywh]).astype(np.float32)).reshape(-1, 6)


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack images to (B, 3, H, W); concatenate targets to (M, 7) [batch_idx, cls, identity, cx, cy, w, h]."""
    images = torch.stack([image for image, _ in batch])
    targets = [torch.cat([torch.full((len(t), 1), float(i)), t], dim=1) for i, (_, t) in enumerate(batch)]
    return images, torch.cat(targets) if targets else torch.zeros(0, 7)


class _Loader(DataLoader):
    """A DataLoader whose worker-side InputError surfaces as the original one-line message.

    PyTorch re-raises a worker's exception with the worker traceback folded into the message; CLIs show
    InputError messages as they are, so the original last line is restored.
    """

    def __iter__(self):
        iterator = super().__iter__()
        while True:
            try:
                batch = next(iterator)
            except StopIteration:
                return
            except InputError as exc:
                lines = [line for line in str(exc).splitlines() if line.strip()]
                message = lines[-1].split("InputError: ", 1)[-1] if len(lines) > 1 else str(exc)
                raise InputError(message) from None
            yield batch


def _worker_init(_: int) -> None:
    cv2.setNumThreads(0)  # one OpenCV thread per worker: workers already run in parallel


def epoch_order(length: int, shuffle: bool, seed: int, epoch: int, rank: int = 0, world_size: int = 1) -> list[int]:
    """This process's item order for an epoch: a (seed, epoch) permutation, padded to a multiple of
    ``world_size`` by wrapping around (as DistributedSampler does) and strided by ``rank``."""
    generator = torch.Generator()
    generator.manual_seed(int(np.random.SeedSequence([int(seed), int(epoch)]).generate_state(1)[0]))
    order = torch.randperm(length, generator=generator).tolist() if shuffle else list(range(length))
    order += order[: (-length) % world_size]
    return order[rank::world_size]


def build_loader(dataset: MOTTrainDataset, batch_size: int, shuffle: bool = True, seed: int = 0, epoch: int = 0,
                 workers: int = 0, drop_last: bool = False, rank: int = 0, world_size: int = 1) -> DataLoader:
    """A DataLoader whose order depends only on (seed, epoch) and whose items only on (dataset seed, epoch, index).

    Build one per epoch (cheap; workers are not persistent) so a resumed run sees the same batches. Under
    DistributedDataParallel each ``rank`` of ``world_size`` gets its own equal-sized shard of the epoch.
    """
    if batch_size < 1 or workers < 0:
        raise InputError(f"batch_size must be >= 1 and workers >= 0 (got {batch_size}, {workers})")
    if not 0 <= rank < world_size:
        raise InputError(f"rank {rank} is not in 0..{world_size - 1}")
    dataset.set_epoch(epoch)
    order = epoch_order(len(dataset), shuffle, seed, epoch, rank, world_size)
    return _Loader(dataset, batch_size=batch_size, sampler=order, num_workers=workers, collate_fn=collate,
                   worker_init_fn=_worker_init if workers else None, pin_memory=torch.cuda.is_available(),
                   drop_last=drop_last)
