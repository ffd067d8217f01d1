"""Training jobs for a server full of students: background processes, a server-wide limit, a queue, runs on disk.

Each job trains with ``lab.train.train`` in its own process, watched by a thread of the server, into
``<root>/<job id>/`` (checkpoints, history.jsonl, samples/): the pages' redraws and the training never wait for
each other on the GIL. At most ``max_running`` jobs train at once; the rest wait, in a fair order between
browsers (a run the server was training when it went away first, then the owner with the fewest runs going, then
queue order, a run counting from no earlier than its owner's last start: a new or made-up owner never jumps ahead of
runs queued before it), at most ``max_queued`` of them. A browser (an owner) and a session each have at
most ``max_per_owner`` runs queued or running. A run trains at most ``max_minutes`` at a stretch (then it stops with a
checkpoint, resumable) and starts only with ``min_free_mb`` free on the disk.

Jobs belong to an owner (a browser's secret id), survive the page that started them, can be stopped and resumed by
their owner, by the lecturer, or by anyone once the lecturer shares the run's controls (``Caller``; ``NotAllowed``
otherwise); the lecturer also reorders and clears the queue. A failed run keeps its error. A new manager on the same
folder (a restarted server) lists the runs found there, each folder read in its own guard (a damaged one is listed as
damaged, with what to do, and nothing else is affected): finished ones done, interrupted ones queued again first,
resuming from their last checkpoint. Every status and error file is written atomically and fsynced; a write that
fails fails its run with a message and frees its slot. One server per runs folder (``RunsFolderBusy`` for a second).
``cleanup`` removes finished runs whose owner has not been seen for a while.
No Streamlit here: the training page only reads and commands.
"""

from __future__ import annotations

import errno
import fcntl
import io
import json
import logging
import os
import re
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
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lab.checkpoint import checkpoint_step
from lab.train import TrainConfig, read_history, resumed_config
from models.files import write_text_atomic
from serving.settings import ROOT

log = logging.getLogger("diffusion_lab")
STATES = ("queued", "running", "stopping", "stopped", "done", "failed", "damaged")
RECENT = 20  # steps: the window of a run's current pace (its ETA, its images/s)
OWNER_FILE = "owner.json"  # in each run's folder: who started it, when, its total steps (a restarted server reads it)
SEEN_FILE = "owners_seen.json"  # in the runs folder: when each owner's browser last listed its runs
LOCK_FILE = ".server.lock"  # in the runs folder: held by the one server that manages it
SEEN_EVERY = 60.0  # seconds: how often a page's visits are written to SEEN_FILE
RUN_ID = re.compile(r"\d{8}-\d{6}-[0-9a-f]{6}")  # what submit names a run: a link's ?follow= is checked against it
OWNER_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")  # a browser's id (ui.state.owner_id makes 22 random characters)


@dataclass(frozen=True)
class Caller:
    """Who asks: a browser's owner id (its runs), its session (a second cap, whatever owner it claims), and whether it
    is the lecturer (any run, the queue)."""

    owner: str
    session: str = ""
    lecturer: bool = False
    address: str = ""  # its network address (serving.settings.client_address; "" for this machine): a third cap


SERVER = Caller("", lecturer=True)  # the lab's own code (tools, tests, the CLI): may do anything


class NotAllowed(ValueError):
    """The caller may not do this to that run (not theirs, not shared with the room, not the lecturer)."""


class RunsFolderBusy(ValueError):
    """Another server manages this runs folder (two would start a run twice and list each other's as stopped)."""


