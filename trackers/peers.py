"""Peer trackers (ByteTrack, BoT-SORT, OC-SORT) behind one interface, for ``python -m trackers.bench_peers``.

Every tracker gets the same per-frame arrays (boxes xyxy, scores, unit embeddings or None) and returns MOT
rows ``frame, id, x, y, w, h, score, -1, -1, -1``. Peers come from installed packages, never re-implemented:

* ``ultralytics.trackers`` (pinned dependency): BYTETracker, BOTSORT (ReID on our embeddings through its
  native ``model: auto`` path), OCSORT; configs from the package's own ``cfg/trackers/*.yaml``.
* ``boxmot`` (optional; its pins conflict with ours, see :data:`BOXMOT_INSTALL`): ByteTrack, BotSort, OcSort.

``thresholds="ours"`` gives a peer our score split (det_thresh / low_thresh / new_track_thresh) so that only
the association differs; ``"own"`` keeps the peer's defaults. No images are passed, so camera-motion
compensation is off for everyone (a fixed-camera assumption shared by our tracker).
"""
from __future__ import annotations

import importlib.util
import logging
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import yaml

from trackers.jde_tracker import JDETracker

#: a separate folder (under the checkout's runs/) so boxmot's pins (opencv<5, pandas<3) never touch the main env
BOXMOT_DIR = Path(__file__).resolve().parents[1] / "runs" / "peers" / "boxmot"
BOXMOT_INSTALL = "pip install --no-deps --target runs/peers/boxmot -r trackers/peer_requirements.txt"


def mot_rows(frame: int, ids, tlwh, scores) -> np.ndarray:
    """(K, 10) MOT result rows for one frame."""
    ids, scores = np.asarray(ids, dtype=float).reshape(-1), np.asarray(scores, dtype=float).reshape(-1)
    out = np.full((len(ids), 10), -1.0)
    out[:, 0], out[:, 1], out[:, 2:6], out[:, 6] = frame, ids, np.asarray(tlwh, dtype=float).reshape(-1, 4), scores
    return out


def peer_output_rows(frame: int, output: np.ndarray) -> np.ndarray:
    """Peer output ``[x1, y1, x2, y2, track_id, score, ...]`` (ultralytics and boxmot alike) -> MOT rows."""
    output = np.asarray(output, dtype=float).reshape(-1, output.shape[-1] if np.ndim(output) == 2 else 8)
    xyxy = output[:, :4]
    return mot_rows(frame, output[:, 4], np.concatenate([xyxy[:, :2], xyxy[:, 2:] - xyxy[:, :2]], 1), output[:, 5])


class PeerBoxes:
    """The Results-like view ultralytics trackers read: ``conf``, ``cls``, ``xyxy``, ``xywh`` (centre), masks."""

    def __init__(self, xyxy: np.ndarray, scores: np.ndarray):
        self.xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
        self.conf = np.asarray(scores, dtype=np.float32).reshape(-1)
        self.cls = np.zeros(len(self.conf), dtype=np.float32)

    @property
    def xywh(self) -> np.ndarray:
        wh = self.xyxy[:, 2:] - self.xyxy[:, :2]
        return np.concatenate([self.xyxy[:, :2] + wh / 2, wh], axis=1)

    def __len__(self) -> int:
        return len(self.conf)

    def __getitem__(self, index) -> "PeerBoxes":
        return PeerBoxes(self.xyxy[index], self.conf[index])


