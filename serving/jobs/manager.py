"""The job manager: submits, queues (fairly between browsers), runs, stops and resumes training runs; one per server.

See serving.jobs for what it promises; the runs folder is serving.jobs.folder's, the permissions
serving.jobs.permissions', the training process serving.jobs.child's.
"""

from __future__ import annotations

import errno
import logging
import threading
import time
import traceback
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path

from lab.checkpoint import checkpoint_step
from lab.train import read_history
from lab.train_config import TrainConfig, resumed_config
from serving.jobs.child import events_of_child
from serving.jobs.folder import SEEN_FILE, RunsFolder
from serving.jobs.forkserver import fork_server
from serving.jobs.job import Job
from serving.jobs.permissions import SERVER, Caller, RunLimit, require_control, require_lecturer

log = logging.getLogger("diffusion_lab")
SEEN_EVERY = 60.0  # seconds: how often a page's visits are written to SEEN_FILE


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
        self.events = events or events_of_child  # (job, resume) -> the run's events: a process here, or a Ray task
        self.cuda_elsewhere = cuda_elsewhere  # whether runs may ask for cuda this machine lacks (a Ray cluster's GPU)
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
        self.folder = RunsFolder(root)
        self.root = self.folder.root  # the runs folder's path (runs are its subfolders)
        try:
            self._seen, self._seen_saved = self.folder.load_seen(), 0.0
            for job, resume in self._reload():
                self._start(job, resume=resume, first=job.interrupted)
        except BaseException:  # a manager that could not start (a full disk...) gives its folder and lock file back
            self.folder.release()
            raise

    def warm_up(self) -> None:
        """Start the training processes' fork server (serving.jobs.forkserver), where runs are processes here: a page
        that can start runs calls this as it opens, so the first Start forks a process with torch already imported."""
        if self.events is events_of_child:
            fork_server()

    # --- reading the runs folder at start-up

    def _reload(self) -> list[tuple[Job, bool]]:
        """Every run on disk (the server restarted: RunsFolder.runs) listed; those it was training when it went away
        queued again first, resuming from their last checkpoint, then those that were waiting. Returns the runs to
        queue and whether each resumes."""
        again = []
        for job, queue in self.folder.runs():
            self._jobs[job.id] = job
            if queue:
                again.append((job, (job.run_dir / "latest").is_file()))
        return sorted(again, key=lambda q: (not q[0].interrupted, q[0].submitted))

    def _save_owner(self, job: Job, status: str | None = None) -> None:
        """Record job's status in its folder (OSError: the disk is full or the folder gone)."""
        self.folder.save_owner(job, "interrupted" if job.interrupted else status or job.status)

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
            self.folder.remove(job)
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
        to lab.train_config.RESUMABLE settings (lr, epochs, max_steps, grad_clip...) apply from there (ValueError for others)."""
        job = self.get(job_id)
        require_control(job, by, "resume")
        if not job.finished or job.status in ("done", "damaged"):
            raise ValueError(f"run {job_id} is {job.status}: only a stopped or failed run can be resumed")
        self._check_limit(Caller(job.owner, *((by.session, False, by.address) if by.owner == job.owner else ())))
        self._check_disk()
        job.config = resumed_config(job.config, changes, self.cuda_elsewhere())
        from_checkpoint = self.has_checkpoint(job_id)
        job.status, job.error, job.note, job.resumes = "queued", None, None, job.resumes + 1
        # its steps as the run logged them, as after a restart (RunsFolder): an event lost when its process died leaves
        # no gap; those past the checkpoint give way to the run's own again (the events' loop)
        job.steps = read_history(job.run_dir) if from_checkpoint else []
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
        free = self.folder.free_mb()
        if free < self.min_free_mb:
            raise RunLimit(
                f"The server's disk has {free:.0f} MB free, less than a run needs ({self.min_free_mb:.0f} MB, "
                "DIFFUSION_LAB_MIN_FREE_MB): tell the lecturer, who can remove old runs."
            )

    def stop(self, job_id: str, by: Caller = SERVER) -> None:
        """Ask a run to stop: it writes a checkpoint and ends (a queued run is stopped at once)."""
        job = self.get(job_id)
        require_control(job, by, "stop")
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
        require_lecturer(by, "share a run's controls")
        job = self.get(job_id)
        job.shared = shared
        try:
            self._save_owner(job)
        except OSError as e:
            log.error("run %s: could not record sharing: %s", job_id, e)

    def move_first(self, job_id: str, by: Caller) -> None:
        """The lecturer's pick: this queued run starts next."""
        require_lecturer(by, "reorder the queue")
        with self._lock:
            if job_id not in self._queue:
                raise ValueError(f"run {job_id} is not waiting in the queue")
            if job_id in self._first:
                self._first.remove(job_id)
            self._first.insert(0, job_id)

    def clear_queue(self, by: Caller) -> list[str]:
        """The lecturer stops every queued run (the running ones go on); the ids stopped."""
        require_lecturer(by, "clear the queue")
        with self._lock:
            waiting = list(self._queue)
        for job_id in waiting:
            self.stop(job_id, by)
        return waiting

    def remove(self, job_id: str, by: Caller) -> None:
        """The lecturer removes a finished (or damaged) run and its folder."""
        require_lecturer(by, "remove a run")
        job = self.get(job_id)
        if not job.finished:
            raise ValueError(f"run {job_id} is {job.status}: stop it first")
        with self._lock:
            del self._jobs[job_id]
        self.folder.remove(job)

    def shutdown(self, timeout: float = 10.0) -> None:
        """The server is stopping: start no run, ask the running ones to checkpoint and wait for them (at most
        timeout seconds). They are recorded as interrupted and queued runs stay queued: a restarted server starts the
        interrupted ones again first, then the queued ones."""
        with self._lock:
            self._closing = True
            going = list(self._workers.values())  # a finished run's worker may still be recording its end
            for job in self.running():
                job.interrupted = job.status == "running"  # one its owner was stopping stays stopped
                job._stop.set()
        end = time.time() + timeout
        for worker in going:  # each records its run's end (owner.json) before it finishes
            worker.join(max(0.0, end - time.time()))
        if not any(worker.is_alive() for worker in going):
            self.folder.release()

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
        require_lecturer(by, "see every run")
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
                self.folder.save_error(job, getattr(e, "child_traceback", None) or traceback.format_exc())
            # a full disk, a traceback the locale cannot encode: the run fails all the same
            except Exception as write_error:
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
                    self.folder.save_seen(self._seen)
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
                self.folder.remove(job)
        return [job.id for job in old]

    def zip_artefacts(self, job_id: str, by: Caller = SERVER) -> bytes:
        """The run's folder (config, history, checkpoints, samples) as a zip."""
        job = self.get(job_id)
        require_control(job, by, "download")
        return self.folder.zip_run(job)
