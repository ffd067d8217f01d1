"""Many denoising loops run as one: every round, one model call for the next step of every loop.

A loop is the generator ``lab.sampling.denoise_steps`` makes (a course function's ``steps`` returns it:
``lab.sdedit.steps(...)``): it yields each step's model input and is sent the model's output. A ``LoopBatcher`` owns one
thread per backend that drives every loop handed to it: each round it concatenates the inputs of the loops waiting
for a step, pads the batch to a multiple of ``quantum`` rows, has the device's model thread call the model once (in
chunks of ``max_rows``), and sends each loop its rows back; the loops' own step math runs on the batcher's thread,
between model calls, on one torch thread. As Ray
Serve's ``@serve.batch``, what arrives together is computed together and the callers do not change; unlike
threads that each call the model, nothing waits for a straggler and no step competes with the model for the cores
or the GIL (on this 2-core CPU: 1.1x the model's own time for ten requests, against 1.75x with a thread each).

Backends whose model takes one timestep per row (``row_timesteps``) batch loops at different t, such as the six
chains of an SDEdit row started at six i_start; the others batch the loops that are at the same t.

Padding makes a row's output independent of what it is batched with: this CPU's kernels give a row the same bits in
every batch whose size is a multiple of 4, whatever the other rows (tests/test_batching.py checks it on the machine
that runs the tests), so identical requests give identical pictures whatever else the room asks at the time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import torch

from lab.sampling import Steps

_MODEL_THREADS: dict[tuple[str, int], ModelThread] = {}
_MODEL_THREADS_LOCK = threading.Lock()


def device_key(device) -> str:
    """A device's name, one per device: "cpu", "cuda:0" (torch.device("cuda") names the current one, cuda:0 here)."""
    d = torch.device(device)
    return d.type if d.type == "cpu" else f"{d.type}:{d.index or 0}"


_WANTED: dict[str, int] = {}  # device -> how many of its batchers have loops somebody waits for now
_WANTED_LOCK = threading.Lock()


def _others_wanted(device, mine: bool) -> bool:
    """Whether a batcher of the device other than this one (whose own wanted state is mine) runs wanted loops."""
    with _WANTED_LOCK:
        return _WANTED.get(device_key(device), 0) - int(mine) > 0


@dataclass(eq=False)
class _Loop:
    steps: Steps
    wanted: Callable[[], bool] = lambda: True  # somebody waits for it now (else a warm-up: it waits for those that are)
    request: tuple | None = None  # the step's (x_in, t, c_in) it waits for
    result: Any = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)

    def advance(self, output: tuple | None) -> bool:
        """Send the model's output (None: start the loop); False once it has returned or raised."""
        try:
            self.request = next(self.steps) if output is None else self.steps.send(output)
            return True
        except StopIteration as stop:
            self.result = stop.value
        except BaseException as e:  # a bad step fails its own request, not the round
            self.error = e
        self.done.set()
        return False


def own_threads(n: int) -> None:
    """Give this thread n torch threads for good. torch sets a thread's count up lazily, at its first parallel op, to the
    count the process's last ``set_num_threads`` named, whichever thread called it: a queue worker that asked for one
    thread before the batcher asked for two got two at its first op, and an OpenMP team with them, that lived as long
    as the worker. Thirty-two such teams on two cores made OpenMP stop spinning between parallel regions (it throttles
    when it manages more threads than the machine has), and every model call of the batcher 1.3-1.5x slower. Asking for
    the count first runs the set-up now."""
    torch.get_num_threads()  # torch's lazy per-thread set-up (at::init_num_threads), before this thread's own count
    torch.set_num_threads(n)


