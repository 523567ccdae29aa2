"""Run launchers: independent runs (bench runs, later search candidates) dispatched to local worker processes
(``--jobs N``) or to a Ray cluster (``--launcher ray``), behind one interface (:class:`Launcher`).

A launcher knows nothing about what a run does: it gets :class:`Task` s (a picklable function, its arguments and
resource request) and calls ``on_done(task, result)`` as each finishes; the caller keeps caching and resume.
"""
from mot_kd.launch.base import Launcher, Task
from mot_kd.launch.local import LocalLauncher
from mot_kd.launch.ray_cluster import RayLauncher

LAUNCHERS = ("local", "ray")


def make_launcher(name: str, jobs: int = 1, address: str | None = None) -> Launcher:
    """``local`` (``jobs`` worker processes) or ``ray`` (the cluster at ``address``; None: a local instance)."""
    return RayLauncher(address) if name == "ray" else LocalLauncher(jobs)


__all__ = ["LAUNCHERS", "Launcher", "LocalLauncher", "RayLauncher", "Task", "make_launcher"]
