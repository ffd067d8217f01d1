"""A warm start for training processes: one process per server that has imported torch and the trainer once
(`main` below, named "lab-forkserver" in top) and forks each run's training process from itself, so a run starts in a
fraction of a second instead of paying torch's and the optimizer's imports (~3.5 s of CPU on a 2-core machine) every
time, which a room of students pressing Start at once would pay thirty times.

A forked process is the same training process as `python -m serving.train_child` (serving.jobs.child): its stdin,
stdout and stderr are the pipes and the log the server passes over a socket, its environment and working folder the
server's at the moment of the request, and its exit status comes back over the socket. The fork server ends when the
server goes away (its socket closes); the runs it forked end as `train_child` says (their stdin closes). Linux only
(fork after torch's import is safe there while nothing has run; macOS's frameworks are not fork-safe): elsewhere, or
when the fork server cannot start, a run starts as a fresh process.
"""

from __future__ import annotations

import ctypes
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
import time
import traceback
from pathlib import Path

from serving.settings import ROOT

AVAILABLE = sys.platform.startswith("linux")
PER_RUN_PREFIX = "DIFFUSION_LAB_"  # variables read when a run starts (its settings), not when torch is imported
_MESSAGE = 1 << 20
UNHEARD = "unheard"  # a forked process's returncode once it has ended unheard (its fork server went away first)


class ForkServerGone(RuntimeError):
    """The fork server did not answer: the caller starts the run as a fresh process instead."""


class ForkedProcess:
    """What serving.jobs.child uses of subprocess.Popen, for a process the fork server forked. If the fork server goes
    away first (killed), how the process ends is not heard: once it has ended its returncode is UNHEARD."""

    def __init__(self, server: ForkServer, pid: int, stdin, stdout):
        self._server, self.pid, self.stdin, self.stdout = server, pid, stdin, stdout
        self.returncode: int | str | None = None

    def poll(self):
        return self.wait(0) if self._ended(0) else None

    def wait(self, timeout: float | None = None):
        if not self._ended(timeout):
            raise subprocess.TimeoutExpired(f"training process {self.pid}", timeout)
        return self.returncode

    def _ended(self, timeout: float | None) -> bool:
        if self.returncode is None:
            code = self._server.exit_code(self.pid, timeout)
            if code is not None:
                self.returncode = code
            elif not self._server.alive and not _exists(self.pid, timeout):
                self.returncode = UNHEARD
        return self.returncode is not None

    def kill(self) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _exists(pid: int, timeout: float | None) -> bool:
    """Whether process pid is still there after up to timeout seconds (a process the fork server forked, orphaned)."""
    end = time.monotonic() + (timeout if timeout is not None else float("inf"))
    while _running(pid):
        if time.monotonic() >= end:
            return True
        time.sleep(0.05)
    return False


