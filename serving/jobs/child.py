"""A run's training process: `python -m serving.train_child` (the server's threads and the training never wait for each
other on the GIL), forked from the server's fork server where it has one (serving.jobs.forkserver: torch already
imported), its events read from its stdout, a stop passed on through its stdin."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading

from serving.jobs.forkserver import UNHEARD, ForkServerGone, fork_server
from serving.jobs.job import Job
from serving.settings import ROOT


class ChildFailed(RuntimeError):
    """The training process raised; summary is "ExcType: message", child_traceback its traceback."""

    def __init__(self, summary: str, child_traceback: str):
        super().__init__(summary)
        self.summary, self.child_traceback = summary, child_traceback


def events_of_child(job: Job, resume: bool):
    """Train job in its own process (`python -m serving.train_child`: the server's threads and the training never wait
    for each other on the GIL) and yield its events. Stop is passed on; a process that dies without a word
    (killed, out of memory) is an error."""
    args = [str(job.run_dir.resolve()), json.dumps(job.config.to_dict())] + (["--resume"] if resume else [])
    job.run_dir.mkdir(parents=True, exist_ok=True)
    with open(job.run_dir / "train.log", "ab") as log:
        process = start_child(args, log)
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


def start_child(args: list[str], log):
    """`python -m serving.train_child *args`, its stderr the open file log: forked from the fork server, or where there
    is none (or it fails) a fresh process."""
    server = fork_server()
    if server is not None:
        try:
            return server.popen(args, log)
        except ForkServerGone:
            pass
    return subprocess.Popen(
        [sys.executable, "-m", "serving.train_child", *args],
        cwd=ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        bufsize=1,
    )


def ended(returncode: int | str | None) -> str:
    """How a process that said nothing ended, for a person: killed by which signal, or its exit code (UNHEARD: not known)."""
    if returncode == UNHEARD:
        return "ended without a word (how is not known: the fork server that started it went away first)"
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