_HELD: set[Path] = set()  # the runs folders a manager of this process holds
_HELD_LOCK = threading.Lock()


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
    session: str = ""  # the session that queued it (the per-session cap)
    address: str = ""  # the network address that queued it (the per-address cap; "" for this machine)
    shared: bool = False  # the lecturer shared its controls with the room: anyone may stop and resume it
    note: str | None = None  # why it stopped, when the server stopped it (its time limit)
    interrupted: bool = False  # the server stopped it on its way down: it goes on, first, when the server is back
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
        return self.status in ("stopped", "done", "failed", "damaged")

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
        process = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True, bufsize=1
        )
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
        raise ChildFailed(
            f"the training process {ended(process.returncode)}; its last words are in train.log of run {job.id}", ""
        )
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

    def __init__(
        self,
        root: str | Path = "runs/jobs",
        max_running: int = 1,
        max_per_owner: int = 2,
        events=None,
        cuda_elsewhere: Callable[[], bool] = lambda: False,
        max_queued: int = 20,
        max_minutes: float = 0.0,
        min_free_mb: float = 0.0,
        max_per_address: int = 0,
    ):
        self.root = Path(root)
        self.events = events or _events_of_child  # (job, resume) -> the run's events: a process here, or a Ray task
        self.cuda_elsewhere = (
            cuda_elsewhere  # whether runs may ask for cuda that this machine lacks (a Ray cluster's GPU)
        )
        self.max_running = max_running
        self.max_per_owner = max_per_owner  # runs one browser (and one session) may have queued or running at once
        self.max_queued = max_queued  # runs waiting, all browsers together
        self.max_per_address = max_per_address  # runs one network address may have queued or running; 0: no cap
        self.max_minutes = max_minutes  # a run stops (checkpointed, resumable) after this long at a stretch; 0: never
        self.min_free_mb = min_free_mb  # a run starts only with this much free disk
        self._jobs: dict[str, Job] = {}
        self._queue: list[str] = []  # job ids waiting, in submission (or resume) order
        self._resume: dict[str, bool] = {}  # a queued job's: whether it resumes from its checkpoint
        self._queued_at: dict[str, float] = {}  # a queued job's: when it was queued (fair order)
        self._first: list[str] = []  # queued ids that go before the others (interrupted runs, the lecturer's picks)
        self._last_start: dict[str, float] = {}  # owner -> when its last run started (fair order)
        self._lock = threading.RLock()
        self._closing = False  # shutting down: no run starts any more
        self._workers: dict[str, threading.Thread] = {}  # job id -> the thread that runs it and records how it ended
        self._hold_folder()
        try:
            self._seen, self._seen_saved = self._load_seen(), 0.0
            for job, resume in self._reload():
                self._start(job, resume=resume, first=job.interrupted)
        except BaseException:  # a manager that could not start (a full disk...) gives its folder and lock file back
            self._release_folder()
            raise

    def _hold_folder(self) -> None:
        """Take the runs folder: in this process (a POSIX record lock is the process's, so a second manager of the same
        process would get it again) and against other processes (the record lock: released when this process ends,
        however it ends). A folder another manager holds is refused with what to do; the lock file is closed on
        every way out (a full disk, a busy folder)."""
        self.root.mkdir(parents=True, exist_ok=True)
        folder = self.root.resolve()
        with _HELD_LOCK:
            if folder in _HELD:
                raise RunsFolderBusy(
                    "this server already trains the runs of its runs folder with another job manager: "
                    "one manager per runs folder (two would start a run twice)"
                )
            _HELD.add(folder)
        fd = None
        try:
            fd = os.open(self.root / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                log.error("another process holds the runs folder %s (its process id is in %s)", self.root, LOCK_FILE)
                raise RunsFolderBusy(
                    "another Diffusion Lab server trains the runs of this server's runs folder: two servers on one "
                    "runs folder would start a run twice. Give this server its own folder (DIFFUSION_LAB_RUNS), or "
                    "run both app servers on a Ray cluster (DIFFUSION_LAB_CLUSTER), which shares one job manager."
                ) from None
            os.ftruncate(fd, 0)
            os.pwrite(fd, str(os.getpid()).encode(), 0)
        except BaseException:
            if fd is not None:
                os.close(fd)
            with _HELD_LOCK:
                _HELD.discard(folder)
            raise
        self._lock_fd, self._folder = fd, folder

    def _release_folder(self) -> None:
        """Give the runs folder up (shutdown): another manager of this process may take it."""
        with _HELD_LOCK:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
                _HELD.discard(self._folder)

    # --- reading the runs folder at start-up

    def _reload(self) -> list[tuple[Job, bool]]:
        """Every run on disk (the server restarted), each folder read in its own guard: finished ones done, failed ones
        failed, stopped ones stopped; those the server was training when it went away queued again (first, resuming
        from their last checkpoint), those that were waiting queued again; a folder that cannot be read listed as
        damaged (for its owner, with what to do) and logged. Returns the runs to queue and whether each resumes."""
        again = []
        for run_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not (run_dir / OWNER_FILE).exists():  # not one of ours: leave it alone
                continue
            try:
                job, queue = self._read_run(run_dir)
            except Exception as e:
                log.warning("run folder %s is damaged (%s: %s); listed as damaged", run_dir, type(e).__name__, e)
                job, queue = self._damaged(run_dir, e), False
            self._jobs[job.id] = job
            if queue:
                again.append((job, (run_dir / "latest").is_file()))
        return sorted(again, key=lambda q: (not q[0].interrupted, q[0].submitted))

    def _read_run(self, run_dir: Path) -> tuple[Job, bool]:
        """One run folder as a job, and whether it is to be queued again (ValueError, OSError...: damaged)."""
        meta = json.loads((run_dir / OWNER_FILE).read_text())
        if not isinstance(meta, dict):
            raise ValueError(f"{OWNER_FILE} holds {type(meta).__name__}, not a run's record")
        config = TrainConfig.from_dict(meta.get("config") or json.loads((run_dir / "config.json").read_text()))
        owner, submitted, said = str(meta["owner"]), float(meta["submitted"]), meta.get("status")
        latest = (run_dir / "latest").read_text().strip() if (run_dir / "latest").exists() else None
        status = "done" if latest and latest.startswith("final") else "stopped"
        total, note = meta.get("total_steps"), meta.get("note")
        job = Job(
            run_dir.name,
            owner,
            config,
            run_dir,
            status,
            submitted=submitted,
            shared=meta.get("shared") is True,
            total_steps=total if isinstance(total, int) and not isinstance(total, bool) and total > 0 else None,
            note=note if isinstance(note, str) else None,
        )
        queue = False
        if job.status == "stopped" and (run_dir / "error.txt").exists():
            said_lines = (run_dir / "error.txt").read_text(encoding="utf-8", errors="replace").strip().splitlines()
            job.status, job.error = (
                "failed",
                said_lines[-1]
                if said_lines
                else "the run failed and its error could not be saved (the server's disk may have been full)",
            )
        elif job.status == "stopped" and said in ("running", "interrupted", "queued"):
            job.status, job.interrupted, queue = (
                "queued",
                said != "queued",
                True,
            )  # training when the server went away, or waiting
        job.steps = read_history(run_dir) if latest else []  # without a checkpoint it starts again from step 0
        samples = sorted(
            (p for p in (run_dir / "samples").glob("*.png") if p.is_file() and not p.is_symlink()),
            key=lambda p: p.stat().st_mtime,
        )  # a link could point anywhere on the server: never shown
        if samples:
            job.samples_png = samples[-1]
        return job, queue

    def _damaged(self, run_dir: Path, e: Exception) -> Job:
        """A run folder that cannot be read, listed for its owner (if its owner can still be read) and the lecturer."""
        owner = ""
        try:
            meta = json.loads((run_dir / OWNER_FILE).read_text())
            owner = str(meta["owner"]) if isinstance(meta, dict) and isinstance(meta.get("owner"), str) else ""
        except Exception:
            pass
        job = Job(run_dir.name, owner, TrainConfig(), run_dir, "damaged")
        job.error = (
            f"this run's folder is damaged ({type(e).__name__}: {str(e)[:200]}), so it cannot be shown or resumed. "
            "Download it to keep what is there, then start a new run; the lecturer can remove it."
        )
        return job

    def _save_owner(self, job: Job, status: str | None = None) -> None:
        """owner.json: whose run, when, its config and its status (what a restarted server needs to list it), written
        atomically and fsynced (OSError: the disk is full or the folder gone)."""
        status = "interrupted" if job.interrupted else status or job.status
        meta = {
            "owner": job.owner,
            "submitted": job.submitted,
            "total_steps": job.total_steps,
            "status": status,
            "shared": job.shared,
            "note": job.note,
            "config": job.config.to_dict(),
        }
        write_text_atomic(job.run_dir / OWNER_FILE, json.dumps(meta))

    def _write_failed(self, job: Job, e: OSError, what: str) -> None:
        """A write of job's files failed: the run fails with what to do (its slot is freed by the caller)."""
        full = getattr(e, "errno", None) in (errno.ENOSPC, errno.EDQUOT)
        job.error = (
            f"the server could not {what} ({e.strerror or e}){': its disk is full' if full else ''}. Free space on the "
            "server (or ask the lecturer to remove old runs), then resume the run: it goes on from its last checkpoint"
        )
        job.status = "failed"  # after its error: whoever sees "failed" finds why
        log.error("run %s: could not %s: %s", job.id, what, e)

    def has_checkpoint(self, job_id: str) -> bool:
        return (self.get(job_id).run_dir / "latest").is_file()

    def checkpoint_step(self, job_id: str) -> int | None:
        """The optimizer step of the run's latest checkpoint (None: it has none, or it cannot be read)."""
        return checkpoint_step(self.get(job_id).run_dir)

    # --- who may do what

    def may_control(self, job: Job, by: Caller) -> bool:
        """Whether by may stop, resume or download job: its owner, the lecturer, anyone once the lecturer shared it."""
        return by.lecturer or (bool(by.owner) and by.owner == job.owner) or (job.shared and job.status != "damaged")

    def _allowed(self, job: Job, by: Caller, what: str) -> None:
        if not self.may_control(job, by):
            raise NotAllowed(
                f"run {job.id} is not yours: only the browser that started it, or the lecturer, may {what} it. "
                "Follow it read-only, or start your own."
            )

    def _lecturer(self, by: Caller, what: str) -> None:
        if not by.lecturer:
            raise NotAllowed(f"only the lecturer may {what} (sign in as the lecturer on the Train live page).")

    # --- runs

    def submit(self, owner: str | Caller, config: TrainConfig) -> Job:
        """Queue a new run for owner (an owner id, or a Caller with its session); it starts as soon as a slot is free and
        its turn comes (RunLimit: too many, or too little disk; ValueError: a setting out of bounds)."""
        by = owner if isinstance(owner, Caller) else Caller(owner)
        config = config.validate(self.cuda_elsewhere())
        self._check_limit(by)
        self._check_disk()
        job_id = f"{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
        job = Job(job_id, by.owner, config, self.root / job_id, session=by.session, address=by.address)
        try:
            self._save_owner(job)
        except OSError as e:
            shutil.rmtree(job.run_dir, ignore_errors=True)
            raise RunLimit(
                f"The run could not be started: the server could not write to its runs folder ({e.strerror or e}). "
                "Try again later, or tell the lecturer."
            ) from None
        with self._lock:
            self._jobs[job_id] = job
        self._start(job, resume=False)
        return job

    def resume(self, job_id: str, by: Caller = SERVER, **changes) -> Job:
        """Queue a stopped or failed run again: from its latest checkpoint, or from the start if it has none; changes
        to lab.train.RESUMABLE settings (lr, epochs, max_steps, grad_clip...) apply from there (ValueError for others)."""
        job = self.get(job_id)
        self._allowed(job, by, "resume")
        if not job.finished or job.status in ("done", "damaged"):
            raise ValueError(f"run {job_id} is {job.status}: only a stopped or failed run can be resumed")
        self._check_limit(Caller(job.owner, *((by.session, False, by.address) if by.owner == job.owner else ())))
        self._check_disk()
        job.config = resumed_config(job.config, changes, self.cuda_elsewhere())
        from_checkpoint = self.has_checkpoint(job_id)
        job.status, job.error, job.note, job.resumes = "queued", None, None, job.resumes + 1
        job.steps = job.steps if from_checkpoint else []
        job._stop.clear()
        try:
            self._save_owner(job)
        except OSError as e:
            self._write_failed(job, e, "record the resumed run")
            return job
        self._start(job, resume=from_checkpoint)
        return job

    def _check_limit(self, by: Caller) -> None:
        with self._lock:
            going = [j for j in self._jobs.values() if not j.finished]
            mine = [j for j in going if j.owner == by.owner or (by.session and j.session == by.session)]
            ours = [j for j in going if by.address and j.address == by.address]
            waiting = sum(1 for j in going if j.status == "queued")
        if self.max_per_address and len(ours) >= self.max_per_address:
            raise RunLimit(
                f"{len(ours)} runs from this network address are queued or running, the most one address may have "
                f"at once on this server ({self.max_per_address}), however many browsers it opens: stop one, or wait "
                "until one finishes. A room behind one shared address (NAT): the server's "
                "DIFFUSION_LAB_RUNS_PER_ADDRESS (0 turns this cap off)."
            )
        if len(mine) >= self.max_per_owner:
            n = len(mine)
            raise RunLimit(
                f"This browser already has {n} run{'s' if n > 1 else ''} queued or running, the most one browser "
                f"may have at once on this server is {self.max_per_owner} (so that a room shares it fairly): "
                "stop one, or wait until one finishes. The server's DIFFUSION_LAB_RUNS_PER_BROWSER sets the limit."
            )
        if waiting >= self.max_queued:
            raise RunLimit(
                f"{waiting} runs already wait for this server, the most it queues ({self.max_queued}): try again when "
                "some have finished. The server's DIFFUSION_LAB_QUEUE_MAX sets the limit."
            )

    def _check_disk(self) -> None:
        if self.min_free_mb <= 0:
            return
        free = shutil.disk_usage(self.root).free / 2**20
        if free < self.min_free_mb:
            raise RunLimit(
                f"The server's disk has {free:.0f} MB free, less than a run needs ({self.min_free_mb:.0f} MB, "
                "DIFFUSION_LAB_MIN_FREE_MB): tell the lecturer, who can remove old runs."
            )

    def stop(self, job_id: str, by: Caller = SERVER) -> None:
        """Ask a run to stop: it writes a checkpoint and ends (a queued run is stopped at once)."""
        job = self.get(job_id)
        self._allowed(job, by, "stop")
        job._stop.set()
        with self._lock:
            if job_id in self._queue:
                self._unqueue(job_id)
                job.status, job.interrupted = "stopped", False
                try:
                    self._save_owner(job)
                except OSError as e:
                    self._write_failed(job, e, "record the stop")
            elif job.status == "running":
                job.status = "stopping"

    def _unqueue(self, job_id: str) -> None:
        self._queue.remove(job_id)
        self._resume.pop(job_id)
        self._queued_at.pop(job_id)
        if job_id in self._first:
            self._first.remove(job_id)

    def share(self, job_id: str, shared: bool, by: Caller) -> None:
        """The lecturer shares a run's controls with the room (anyone may then stop and resume it), or takes them back."""
        self._lecturer(by, "share a run's controls")
        job = self.get(job_id)
        job.shared = shared
        try:
            self._save_owner(job)
        except OSError as e:
            log.error("run %s: could not record sharing: %s", job_id, e)

    def move_first(self, job_id: str, by: Caller) -> None:
        """The lecturer's pick: this queued run starts next."""
        self._lecturer(by, "reorder the queue")
        with self._lock:
            if job_id not in self._queue:
                raise ValueError(f"run {job_id} is not waiting in the queue")
            if job_id in self._first:
                self._first.remove(job_id)
            self._first.insert(0, job_id)

    def clear_queue(self, by: Caller) -> list[str]:
        """The lecturer stops every queued run (the running ones go on); the ids stopped."""
        self._lecturer(by, "clear the queue")
        with self._lock:
            waiting = list(self._queue)
        for job_id in waiting:
            self.stop(job_id, by)
        return waiting

    def remove(self, job_id: str, by: Caller) -> None:
        """The lecturer removes a finished (or damaged) run and its folder."""
        self._lecturer(by, "remove a run")
        job = self.get(job_id)
        if not job.finished:
            raise ValueError(f"run {job_id} is {job.status}: stop it first")
        with self._lock:
            del self._jobs[job_id]
        shutil.rmtree(job.run_dir, ignore_errors=True)

    def shutdown(self, timeout: float = 10.0) -> None:
        """The server is stopping: start no run, ask the running ones to checkpoint and wait for them (at most
        timeout seconds). They are recorded as interrupted and queued runs stay queued: a restarted server starts the
        interrupted ones again first, then the queued ones."""
        with self._lock:
            self._closing = True
            going = [self._workers[j.id] for j in self.running() if j.id in self._workers]
            for job in self.running():
                job.interrupted = job.status == "running"  # one its owner was stopping stays stopped
                job._stop.set()
        end = time.time() + timeout
        for worker in going:  # each records its run's end (owner.json) before it finishes
            worker.join(max(0.0, end - time.time()))
        if not any(worker.is_alive() for worker in going):
            self._release_folder()

    def get(self, job_id: str) -> Job:
        if not isinstance(job_id, str) or job_id not in self._jobs:
            raise ValueError(f"no job {job_id!r}")
        return self._jobs[job_id]

    def jobs(self, owner: str) -> list[Job]:
        """owner's jobs, newest first (its browser is seen: see cleanup)."""
        self._saw(owner)
        return sorted((j for j in self._jobs.values() if j.owner == owner), key=lambda j: -j.submitted)

    def all_jobs(self, by: Caller) -> list[Job]:
        """Every run on the server, newest first: the lecturer's view."""
        self._lecturer(by, "see every run")
        return sorted(self._jobs.values(), key=lambda j: -j.submitted)

    def queue_position(self, job_id: str) -> int | None:
        """1 for the next run to start; None if the job is not waiting."""
        with self._lock:
            order = self._order()
            return order.index(job_id) + 1 if job_id in order else None

    def queued(self) -> list[str]:
        """The queued ids in the order they will start."""
        with self._lock:
            return self._order()

    def running(self) -> list[Job]:
        return [j for j in self._jobs.values() if j.status in ("running", "stopping")]

    def _order(self) -> list[str]:
        """The queued ids in the order they will start: the lecturer's picks and the runs the server was training when it
        went away first; then the owner with the fewest runs going; then by when each run queued, but never earlier than
        its owner's last start (an owner whose run just started waits behind those queued meanwhile; a new or made-up
        owner never jumps ahead of runs queued before it)."""
        going = Counter(j.owner for j in self.running())

        def fair(i: str) -> tuple:
            first = self._first.index(i) if i in self._first else len(self._first)
            owner = self._jobs[i].owner
            return first, going[owner], max(self._queued_at[i], self._last_start.get(owner, 0.0))

        return sorted(self._queue, key=fair)  # sorted() is stable: submission order among equals

    def _start(self, job: Job, resume: bool, first: bool = False) -> None:
        with self._lock:
            self._queue.append(job.id)
            self._resume[job.id] = resume
            self._queued_at[job.id] = time.time()
            if first:
                self._first.append(job.id)
        self._dispatch()

    def _dispatch(self) -> None:
        """Start queued runs, in fair order, while a slot is free (a run whose status cannot be written fails, and the
        next one is tried)."""
        with self._lock:
            while self._queue and len(self.running()) < self.max_running and not self._closing:
                job = self._jobs[self._order()[0]]
                resume = self._resume[job.id]
                self._unqueue(job.id)
                job.status, job.interrupted = "running", False
                try:
                    self._save_owner(job)
                except OSError as e:
                    self._write_failed(job, e, "record that the run started")
                    continue
                self._last_start[job.owner] = time.time()
                worker = threading.Thread(target=self._work, args=(job, resume), name=f"train-{job.id}", daemon=True)
                self._workers[job.id] = worker
                worker.start()

    def _work(self, job: Job, resume: bool) -> None:
        started = time.monotonic()
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
                    if (
                        self.max_minutes
                        and time.monotonic() - started > self.max_minutes * 60
                        and not job._stop.is_set()
                    ):
                        job.note = (
                            f"stopped at this server's limit of {self.max_minutes:g} minutes of training at a stretch "
                            "(DIFFUSION_LAB_RUN_MAX_MINUTES): Resume goes on from here"
                        )
                        job.status = "stopping"
                        job._stop.set()
                elif kind in ("stopped", "done"):
                    self._save_owner(job, kind)  # on disk before the page sees it
                    job.status = kind
                if event.get("samples_png"):  # an epoch's end, or every config.sample_every_steps steps
                    job.samples_png = Path(event["samples_png"])
        except Exception as e:  # the run's error stays with the job, for its page to show
            try:  # on disk first: whoever sees "failed" finds the error and error.txt
                write_text_atomic(
                    job.run_dir / "error.txt", getattr(e, "child_traceback", None) or traceback.format_exc()
                )
            except (
                Exception
            ) as write_error:  # a full disk, a traceback the locale cannot encode: the run fails all the same
                log.error("run %s: could not write error.txt: %s", job.id, write_error)
            job.error = getattr(e, "summary", f"{type(e).__name__}: {e}")
            job.status = "failed"
        finally:
            if job.interrupted and job.status not in (
                "done",
                "failed",
            ):  # the server is going away: queued again when it is back
                job.status = "stopped"
            else:
                job.interrupted = False
            try:
                self._save_owner(job)
            except OSError as e:  # the run ends as it ended; a restarted server may list it as stopped
                log.error("run %s: could not record how it ended: %s", job.id, e)
            self._workers.pop(job.id, None)
            self._dispatch()

    # --- owners seen, and the cleanup of runs nobody owns any more

    def _load_seen(self) -> dict[str, float]:
        try:
            return {str(k): float(v) for k, v in json.loads((self.root / SEEN_FILE).read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def _saw(self, owner: str) -> None:
        """owner's browser listed its runs now (cleanup keeps the runs of owners seen lately); only owners with runs are
        remembered, so the file is bounded by the runs, not by every browser that ever opened a page."""
        now = time.time()
        with self._lock:
            owners = {j.owner for j in self._jobs.values()}
            if owner not in owners:
                return
            self._seen[owner] = now
            if now - self._seen_saved > SEEN_EVERY:
                self._seen_saved = now
                self._seen = {o: t for o, t in self._seen.items() if o in owners}
                try:
                    write_text_atomic(
                        self.root / SEEN_FILE, json.dumps(self._seen)
                    )  # a restarted server never reads half a file
                except OSError as e:  # a full disk: who was seen when is a courtesy (cleanup), not worth a page
                    log.warning("could not write %s: %s", SEEN_FILE, e)

    def cleanup(self, max_age_s: float, now: float | None = None) -> list[str]:
        """Remove the finished runs of owners not seen for max_age_s (their run folders too); the ids removed.

        A run that is queued, running or stopping is never removed; an owner never seen counts from its run's submission."""
        now = time.time() if now is None else now
        with self._lock:
            old = [
                j
                for j in self._jobs.values()
                if j.finished and now - max(self._seen.get(j.owner, 0.0), j.submitted) > max_age_s
            ]
            for job in old:
                del self._jobs[job.id]
                shutil.rmtree(job.run_dir, ignore_errors=True)
        return [job.id for job in old]

    def zip_artefacts(self, job_id: str, by: Caller = SERVER) -> bytes:
        """The run's folder (config, history, checkpoints, samples) as a zip."""
        job = self.get(job_id)
        self._allowed(job, by, "download")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(job.run_dir.rglob("*")):
                if (
                    path.is_file()
                    and not path.is_symlink()
                    and not path.name.startswith(".")
                    and path.name != OWNER_FILE
                ):
                    z.write(
                        path, path.relative_to(job.run_dir.parent)
                    )  # owner.json names the browser's secret id: never
            z.writestr(
                f"{job.id}/job.json",
                json.dumps(
                    {"id": job.id, "status": job.status, "error": job.error, "config": job.config.to_dict()}, indent=1
                ),
            )
        return buffer.getvalue()
