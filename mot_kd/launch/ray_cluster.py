"""Ray launcher (``--launcher ray [--address ...]``): one task per Ray worker with its CPU/GPU request.

Why Ray: an existing engine that schedules by resources over many machines, so a bench or a search uses a
cluster with no scheduler of ours. The launch joins the Ray instance this process already runs (``ray.init``
by the caller, as the tests do), else the cluster at ``address`` (``auto``, ``ray://host:10001``), else starts
a local one. Every worker must import mot_kd and see the output folder at the same path (a shared filesystem
on a real cluster): caching and resume stay the caller's, keyed by the run folders.
"""
from __future__ import annotations

from typing import Callable

from loguru import logger

from mot_kd.errors import InputError
from mot_kd.launch.base import Task, failure


def _ray():
    try:
        import ray
    except ImportError:
        raise InputError("--launcher ray: the ray package is not installed; pip install 'mot-kd[ray]' "
                         "(or use the local launcher, --jobs N)") from None
    return ray


class RayLauncher:
    def __init__(self, address: str | None = None):
        self.address = address

    def connect(self):
        """Join the running Ray instance, the cluster at ``address`` or a new local one; errors are one line."""
        ray = _ray()
        if not ray.is_initialized():
            try:
                ray.init(address=self.address, include_dashboard=False, log_to_driver=False)
            except (ConnectionError, ValueError, RuntimeError) as exc:  # unreachable, malformed, refused
                raise InputError(f"--address {self.address}: cannot connect to a Ray cluster ({exc})") from None
            logger.info(f"ray: connected ({ray.cluster_resources().get('CPU', 0):g} CPUs, "
                        f"{ray.cluster_resources().get('GPU', 0):g} GPUs)")
        return ray

    def run(self, tasks: list[Task], on_done: Callable[[Task, object], None]) -> None:
        """Submit every task; the first failure cancels the others (running ones are interrupted) and is raised."""
        if not tasks:
            return
        ray = self.connect()
        nodes = [n["Resources"] for n in ray.nodes() if n.get("Alive", True)]  # a task runs on one node
        for task in tasks:
            if not any(task.cpus <= n.get("CPU", 0) and task.gpus <= n.get("GPU", 0) for n in nodes):
                raise InputError(f"{task.name}: asks for {task.cpus} CPU(s) and {task.gpus:g} GPU(s) but no Ray node "
                                 f"has that many (largest: {max((n.get('CPU', 0) for n in nodes), default=0):g} "
                                 f"CPUs, {max((n.get('GPU', 0) for n in nodes), default=0):g} GPUs)")
        refs = {ray.remote(num_cpus=t.cpus, num_gpus=t.gpus, max_retries=0)(t.fn).remote(*t.args): t for t in tasks}
        pending = list(refs)
        while pending:
            (ref,), pending = ray.wait(pending, num_returns=1)
            task = refs[ref]
            try:
                result = ray.get(ref)
            except ray.exceptions.RayError as exc:  # the task raised, or its worker or node died
                for other in pending:
                    ray.cancel(other)
                error = exc.cause if isinstance(getattr(exc, "cause", None), BaseException) else exc
                raise failure(task, error) from None
            on_done(task, result)
