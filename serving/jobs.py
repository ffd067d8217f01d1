"""Training jobs for a server full of students: background processes, a server-wide limit, a queue, runs on disk.

Each job trains with ``lab.train.train`` in its own process, watched by a thread of the server, into
``<root>/<job id>/`` (checkpoints, history.jsonl, samples/): the pages' redraws and the training never wait for
each other on the GIL. At most ``max_running`` jobs train at once; the rest wait, in a fair order between
browsers (the one with the fewest runs going first, then the one whose last run started longest ago, then
submission order). A browser has at most ``max_per_owner`` runs queued or running. Jobs belong to an owner (a
browser's id), survive the page that started them, can be stopped and resumed, and keep the error of a run that
failed. A new manager on the same folder (a restarted server) lists the runs found there: finished ones done,
interrupted ones stopped and resumable. ``cleanup`` removes finished runs whose owner has not been seen for a while.
No Streamlit here: the training page only reads and commands.
"""

from __future__ import annotations

import io
import json
import shutil
import signal
import statistics
import subprocess
import sys
import threading
import time
import traceback
import uuid
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from lab.checkpoint import checkpoint_step
from lab.train import TrainConfig, read_history, resumed_config
from serving.settings import ROOT
STATES = ("queued", "running", "stopping", "stopped", "done", "failed")
RECENT = 20  # steps: the window of a run's current pace (its ETA, its images/s)
OWNER_FILE = "owner.json"  # in each run's folder: who started it, when, its total steps (a restarted server reads it)
SEEN_FILE = "owners_seen.json"  # in the runs folder: when each owner's browser last listed its runs
SEEN_EVERY = 60.0  # seconds: how often a page's visits are written to SEEN_FILE


class RunLimit(ValueError):
    """A browser asked for more runs than it may have queued or running at once."""


@dataclass
class Job:
    id: str
    owner: str
    config: TrainConfig
    run_dir: Path
    status: str = "queued"  # one of STATES
    error: str | None = None
    steps: list = field(default_factory=list)  # per-step stats: step, epoch, loss, lr, images_per_s, time
    total_steps: int | None = None
    samples_png: Path | None = None  # the latest sample grid (its name says when: lab.train)
    submitted: float = field(default_factory=time.time)
    resumes: int = 0
    pid: int | None = None  # of the training process, while it runs
    _stop: threading.Event = field(default_factory=threading.Event, repr=False)

    def __getstate__(self) -> dict:  # a copy for another process (a cluster's job manager answers from an actor)
        return {k: v for k, v in self.__dict__.items() if k != "_stop"}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _stop=threading.Event())

    @property
    def samples_label(self) -> str | None:
        """When the latest sample grid was drawn, from its name: epoch_003.png "after epoch 3", step_000040.png "at
        step 40"."""
        if self.samples_png is None:
            return None
        kind, _, number = self.samples_png.stem.partition("_")
        return f"after epoch {int(number)}" if kind == "epoch" else f"at step {int(number)}"

    @property
    def finished(self) -> bool:
        return self.status in ("stopped", "done", "failed")

    def eta_seconds(self) -> float | None:
        """Seconds left at the pace of the last RECENT steps."""
        if self.total_steps is None or len(self.steps) < 2:
            return None
        recent = self.steps[-RECENT:]
        pace = (recent[-1]["time"] - recent[0]["time"]) / max(len(recent) - 1, 1)
        return pace * (self.total_steps - recent[-1]["step"])

    def images_per_s(self) -> float | None:
        """The median rate of the last RECENT steps (one step's rate jumps: an epoch's short last batch)."""
        return statistics.median(s["images_per_s"] for s in self.steps[-RECENT:]) if self.steps else None


class ChildFailed(RuntimeError):
    """The training process raised; summary is "ExcType: message", child_traceback its traceback."""

    def __init__(self, summary: str, child_traceback: str):
        super().__init__(summary)
        self.summary, self.child_traceback = summary, child_traceback


