"""Training runs on a Ray cluster: one job manager for the cluster, each run a Ray task on a node that has what it
asks for, run folders on a path every node and every app replica sees (DIFFUSION_LAB_RUNS).

Imported only when DIFFUSION_LAB_CLUSTER is set (ui.state.manager): without it nothing of Ray is imported.

- ``train_task``: ``lab.train.train`` as a Ray streaming-generator task (``num_cpus``, and a GPU when the run asks
  for cuda). Its events come back as ``serving.train_child``'s do; a stop is a file in the run folder that the task
  checks at every step (it then checkpoints and ends, as a stopped process does).
- ``events_on_ray``: ``serving.jobs.JobManager``'s executor for such tasks. A task that raises fails its run with the
  error; a worker that dies (killed, out of memory, its node lost) fails it with a message that says to resume, and
  a resume goes on from the run's last checkpoint, on whichever node has room.
- ``JobsActor``: a ``JobManager`` in a detached actor named after the runs folder: every app replica submits, lists,
  stops and resumes through it, so the per-browser cap and the fair order between browsers hold cluster-wide, a run
  started from one replica is watched and stopped from another, and the runs go on while an app replica restarts.
- ``ClusterJobManager``: what an app replica holds instead of a ``JobManager`` (the same methods, forwarded).
"""

from __future__ import annotations

import functools
import hashlib
import os
import threading
from pathlib import Path

import ray
import ray.exceptions

from lab.train_config import TrainConfig
from serving.cluster import NAMESPACE, RUNTIME_ENV, cluster_gpus
from serving.jobs import SERVER, ChildFailed, Job, JobManager
from serving.train_child import job_events

STOP_FILE = "stop"  # in a run's folder: the run checkpoints and ends at its next step


@ray.remote(num_returns="streaming", max_retries=0)
def train_task(run_dir: str, config: dict, resume: bool, threads: int):
    """Train on this node, yielding lab.train's events without tensors (the first says where it runs)."""
    import torch

    torch.set_num_threads(max(1, threads))
    yield {"kind": "node", "pid": os.getpid(), "node": ray.get_runtime_context().get_node_id()}
    yield from job_events(TrainConfig.from_dict(config), run_dir, resume, (Path(run_dir) / STOP_FILE).exists)


def events_on_ray(job: Job, resume: bool, cpus: float = 1):
    """serving.jobs' executor: the run as a Ray task with the resources it needs; its events, as a process's."""
    job.run_dir.mkdir(parents=True, exist_ok=True)
    stop_file = job.run_dir / STOP_FILE
    stop_file.unlink(missing_ok=True)
    gpus = 1 if job.config.device.startswith("cuda") else 0
    task = train_task.options(num_cpus=cpus, num_gpus=gpus, runtime_env=RUNTIME_ENV)
    events = task.remote(str(job.run_dir.resolve()), job.config.to_dict(), resume, max(1, int(cpus)))
    ended = threading.Event()
    threading.Thread(target=_pass_stop_on, args=(job, stop_file, ended), daemon=True).start()
    try:
        for ref in events:
            event = ray.get(ref)
            if event["kind"] == "node":
                job.pid = event["pid"]
                continue
            yield event
            if event["kind"] in ("stopped", "done"):
                return
    except ray.exceptions.RayTaskError as e:  # the training raised: its own error
        cause = e.cause if e.cause is not None else e
        raise ChildFailed(f"{type(cause).__name__}: {cause}", str(e)) from None
    except ray.exceptions.RayError as e:  # the worker died, or its node: the run's checkpoints are on the shared folder
        raise ChildFailed(
            f"the Ray worker training run {job.id} died ({type(e).__name__}); resume it to go on from its last "
            "checkpoint",
            str(e),
        ) from None
    finally:
        ended.set()
        job.pid = None
        stop_file.unlink(missing_ok=True)


def _pass_stop_on(job: Job, stop_file: Path, ended: threading.Event) -> None:
    """Write the stop file when the job is asked to stop (the task reads it at its next step)."""
    while not ended.is_set():
        if job._stop.wait(timeout=0.2):
            stop_file.touch()
            return


METHODS = frozenset(
    {
        "submit",
        "resume",
        "stop",
        "get",
        "jobs",
        "all_jobs",
        "running",
        "queued",
        "queue_position",
        "has_checkpoint",
        "checkpoint_step",
        "zip_artefacts",
        "cleanup",
        "share",
        "move_first",
        "clear_queue",
        "remove",
    }
)


class ClusterJobsUnavailable(ValueError):
    """The cluster's job manager does not answer (its actor died and has not come back, the cluster is gone)."""


