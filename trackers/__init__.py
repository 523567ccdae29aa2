"""Online multi-object tracking: association of per-frame detections (+ embeddings) into MOT results.

``JDETracker`` is the per-frame state machine; ``run_sequence`` drives any ``detect(frame)`` callable over a
sequence folder or video and writes a MOTChallenge result file; ``render_tracks`` draws tracks for people.
"""
from trackers.config import load_tracker_config
from trackers.jde_tracker import JDETracker
from trackers.runner import run_sequence, track_arrays
from trackers.tracklet import Track, TrackState
from trackers.visualize import render_tracks

__all__ = ["JDETracker", "Track", "TrackState", "load_tracker_config", "render_tracks", "run_sequence",
           "track_arrays"]