def _events_of_child(job: Job, resume: bool):
    """Train job in its own process (`python -m serving.train_child`: the server's threads and the training never wait
    for each other on the GIL) and yield its events. Stop is passed on; a process that dies without a word
    (killed, out of memory) is an error."""
    args = [sys.executable, "-m", "serving.train_child", str(job.run_dir.resolve()), json.dumps(job.config.to_dict())]
    args += ["--resume"] if resume else []
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.run_dir / "train.log", "ab") as log:
        process = subprocess.Popen(args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1)
    job.pid = process.pid
    watcher = threading.Thread(target=_pass_stop_on, args=(job, process), daemon=True)
    watcher.start()
    try:
        for line in process.stdout:
            if not line.startswith("{"):
                continue
            event = json.loads(line)
            if event["kind"] == "error":
                raise ChildFailed(event["summary"], event["traceback"])
            yield event
            if event["kind"] in ("stopped", "done"):
                return
        process.wait(timeout=30)
        raise ChildFailed(f"the training process {ended(process.returncode)}; its last words are in train.log of run {job.id}", "")
    finally:
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
        job.pid = None


def ended(returncode: int) -> str:
    """How a process that said nothing ended, for a person: killed by which signal, or its exit code."""
    if returncode is not None and returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        cause = " (out of memory: the kernel's killer; or kill -9)" if name == "SIGKILL" else ""
        return f"was killed by {name}{cause}"
    return f"ended without a word (exit code {returncode})"


def _pass_stop_on(job: Job, process: subprocess.Popen) -> None:
    """Tell the training process to stop when the job is asked to."""
    while process.poll() is None:
        if job._stop.wait(timeout=0.2):
            try:
                process.stdin.write("stop\n")
                process.stdin.flush()
            except OSError:  # it has just ended
                pass
            return