class ModelThread:
    """A daemon thread that runs the calls submitted to it one at a time, on `threads` torch threads (own_threads), with
    denormal floats flushed to zero (GELU of very negative inputs makes them; they cost x86 cores microcode assists)
    before its first parallel region, so that its OpenMP workers inherit it. A daemon: the room stops its batchers at
    exit (Room.close) and this thread, idle by then, never holds the interpreter's exit up."""

    def __init__(self, name: str, threads: int):
        self.threads = threads  # what its calls get
        self._calls: queue.SimpleQueue = queue.SimpleQueue()
        threading.Thread(target=self._serve, name=name, daemon=True).start()

    def submit(self, fn: Callable[..., Any], *args) -> Future:
        """fn(*args) on this thread, after the calls before it; its result or exception in the Future."""
        future: Future = Future()
        self._calls.put((future, fn, args))
        return future

    def _serve(self) -> None:
        own_threads(self.threads)
        torch.set_flush_denormal(True)
        while True:
            future, fn, args = self._calls.get()
            if future.set_running_or_notify_cancel():
                _settle(future, fn, *args)


def model_thread(device, threads: int) -> ModelThread:
    """The thread that calls the models of a device with `threads` torch threads (a room asks with one count, so one
    thread per device): one model call at a time, so two backends' batchers share the cores instead of fighting for
    them, and one OpenMP team, so that it keeps spinning between a call's parallel regions (see own_threads). A GPU's
    model thread computes on one CPU thread (its CPU work is small)."""
    key = device_key(device)
    threads = threads if key == "cpu" else 1
    with _MODEL_THREADS_LOCK:
        if (key, threads) not in _MODEL_THREADS:
            _MODEL_THREADS[key, threads] = ModelThread(f"model-{key}", threads)
        return _MODEL_THREADS[key, threads]


def on_fresh_thread(threads: int, fn: Callable[..., Any], *args, **kwargs) -> Any:
    """fn(*args, **kwargs) on a thread of its own with `threads` torch threads, its result or its exception: work that
    takes more than one core beside the model thread (Part B's sampling) leaves no OpenMP team behind once done."""
    future: Future = Future()

    def run() -> None:
        own_threads(threads)
        _settle(future, fn, *args, **kwargs)

    threading.Thread(target=run, name="fresh-threads", daemon=True).start()
    return future.result()


def _settle(future: Future, fn: Callable[..., Any], *args, **kwargs) -> None:
    """fn's result or exception into future (the caller's future.result() gives it back or raises it)."""
    try:
        future.set_result(fn(*args, **kwargs))
    except BaseException as e:
        future.set_exception(e)


