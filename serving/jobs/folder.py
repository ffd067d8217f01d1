"""A server's runs folder on disk: one server holds it (a lock), each run a folder with its owner's record, read back
run by run when a server starts (a damaged one listed as damaged), every record written atomically and fsynced."""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import threading
import zipfile
from pathlib import Path

from lab.train import read_history
from lab.train_config import TrainConfig
from models.files import write_text_atomic
from serving.jobs.job import Job

log = logging.getLogger("diffusion_lab")
OWNER_FILE = "owner.json"  # in each run's folder: who started it, when, its total steps (a restarted server reads it)
SEEN_FILE = "owners_seen.json"  # in the runs folder: when each owner's browser last listed its runs
LOCK_FILE = ".server.lock"  # in the runs folder: held by the one server that manages it

_HELD: set[Path] = set()  # the runs folders a manager of this process holds
_HELD_LOCK = threading.Lock()


class RunsFolderBusy(ValueError):
    """Another server manages this runs folder (two would start a run twice and list each other's as stopped)."""


class RunsFolder:
    """The runs folder at root, held by this server from construction to release() (RunsFolderBusy if another holds it)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self._lock_fd: int | None = None
        self._hold()

    def _hold(self) -> None:
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

    def release(self) -> None:
        """Give the runs folder up (shutdown): another manager of this process may take it."""
        with _HELD_LOCK:
            if self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None
                _HELD.discard(self._folder)

    # --- reading it back when a server starts

    def runs(self) -> list[tuple[Job, bool]]:
        """Every run on disk, each folder read in its own guard: finished ones done, failed ones failed, stopped ones
        stopped, those the server was training or had queued when it went away "queued"; a folder that cannot be read
        listed as damaged (for its owner, with what to do) and logged. Each with whether it is to be queued again."""
        found = []
        for run_dir in sorted(p for p in self.root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            if not (run_dir / OWNER_FILE).exists():  # not one of ours: leave it alone
                continue
            try:
                found.append(self._read_run(run_dir))
            except Exception as e:
                log.warning("run folder %s is damaged (%s: %s); listed as damaged", run_dir, type(e).__name__, e)
                found.append((self._damaged(run_dir, e), False))
        return found

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
            job.status = "failed"
            job.error = (
                said_lines[-1]
                if said_lines
                else "the run failed and its error could not be saved (the server's disk may have been full)"
            )
        elif job.status == "stopped" and said in ("running", "interrupted", "queued"):
            # training when the server went away, or waiting
            job.status, job.interrupted, queue = "queued", said != "queued", True
        job.steps = read_history(run_dir) if latest else []  # without a checkpoint it starts again from step 0
        # a link could point anywhere on the server: never shown
        samples = sorted(
            (p for p in (run_dir / "samples").glob("*.png") if p.is_file() and not p.is_symlink()),
            key=lambda p: p.stat().st_mtime,
        )
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

    # --- writing

    def save_owner(self, job: Job, status: str) -> None:
        """owner.json: whose run, when, its config and its status (what a restarted server needs to list it), written
        atomically and fsynced (OSError: the disk is full or the folder gone)."""
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

    def save_error(self, job: Job, text: str) -> None:
        """error.txt of the run: its traceback (OSError: the disk is full)."""
        write_text_atomic(job.run_dir / "error.txt", text)

    def load_seen(self) -> dict[str, float]:
        """When each owner's browser last listed its runs ({} if never written or unreadable)."""
        try:
            return {str(k): float(v) for k, v in json.loads((self.root / SEEN_FILE).read_text()).items()}
        except (OSError, ValueError, TypeError, AttributeError):
            return {}

    def save_seen(self, seen: dict[str, float]) -> None:
        """SEEN_FILE, atomically: a restarted server never reads half a file (OSError: the disk is full)."""
        write_text_atomic(self.root / SEEN_FILE, json.dumps(seen))

    def free_mb(self) -> float:
        return shutil.disk_usage(self.root).free / 2**20

    @staticmethod
    def remove(job: Job) -> None:
        shutil.rmtree(job.run_dir, ignore_errors=True)

    @staticmethod
    def zip_run(job: Job) -> bytes:
        """The run's folder (config, history, checkpoints, samples) as a zip; owner.json (it names the browser's secret
        id), hidden files and links left out."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
            for path in sorted(job.run_dir.rglob("*")):
                hidden = path.name.startswith(".") or path.name == OWNER_FILE
                if path.is_file() and not path.is_symlink() and not hidden:
                    z.write(path, path.relative_to(job.run_dir.parent))
            record = {"id": job.id, "status": job.status, "error": job.error, "config": job.config.to_dict()}
            z.writestr(f"{job.id}/job.json", json.dumps(record, indent=1))
        return buffer.getvalue()