class JobManager:
    """Submit, list, stop and resume training jobs; one per server (the app keeps it in st.cache_resource)."""

    def __init__(self, root: str | Path = "runs/jobs", max_running: int = 1, max_per_owner: int = 2, events=None,
                 cuda_elsewhere: Callable[[], bool] = lambda: False):  # fmt: skip
        self.root = Path(root)
        self.events = events or _events_of_child  # (job, resume) -> the run's events: a process here, or a Ray task
        self.cuda_elsewhere = cuda_elsewhere  # whether runs may ask for cuda that this machine lacks (a Ray cluster's GPU)
        self.max_running = max_running
        self.max_per_owner = max_per_owner  # runs one browser may have queued or running at once
        self._jobs: dict[str, Job] = {}
        self._queue: list[str] = []  # job ids waiting, in submission (or resume) order
        self._resume: dict[str, bool] = {}  # a queued job's: whether it resumes from its checkpoint
        self._last_start: dict[str, float] = {}  # owner -> when its last run started (fair order)
        self._lock = threading.RLock()
        self._closing = False  # shutting down: no run starts any more
        self._workers: dict[str, threading.Thread] = {}  # job id -> the thread that runs it and records how it ended
        self._seen, self._seen_saved = self._load_seen(), 0.0
        for job in self._reload():
            self._start(job, resume=False)

    def _reload(self) -> list[Job]:
        """Every run on disk (the server restarted): finished ones done; interrupted ones stopped, resumable from their
        last checkpoint or, without one, restartable from their config; failed ones failed. Returns the runs that were
        waiting in the queue, to queue again."""
        waiting = []
        for owner_file in sorted(self.root.glob(f"*/{OWNER_FILE}")) if self.root.is_dir() else []:
            run_dir = owner_file.parent
            try:
                meta = json.loads(owner_file.read_text())
                config = TrainConfig.from_dict(meta.get("config") or json.loads((run_dir / "config.json").read_text()))
                owner, submitted = str(meta["owner"]), float(meta["submitted"])
            except (OSError, ValueError, TypeError, KeyError):  # not one of ours: leave it alone
                continue
            latest = (run_dir / "latest").read_text().strip() if (run_dir / "latest").exists() else None
            job = Job(run_dir.name, owner, config, run_dir, "done" if latest and latest.startswith("final") else "stopped",
                      total_steps=meta.get("total_steps"), submitted=submitted)  # fmt: skip
            if job.status == "stopped" and (run_dir / "error.txt").exists():
                job.status, job.error = "failed", (run_dir / "error.txt").read_text().strip().splitlines()[-1]
            elif latest is None and meta.get("status") == "queued":
                waiting.append(job)
            job.steps = read_history(run_dir) if latest else []  # without a checkpoint it starts again from step 0
            samples = sorted((run_dir / "samples").glob("*.png"), key=lambda p: p.stat().st_mtime)
            if samples:
                job.samples_png = samples[-1]
            self._jobs[job.id] = job
        return sorted(waiting, key=lambda j: j.submitted)

    def _save_owner(self, job: Job) -> None:
        """owner.json: whose run, when, its config and its status (what a restarted server needs to list it)."""
        job.run_dir.mkdir(parents=True, exist_ok=True)
        meta = {"owner": job.owner, "submitted": job.submitted, "total_steps": job.total_steps, "status": job.status,
                "config": job.config.to_dict()}  # fmt: skip
        tmp = job.run_dir / f".{OWNER_FILE}.tmp"
        tmp.write_text(json.dumps(meta))
        tmp.replace(job.run_dir / OWNER_FILE)

    def has_checkpoint(self, job_id: str) -> bool:
        return (self.get(job_id).run_dir / "latest").exists()

    def checkpoint_step(self, job_id: str) -> int | None:
        """The optimizer step of the run's latest checkpoint (None: it has none, or it cannot be read)."""
        return checkpoint_step(self.get(job_id).run_dir)

    def submit(self, owner: str, config: TrainConfig) -> Job:
        """Queue a new run for owner; it starts as soon as a slot is free and its turn comes (RunLimit: too many)."""
        config = config.validate(self.cuda_elsewhere())
        self._check_limit(owner)
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job = Job(job_id, owner, config, self.root / job_id)
        with self._lock:
            self._jobs[job_id] = job
        self._save_owner(job)
        self._start(job, resume=False)
        return job

    def resume(self, job_id: str, **changes) -> Job:
        """Queue a stopped or failed run again: from its latest checkpoint, or from the start if it has none; changes
        to lab.train.RESUMABLE settings (lr, epochs, max_steps, grad_clip...) apply from there (ValueError for others)."""
        job = self.get(job_id)
        if not job.finished or job.status == "done":
            raise ValueError(f"run {job_id} is {job.status}: only a stopped or failed run can be resumed")
        self._check_limit(job.owner)
        job.config = resumed_config(job.config, changes, self.cuda_elsewhere())
        from_checkpoint = self.has_checkpoint(job_id)
        job.status, job.error, job.resumes = "queued", None, job.resumes + 1
        job.steps = job.steps if from_checkpoint else []
        job._stop.clear()
        self._save_owner(job)
        self._start(job, resume=from_checkpoint)
        return job

    def _check_limit(self, owner: str) -> None:
        going = [j for j in self._jobs.values() if j.owner == owner and not j.finished]
        if len(going) >= self.max_per_owner:
            n = len(going)
            raise RunLimit(f"This browser already has {n} run{'s' if n > 1 else ''} queued or running, the most one browser "
                           f"may have at once on this server is {self.max_per_owner} (so that a room shares it fairly): "
                           "stop one, or wait until one finishes. The server's DIFFUSION_LAB_RUNS_PER_BROWSER sets the limit.")  # fmt: skip

    def stop(self, job_id: str) -> None:
        """Ask a run to stop: it writes a checkpoint and ends (a queued run is stopped at once)."""
        job = self.get(job_id)
        job._stop.set()
        with self._lock:
            if job_id in self._queue:
                self._queue.remove(job_id)
                self._resume.pop(job_id)
                job.status = "stopped"
                self._save_owner(job)
            elif job.status == "running":
                job.status = "stopping"

    def shutdown(self, timeout: float = 10.0) -> None:
        """The server is stopping: start no run, ask the running ones to checkpoint and wait for them (at most
        timeout seconds). Queued runs stay queued on disk: a restarted server queues them again."""
        with self._lock:
            self._closing = True
            going = [self._workers[j.id] for j in self.running() if j.id in self._workers]
            for job in self.running():
                job._stop.set()
        end = time.time() + timeout
        for worker in going:  # each records its run's end (owner.json) before it finishes
            worker.join(max(0.0, end - time.time()))

    def get(self, job_id: str) -> Job:
        if job_id not in self._jobs:
            raise ValueError(f"no job {job_id!r}")
        return self._jobs[job_id]

    def jobs(self, owner: str) -> list[Job]:
        """owner's jobs, newest first (its browser is seen: see cleanup)."""
        self._saw(owner)
        return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: -j.submitted)

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next run to start; None if the job is not waiting."""
        with self._lock:
            order = self._order()
            return order.index(job_id) + 1 if job_id in order else None

    def running(self) -> list[Job]:
        return [j for j in self._jobs.values() if j.status in ("running", "stopping")]

    def _order(self) -> list[str]:
        """The queued ids in the order they will start: the owner with the fewest runs going first, then the owner
        whose last run started longest ago (one who never started one first), then submission order."""
        going = Counter(j.owner for j in self.running())
        fair = lambda i: (going[self._jobs[i].owner], self._last_start.get(self._jobs[i].owner, 0.0))  # noqa: E731
        return sorted(self._queue, key=fair)  # sorted() is stable: submission order among equals

    def _start(self, job: Job, resume: bool) -> None:
        with self._lock:
            self._queue.append(job.id)
            self._resume[job.id] = resume
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued runs, in fair order, while a slot is free."""
        with self._lock:
            while self._queue and len(self.running()) < self.max_running and not self._closing:
                job = self._jobs[self._order()[0]]
                self._queue.remove(job.id)
                job.status = "running"
                self._save_owner(job)
                self._last_start[job.owner] = time.time()
                worker = threading.Thread(target=self._work, args=(job, self._resume.pop(job.id)), name=f"train-{job.id}", daemon=True)
                self._workers[job.id] = worker
                worker.start()

    def _work(self, job: Job, resume: bool) -> None:
        try:
            for event in self.events(job, resume):
                kind = event["kind"]
                if kind == "start":
                    job.total_steps = event["total_steps"]
                    self._save_owner(job)
                elif kind == "step":
                    while job.steps and job.steps[-1]["step"] >= event["step"]:  # resumed from an earlier checkpoint
                        job.steps.pop()
                    job.steps.append({k: v for k, v in event.items() if k != "kind"} | {"logged": time.time()})
                elif kind in ("stopped", "done"):
                    job.status = kind
                if event.get("samples_png"):  # an epoch's end, or every config.sample_every_steps steps
                    job.samples_png = Path(event["samples_png"])
        except Exception as e:  # the run's error stays with the job, for its page to show
            job.status, job.error = "failed", getattr(e, "summary", f"{type(e).__name__}: {e}")
            (job.run_dir / "error.txt").parent.mkdir(parents=True, exist_ok=True)
            (job.run_dir / "error.txt").write_text(getattr(e, "child_traceback", None) or traceback.format_exc())
        finally:
            self._save_owner(job)
            self._workers.pop(job.id, None)
            self._dispatch()

    # --- owners seen, and the cleanup of runs nobody owns any more

    def _load_seen(self) -> dict[str, float]:
        try:
            return {str(k): float(v) for k, v in json.loads((self.root / SEEN_FILE).read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _saw(self, owner: str) -> None:
        now = time.time()
        with self._lock:
            self._seen[owner] = now
            if now - self._seen_saved > SEEN_EVERY:
                self._seen_saved = now
                self.root.mkdir(parents=True, exist_ok=True)
                tmp = self.root / f".{SEEN_FILE}.tmp"
                tmp.write_text(json.dumps(self._seen))
                tmp.replace(self.root / SEEN_FILE)  # atomic: a restarted server never reads half a file

    def cleanup(self, max_age_s: float, now: float | None = None) -> list[str]:
        """Remove the finished runs of owners not seen for max_age_s (their run folders too); the ids removed.

        A run that is queued, running or stopping is never removed; an owner never seen counts from its run's submission."""
        now = time.time() if now is None else now
        with self._lock:
            old = [j for j in self._jobs.values() if j.finished and now - max(self._seen.get(j.owner, 0.0), j.submitted) > max_age_s]
            for job in old:
                del self._jobs[job.id]
                shutil.rmtree(job.run_dir, ignore_errors=True)
        return [job.id for job in old]

    def zip_artefacts(self, job_id: str) -> bytes:
        """The run's folder (config, history, checkpoints, samples) as a zip."""
        job = self.get(job_id)
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(job.run_dir.rglob("*")):
                if path.is_file() and not path.name.startswith("."):
                    z.write(path, path.relative_to(job.run_dir.parent))
            z.writestr(f"{job.id}/job.json", json.dumps({"id": job.id, "status": job.status, "error": job.error,
                                                           "config": job.config.to_dict()}, indent=1))  # fmt: skip
        return buffer.getvalue()