@ray.remote(max_restarts=-1)  # the actor comes back if its process dies (it rereads the runs folder: serving.jobs)
class JobsActor:
    """The cluster's job manager (a serving.jobs.JobManager whose runs are Ray tasks); app replicas call ``call`` with
    a method of METHODS (nothing else: not shutdown, not its internals)."""

    def __init__(self, root: str, max_running: int, max_per_owner: int, cpus: float, bounds: dict | None = None):
        self.manager = JobManager(
            root,
            max_running,
            max_per_owner,
            events=functools.partial(events_on_ray, cpus=cpus),
            cuda_elsewhere=lambda: cluster_gpus() > 0,
            **(bounds or {}),
        )  # a cuda run is checked against the cluster's GPUs

    def call(self, method: str, *args, **kwargs):
        if method not in METHODS:
            raise ValueError(f"the cluster's job manager has no method {method!r} for app replicas")
        return getattr(self.manager, method)(*args, **kwargs)

    def max_running(self) -> int:
        return self.manager.max_running


# A new JobsActor's process starts and imports torch and the lab before its first answer: over a minute on a busy
# 2-core machine (60 s, the wait of every other call, failed there).
STARTUP_S = 300.0


def actor_name(root: Path) -> str:
    """One job manager per runs folder."""
    return "jobs-" + hashlib.sha1(str(root).encode()).hexdigest()[:12]


class ClusterJobManager:
    """An app replica's job manager on a cluster: serving.jobs.JobManager's methods, answered by the cluster's JobsActor
    (created by the first replica that asks, with its limits; found by the others)."""

    def __init__(self, root: str | Path, max_running: int = 1, max_per_owner: int = 2, cpus: float = 1, **bounds):
        self.root = Path(root).resolve()
        self.actor = JobsActor.options(
            name=actor_name(self.root),
            namespace=NAMESPACE,
            lifetime="detached",
            get_if_exists=True,
            max_concurrency=64,
            num_cpus=0,
            runtime_env=RUNTIME_ENV,
            max_task_retries=3,
        ).remote(str(self.root), max_running, max_per_owner, cpus, bounds)
        self.max_running = self._get(self.actor.max_running.remote(), STARTUP_S)

    def _call(self, method: str, *args, **kwargs):
        return self._get(self.actor.call.remote(method, *args, **kwargs))

    def _get(self, ref, timeout: float = 60.0):
        try:
            return ray.get(ref, timeout=timeout)
        except ray.exceptions.RayTaskError as e:  # RunLimit, ValueError...: the manager's own error, as it said it
            raise (e.cause if e.cause is not None else e) from None
        except (
            ray.exceptions.RayError,
            ConnectionError,
        ) as e:  # the actor died (and is coming back), the cluster is gone
            raise ClusterJobsUnavailable(
                f"the cluster's job manager does not answer ({type(e).__name__}); it restarts by itself: "
                "reload the page in a minute. If it goes on, check the Ray cluster (`ray status`)."
            ) from None

    def submit(self, owner, config) -> Job:
        return self._call("submit", owner, config)

    def resume(self, job_id: str, by=SERVER, **changes) -> Job:
        return self._call("resume", job_id, by, **changes)

    def stop(self, job_id: str, by=SERVER) -> None:
        self._call("stop", job_id, by)

    def get(self, job_id: str) -> Job:
        return self._call("get", job_id)

    def jobs(self, owner: str) -> list[Job]:
        return self._call("jobs", owner)

    def running(self) -> list[Job]:
        return self._call("running")

    def queue_position(self, job_id: str) -> int | None:
        return self._call("queue_position", job_id)

    def has_checkpoint(self, job_id: str) -> bool:
        return self._call("has_checkpoint", job_id)

    def checkpoint_step(self, job_id: str) -> int | None:
        return self._call("checkpoint_step", job_id)

    def zip_artefacts(self, job_id: str, by=SERVER) -> bytes:
        return self._call("zip_artefacts", job_id, by)

    def all_jobs(self, by) -> list[Job]:
        return self._call("all_jobs", by)

    def queued(self) -> list[str]:
        return self._call("queued")

    def share(self, job_id: str, shared: bool, by) -> None:
        self._call("share", job_id, shared, by)

    def move_first(self, job_id: str, by) -> None:
        self._call("move_first", job_id, by)

    def clear_queue(self, by) -> list[str]:
        return self._call("clear_queue", by)

    def remove(self, job_id: str, by) -> None:
        self._call("remove", job_id, by)

    def cleanup(self, max_age_s: float, now: float | None = None) -> list[str]:
        return self._call("cleanup", max_age_s, now)

    def warm_up(self) -> None:
        """Nothing to start here: runs are Ray tasks (JobManager.warm_up starts a fork server for a server's own)."""

    def shutdown(self, timeout: float = 10.0) -> None:
        """An app replica stops: nothing to do, the runs go on in the cluster and the manager lives in its actor."""