def boxmot_input(xyxy: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """boxmot's numpy detections ``(N, 6) [x1, y1, x2, y2, conf, cls]`` float32, class 0 (pedestrian)."""
    xyxy = np.asarray(xyxy, dtype=np.float32).reshape(-1, 4)
    return np.concatenate([xyxy, np.asarray(scores, np.float32).reshape(-1, 1), np.zeros((len(xyxy), 1), np.float32)],
                          axis=1)


class Ours:
    """Our JDETracker with config ``cfg`` (named ``label`` in the table); IoU-only where there are no embeddings."""

    def __init__(self, cfg: dict, frame_rate: float, appearance: bool, label: str = "default"):
        self.name = f"ours ({label})"
        self.tracker = JDETracker({**cfg, "use_embeddings": appearance and cfg["use_embeddings"]},
                                  frame_rate=frame_rate)

    def update(self, xyxy, scores, embeddings):
        return self.tracker.update_arrays(xyxy, scores, embeddings)

    def rows(self, frame: int, output) -> np.ndarray:
        return mot_rows(frame, *output)


class Ultralytics:
    """``kind``: bytetrack | botsort | ocsort, configured from ultralytics' shipped YAML."""

    def __init__(self, kind: str, cfg: dict, frame_rate: float, appearance: bool, thresholds: str):
        import ultralytics
        from ultralytics import trackers as ut

        args = yaml.safe_load((Path(ultralytics.__file__).parent / "cfg" / "trackers" / f"{kind}.yaml").read_text())
        args["track_buffer"] = int(round(args["track_buffer"] * frame_rate / 30))  # it does not scale by fps itself
        if thresholds == "ours":
            args.update(track_high_thresh=cfg["det_thresh"], track_low_thresh=cfg["low_thresh"],
                        new_track_thresh=cfg["new_track_thresh"])
        if kind == "botsort":
            args.update(gmc_method="none", with_reid=appearance, model="auto")
        self.appearance = appearance and kind == "botsort"
        self.name = {"bytetrack": "ultralytics ByteTrack", "botsort": "ultralytics BoT-SORT" + (
            " + ReID" if self.appearance else ""), "ocsort": "ultralytics OC-SORT"}[kind]
        cls = {"bytetrack": ut.BYTETracker, "botsort": ut.BOTSORT, "ocsort": ut.OCSORT}[kind]
        self.tracker = cls(SimpleNamespace(**args))

    def update(self, xyxy, scores, embeddings):
        feats = embeddings if self.appearance and embeddings is not None else None
        return self.tracker.update(PeerBoxes(xyxy, scores), None, feats)

    def rows(self, frame: int, output) -> np.ndarray:
        return peer_output_rows(frame, output)


def boxmot_available() -> bool:
    """Import boxmot from the main environment or :data:`BOXMOT_DIR` (appended: our own packages win)."""
    if BOXMOT_DIR.is_dir() and str(BOXMOT_DIR) not in sys.path:
        sys.path.append(str(BOXMOT_DIR))
    return importlib.util.find_spec("boxmot") is not None


class Boxmot:
    """``kind``: bytetrack | botsort | ocsort from boxmot; embeddings go in through its ``Detections`` type."""

    def __init__(self, kind: str, cfg: dict, frame_rate: float, appearance: bool, thresholds: str):
        boxmot_available()  # puts BOXMOT_DIR on the path
        if kind == "bytetrack":
            from boxmot.trackers.box.bytetrack.tracker import ByteTrack as cls
            kwargs = {"frame_rate": int(round(frame_rate))}
            if thresholds == "ours":
                kwargs.update(track_thresh=cfg["det_thresh"], min_conf=cfg["low_thresh"])
        elif kind == "botsort":
            from boxmot.trackers.box.botsort.tracker import BotSort as cls
            kwargs = {"frame_rate": int(round(frame_rate)), "use_cmc": False, "use_embeddings": appearance}
            if thresholds == "ours":
                kwargs.update(track_high_thresh=cfg["det_thresh"], track_low_thresh=cfg["low_thresh"],
                              new_track_thresh=cfg["new_track_thresh"])
        else:
            from boxmot.trackers.box.ocsort.tracker import OcSort as cls
            kwargs = {"max_age": int(round(30 * frame_rate / 30))}
            if thresholds == "ours":
                kwargs.update(det_thresh=cfg["det_thresh"], min_conf=cfg["low_thresh"])
        self.appearance = appearance and kind == "botsort"
        self.name = {"bytetrack": "boxmot ByteTrack", "botsort": "boxmot BoT-SORT" + (
            " + ReID" if self.appearance else ""), "ocsort": "boxmot OC-SORT"}[kind]
        logging.getLogger("boxmot").setLevel(logging.WARNING)  # it logs every tracker's settings at INFO
        self.tracker = cls(**kwargs)
        self.frame = 0

    def update(self, xyxy, scores, embeddings):
        self.frame += 1
        if not self.appearance:
            return self.tracker.update(boxmot_input(xyxy, scores), None)
        import torch
        from boxmot.structures import Boxes, Detections

        dets = Detections(Boxes(torch.as_tensor(np.asarray(xyxy, np.float32).reshape(-1, 4))),
                          torch.as_tensor(np.asarray(scores, np.float32)), torch.zeros(len(scores), dtype=torch.int64),
                          f"frame-{self.frame}", embeddings=torch.as_tensor(np.asarray(embeddings, np.float32)))
        return self.tracker.update(dets, None)

    def rows(self, frame: int, output) -> np.ndarray:
        if not isinstance(output, np.ndarray):  # boxmot Tracks (from Detections input)
            output = np.concatenate([output.geometry.values.numpy(), output.track_ids.numpy()[:, None],
                                     output.scores.numpy()[:, None]], axis=1)
        return peer_output_rows(frame, output)