class LoopBatcher:
    """Drive loops on one backend together (see the module docstring); ``run(steps)`` from any thread."""

    def __init__(self, denoiser, *, max_rows: int = 64, quantum: int = 4, threads: int | None = None):
        if quantum < 1 or max_rows < quantum or max_rows % quantum:
            raise ValueError(
                f"max_rows must be a positive multiple of quantum, got max_rows {max_rows}, quantum {quantum}"
            )
        self.denoiser, self.max_rows, self.quantum = denoiser, max_rows, quantum
        self.row_timesteps = denoiser.row_timesteps
        self.model = model_thread(denoiser.device, threads or torch.get_num_threads())  # torch's default: the cores
        self.threads = self.model.threads  # the model's torch threads
        self.stats = {"steps": 0, "model_calls": 0, "rows": 0, "padded_rows": 0, "most_loops": 0}
        self._new: list[_Loop] = []
        self._cond = threading.Condition()
        self._closing = False
        self._wanted = False  # this batcher's loops include one somebody waits for (_WANTED counts it for the device)
        self._thread = threading.Thread(target=self._serve, name="loop-batcher", daemon=True)
        self._thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """The server is stopping: the loops end with RuntimeError after the current model call, and the thread ends."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)

    def run(self, steps: Steps, wanted: Callable[[], bool] = lambda: True) -> Any:
        """The loop's result, once it has run with whatever other loops were running; its exception re-raised.
        wanted(): whether somebody waits for it now; while a loop that is wanted runs, those that are not (the room's
        warm-up) wait for their next step, so a browser that arrives during the warm-up is served first."""
        loop = _Loop(steps, wanted)
        with self._cond:
            self._new.append(loop)
            self._cond.notify()
        loop.done.wait()
        if loop.error is not None:
            raise loop.error
        return loop.result

    def _serve(self) -> None:
        # the loops' own step math is small: one torch thread here, the model's on the model thread (model_thread)
        own_threads(1)
        torch.set_flush_denormal(True)
        active: list[_Loop] = []  # loops waiting for a step, oldest first
        while True:
            if not active:
                self._mark_wanted(False)
            with self._cond:
                while not active and not self._new and not self._closing:
                    self._cond.wait()
                new, self._new = self._new, []
                if self._closing:
                    self._mark_wanted(False)
                    for loop in active + new:
                        loop.error = RuntimeError("the server is stopping")
                        loop.done.set()
                    return
            active += [loop for loop in new if loop.advance(None)]
            if not active:
                continue
            now = self._take(active)
            if not now:  # only warm-up loops here, and another backend's batcher serves a browser: it goes first
                with self._cond:
                    self._cond.wait(0.05)  # (a new loop of its own wakes it at once)
                continue
            self.stats["most_loops"] = max(self.stats["most_loops"], len(active))
            try:
                outputs = self._call([loop.request for loop in now])
            except BaseException as e:  # the model failed (out of memory...): this round's requests get the error
                for loop in now:
                    loop.error = e
                    loop.done.set()
                    active.remove(loop)
                continue
            for loop, output in zip(now, outputs):
                if not loop.advance(output):
                    active.remove(loop)

    def _take(self, active: list[_Loop]) -> list[_Loop]:
        """This round's loops: the wanted ones if any (else the others), the oldest first, up to max_rows (one loop at
        least); at one t unless row_timesteps."""
        wanted = [loop for loop in active if loop.wanted()]
        self._mark_wanted(bool(wanted))
        if not wanted and _others_wanted(self.denoiser.device, False):
            return []  # warm-up loops wait for every batcher of the device, not only for this one's wanted loops
        candidates = wanted or active
        t0, now, rows = candidates[0].request[1], [], 0
        for loop in candidates:
            x = loop.request[0]
            if (not self.row_timesteps and loop.request[1] != t0) or (now and rows + x.shape[0] > self.max_rows):
                continue
            now.append(loop)
            rows += x.shape[0]
        return now

    def _mark_wanted(self, wanted: bool) -> None:
        if wanted != self._wanted:
            with _WANTED_LOCK:
                key = device_key(self.denoiser.device)
                _WANTED[key] = _WANTED.get(key, 0) + (1 if wanted else -1)
            self._wanted = wanted

    def _chunks(self, x: torch.Tensor, t: torch.Tensor, t_last, cond: torch.Tensor) -> list[tuple]:
        """The model's outputs for x in chunks of max_rows rows (multiples of quantum too), on the model thread."""
        outs = []
        for i in range(0, x.shape[0], self.max_rows):
            rows = slice(i, i + self.max_rows)
            outs.append(self.denoiser(x[rows], t[rows] if self.row_timesteps else t_last, cond[rows]))
        return outs

    def _call(self, requests: list[tuple]) -> list[tuple]:
        """One model call for the requests (x_in, t, c_in), padded to a multiple of quantum; each request's rows back."""
        sizes = [x.shape[0] for x, _, _ in requests]
        n = sum(sizes)
        pad = -n % self.quantum
        x_last, t_last, c_last = requests[-1]
        x = torch.cat([r[0] for r in requests] + [x_last[-1:].new_zeros(pad, *x_last.shape[1:])])
        cond = torch.cat([r[2] for r in requests] + [c_last[-1:].expand(pad, *c_last.shape[1:])])
        t = torch.tensor([t for (_, t, _), size in zip(requests, sizes) for _ in range(size)] + [t_last] * pad)
        outs = self.model.submit(self._chunks, x, t, t_last, cond).result()
        eps = torch.cat([o[0] for o in outs])
        variance = None if outs[0][1] is None else torch.cat([o[1] for o in outs])
        self.stats["steps"] += len(requests)
        self.stats["model_calls"] += 1
        self.stats["rows"] += n
        self.stats["padded_rows"] += pad
        starts = [sum(sizes[:k]) for k in range(len(sizes))]
        return [(eps[s : s + b], None if variance is None else variance[s : s + b]) for s, b in zip(starts, sizes)]