def _running(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat[stat.rindex(")") + 2] not in "ZX"  # an orphan's zombie, where nothing reaps it, has ended


class ForkServer:
    """The server's side: starts `python -m serving.jobs.forkserver`, asks it for processes, hears how they ended."""

    def __init__(self):
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        with theirs:
            self.process = subprocess.Popen(
                [sys.executable, "-c", f"from serving.jobs.forkserver import main; main({theirs.fileno()})"],
                pass_fds=[theirs.fileno()],
                cwd=ROOT,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
            )
        self._socket = ours
        self._changed = threading.Condition()
        self._send = threading.Lock()
        self._answers: dict[int, dict] = {}  # request number -> {"pid": ...} or {"error": ...}
        self._exits: dict[int, int] = {}  # pid -> exit code (negative: the signal that ended it)
        self._asked = 0
        self.alive = True
        threading.Thread(target=self._listen, name="forkserver", daemon=True).start()

    def _listen(self) -> None:
        while True:
            try:
                message = self._socket.recv(_MESSAGE)
            except OSError:
                message = b""
            if not message:
                break
            answer = json.loads(message)
            with self._changed:
                if "exit" in answer:
                    self._exits[answer["pid"]] = answer["exit"]
                else:  # a new process: an earlier one's exit under the same pid is not its
                    self._exits.pop(answer.get("pid"), None)
                    self._answers[answer["request"]] = answer
                self._changed.notify_all()
        with self._changed:
            self.alive = False
            self._changed.notify_all()

    def popen(self, args: list[str], log) -> ForkedProcess:
        """Start `python -m serving.train_child *args` forked, its stderr the open file log; ForkServerGone if the
        fork server is not there to do it."""
        child_in, our_in = os.pipe()
        our_out, child_out = os.pipe()
        try:
            with self._changed:
                self._asked += 1
                number = self._asked
            request = {"request": number, "args": args, "env": dict(os.environ), "cwd": str(ROOT)}
            try:
                with self._send:
                    socket.send_fds(self._socket, [json.dumps(request).encode()], [child_in, child_out, log.fileno()])
            except OSError as e:
                raise ForkServerGone(f"the fork server is gone ({e})") from None
            with self._changed:  # its first answer waits for its imports, as a fresh process would
                self._changed.wait_for(lambda: number in self._answers or not self.alive)
                answer = self._answers.pop(number, {"error": "the fork server is gone"})
            if "error" in answer:
                raise ForkServerGone(answer["error"])
        except BaseException:
            os.close(our_in)
            os.close(our_out)
            raise
        finally:
            os.close(child_in)
            os.close(child_out)
        stdin = open(our_in, "w", encoding="utf-8", buffering=1)
        stdout = open(our_out, encoding="utf-8")
        return ForkedProcess(self, answer["pid"], stdin, stdout)

    def exit_code(self, pid: int, timeout: float | None) -> int | None:
        """How process pid ended, waiting up to timeout (None: as long as it takes); None if not yet, or if the fork
        server went away first (a process it forked then ends unheard: a run's end is its events, not its code)."""
        with self._changed:
            self._changed.wait_for(lambda: pid in self._exits or not self.alive, timeout)
            return self._exits.pop(pid, None)


_servers: dict[tuple, ForkServer] = {}
_servers_lock = threading.Lock()


def fork_server() -> ForkServer | None:
    """This process's fork server for its present environment (started on the first call; another for an environment
    that differs in anything torch could read at import), or None where runs start as fresh processes."""
    if not AVAILABLE:
        return None
    key = tuple(sorted((k, v) for k, v in os.environ.items() if not k.startswith(PER_RUN_PREFIX)))
    with _servers_lock:
        server = _servers.get(key)
        if server is None or not server.alive or server.process.poll() is not None:
            try:
                server = _servers[key] = ForkServer()
            except OSError:
                return None
        return server


# --- the fork server's own process


def serve(sock: socket.socket) -> None:
    """Import what a training process needs, then fork one per request until the server's socket closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C in the server's terminal is for the server and the runs
    import torch._dynamo  # the optimizer imports it: ~half of a training process's start
    import torch.optim

    import serving.train_child

    del torch, serving  # imported for the processes forked from here

    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)
    try:
        while True:
            ready, _, _ = select.select([sock, wake_r], [], [])
            if wake_r in ready:
                os.read(wake_r, 4096)
            _report_exits(sock)
            if sock in ready:
                message, fds, _, _ = socket.recv_fds(sock, _MESSAGE, 3)
                if not message:
                    return  # the server went away
                _fork(sock, json.loads(message), fds, (wake_r, wake_w))
    except (BrokenPipeError, ConnectionResetError):
        return  # the server went away while we spoke


def _report_exits(sock: socket.socket) -> None:
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        sock.send(json.dumps({"pid": pid, "exit": os.waitstatus_to_exitcode(status)}).encode())


def _fork(sock: socket.socket, request: dict, fds: list[int], wake: tuple[int, int]) -> None:
    try:
        pid = os.fork()
    except OSError as e:
        pid, error = None, f"the fork server could not fork ({e})"
    if pid == 0:
        _run_child(request, fds, [sock.fileno(), *wake])
    for fd in fds:
        os.close(fd)
    answer = {"pid": pid} if pid else {"error": error}
    sock.send(json.dumps({"request": request["request"], **answer}).encode())


def _run_child(request: dict, fds: list[int], close: list[int]) -> None:
    """In the forked process: become `python -m serving.train_child *args` and never return."""
    code = 1
    try:
        _name_process(b"lab-train")
        signal.set_wakeup_fd(-1)
        for sig in (signal.SIGCHLD, signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, signal.SIG_DFL)
        for fd in close:
            os.close(fd)
        for target, fd in zip((0, 1, 2), fds):
            os.dup2(fd, target)
            os.close(fd)
        os.environ.clear()
        os.environ.update(request["env"])
        os.chdir(request["cwd"])
        import serving.train_child as train_child

        sys.argv = [train_child.__file__, *request["args"]]
        code = train_child.main(request["args"])
    except BaseException:
        traceback.print_exc()
    finally:  # os._exit flushes nothing (the fork server's exit handlers are not this process's to run)
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        os._exit(code)


def main(fd: int) -> None:
    """The fork server's process: `python -c "from serving.jobs.forkserver import main; main(FD)"`, FD its socket."""
    _name_process(b"lab-forkserver")
    try:
        serve(socket.socket(fileno=fd))
    except KeyboardInterrupt:
        pass


def _name_process(name: bytes) -> None:
    """The name top and ps -e show (Linux's prctl PR_SET_NAME, 15 bytes): a forked run is "lab-train", not a copy of
    the fork server's."""
    try:
        ctypes.CDLL(None).prctl(15, ctypes.c_char_p(name[:15]), 0, 0, 0)
    except (OSError, AttributeError):
        pass
