"""The room's compute queue: one computation per request key, started in arrival order on a bounded pool, and the
results store it (and a Ray Serve replica: serving.serve) keeps finished results in.

A page asks for a result by a hashable key (its frozen config) and a function that computes it. As Go's
``singleflight.Group``, a key already queued or running is joined, not computed again: thirty browsers that ask
for the same picture cost one computation. As a ``concurrent.futures`` pool, requests start in arrival order on
``workers`` threads, each caller holding a ``Ticket`` (a future with its place in line and its progress). A
request whose callers all left before it started is set aside and, after ``grace_s``, dropped without running
(a caller that comes back in time keeps its place); one whose callers all left while it ran stops at its next step
once ``cancel_after_s`` has passed (``Cancelled``: a page rerun that asks for it again within that time keeps it). A
caller's session that asks for something new gives up at once what it alone left behind: a browser stepping its
seed quickly has one computation going, not one per click, and the others' requests do not wait behind them.
Finished results stay in a ``ResultsStore``: least recently used first out, bounded by bytes.
Warm-up requests (``keep``) run only when no request with a caller is waiting.

``fn(progress)`` runs on a worker thread; it may report ``progress.total`` and ``progress.done`` as it goes. This
is the seam where another engine plugs in: anything that can run ``fn`` for a key and hand back a future can
replace the worker pool (docs/scaling.md).
No Streamlit here: the pages submit, poll and release.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import Future, wait
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("diffusion_lab")


class Cancelled(Exception):
    """Nobody waits for this computation any more: it stopped at its next step (nothing is cached)."""


@dataclass
class Progress:
    """How far a computation has come, written by the computation, read by the pages that wait for it."""

    done: int = 0
    total: int = 0
    abandoned: Callable[[], bool] = field(default=lambda: False, repr=False, compare=False)  # the queue's: nobody waits
    wanted: Callable[[], bool] = field(
        default=lambda: True, repr=False, compare=False
    )  # the queue's: a caller waits now

    def step(self) -> None:
        """One more step done; Cancelled if nobody waits for the result any more (the computation ends here)."""
        self.done += 1
        if self.abandoned():
            raise Cancelled("nobody waits for this result any more")


@dataclass(eq=False)
class Flight:
    key: Hashable
    fn: Callable[[Progress], Any]
    seq: int  # arrival order
    keep: bool = False  # warm-up: run it even though nobody waits (after every request somebody waits for)
    waiters: int = 0  # callers holding a ticket that was not released
    state: str = "queued"  # queued, running, done, failed, dropped, cancelled
    left_at: float | None = None  # when its last caller left
    left_by: Hashable | None = None  # that caller's session
    progress: Progress = field(default_factory=Progress)
    future: Future = field(default_factory=Future)


class ResultsStore:
    """Finished results by key, at most max_bytes of them (sizeof(value) each): the least recently used leave first.
    Not locked: its owner holds its own lock around it (or runs on one event loop)."""

    def __init__(self, max_bytes: int, sizeof: Callable[[Any], int]):
        self.max_bytes, self.sizeof = max_bytes, sizeof
        self._results: OrderedDict = OrderedDict()  # key -> (value, bytes), least recently used first
        self.bytes = 0

    def __contains__(self, key: Hashable) -> bool:
        return key in self._results

    def get(self, key: Hashable) -> Any | None:
        """The value (now the most recently used), None if there is none."""
        if key not in self._results:
            return None
        self._results.move_to_end(key)
        return self._results[key][0]

    def peek(self, key: Hashable) -> Any | None:
        """The value, without counting as a use."""
        return self._results[key][0] if key in self._results else None

    def put(self, key: Hashable, value: Any) -> None:
        """Keep value, unless it alone is over the bound; evict the least recently used until within it."""
        size = self.sizeof(value)
        if size > self.max_bytes:
            return
        if key in self._results:
            self.bytes -= self._results.pop(key)[1]
        self._results[key] = (value, size)
        self.bytes += size
        while self.bytes > self.max_bytes:
            _, (_, evicted) = self._results.popitem(last=False)
            self.bytes -= evicted


class Ticket:
    """One caller's hold on a request: its result, its place in line, its progress; release() when leaving."""

    def __init__(self, queue: ComputeQueue, request: Flight, counted: bool, session: Hashable | None = None):
        self.queue, self.request, self._held, self.session = queue, request, counted, session

    def position(self) -> int | None:
        """Requests that will start before this one (0: it starts next), None once it runs or has ended."""
        return self.queue._position(self.request)

    def progress(self) -> Progress:
        return self.request.progress

    def done(self) -> bool:
        return self.request.future.done()

    def wait(self, timeout: float | None = None) -> bool:
        """True once the result (or its error) is there."""
        return bool(wait([self.request.future], timeout).done)

    def result(self, timeout: float | None = None) -> Any:
        return self.request.future.result(timeout)

    def release(self) -> None:
        """This caller no longer waits (its page reran, or its browser left); idempotent."""
        if self._held:
            self._held = False
            self.queue._release(self.request, self.session)


class ComputeQueue:
    """Submit keyed computations; identical keys share one; at most ``workers`` run at once; results cached by bytes."""

    def __init__(
        self,
        workers: int = 8,
        max_bytes: int = 256 << 20,
        sizeof: Callable[[Any], int] = lambda v: 0,
        grace_s: float = 10.0,
        on_compute: Callable[[Hashable], None] | None = None,
        initializer: Callable[[], None] | None = None,
        cancel_after_s: float = 1.0,
    ):
        if workers < 1 or max_bytes < 0:
            raise ValueError(f"workers must be >= 1 and max_bytes >= 0, got {workers} and {max_bytes}")
        self.workers, self.grace_s, self.cancel_after_s = workers, grace_s, cancel_after_s
        self.on_compute = on_compute  # called with a key as its computation starts (a log, a test's counter)
        self.initializer = initializer  # run by each worker thread first, as ThreadPoolExecutor's (torch's threads)
        self.results = ResultsStore(max_bytes, sizeof)
        self._inflight: dict[Hashable, Flight] = {}  # queued and running requests
        self._last_asked = time.monotonic()  # when a caller last submitted (idle_s)
        self._cond = threading.Condition()
        self._seq = itertools.count()
        self.counts = {"computed": 0, "joined": 0, "cached": 0, "dropped": 0, "failed": 0, "cancelled": 0}
        self._closing = (
            False  # the server is stopping: nothing more starts, running computations stop at their next step
        )
        self._threads = [threading.Thread(target=self._work, name=f"compute-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()

    def close(self, timeout: float = 10.0) -> None:
        """The server is stopping: queued requests are dropped (their callers' waits end), running ones stop at their next
        step (Cancelled), and the workers end; waits at most timeout seconds for them. Threads that run torch when the
        interpreter exits can abort the process (std::terminate): a server closes its queue first."""
        with self._cond:
            self._closing = True
            for r in list(self._inflight.values()):
                if r.state == "queued":
                    r.state = "dropped"
                    self._forget(r)
                    r.future.cancel()
            self._cond.notify_all()
        end = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, end - time.monotonic()))

    # --- callers

    def submit_all(
        self, items: list[tuple[Hashable, Callable[[Progress], Any]]], session: Hashable | None = None
    ) -> list[Ticket]:
        """Tickets for (key, fn) items, asked for together by one caller's session: what this session alone left behind
        before (another page, another seed) and does not ask for again is given up at once (dropped if queued, stopped
        at its next step if running)."""
        with self._cond:
            tickets = [self.submit(key, fn, session=session) for key, fn in items]
            if session is not None:
                asked = {key for key, _ in items}
                for r in self._inflight.values():
                    if r.left_by == session and not r.waiters and not r.keep and r.key not in asked:
                        r.left_at = float("-inf")  # no worker need wake for it: _next drops it, Progress.step stops it
            return tickets

    def submit(
        self, key: Hashable, fn: Callable[[Progress], Any], keep: bool = False, session: Hashable | None = None
    ) -> Ticket:
        """A ticket for key's result: from the cache, from the request already queued or running, or a new request."""
        with self._cond:
            if self._closing:
                raise Cancelled("the server is stopping")
            if not keep:
                self._last_asked = time.monotonic()
            if key in self.results:
                self.counts["cached"] += 1
                request = Flight(key, fn, -1, state="done")
                request.future.set_result(self.results.get(key))
                return Ticket(self, request, counted=False)
            request = self._inflight.get(key)
            if request is None:
                request = self._inflight[key] = Flight(key, fn, next(self._seq))
                request.progress.abandoned = lambda: self._abandoned(request)
                request.progress.wanted = lambda: request.waiters > 0  # a warm-up that a browser joined is wanted
                self._cond.notify()
            else:
                self.counts["joined"] += 1
            request.keep |= keep
            if not keep:
                request.waiters += 1
                request.left_at = request.left_by = None
            return Ticket(self, request, counted=not keep, session=session)

    def cached(self, key: Hashable) -> Any | None:
        with self._cond:
            return self.results.peek(key)

    def idle_s(self) -> float:
        """Seconds since a caller last submitted a request or had one running (0 while one is queued or running):
        how long the room has asked for nothing, for work that should wait for a quiet moment."""
        with self._cond:
            if any(r.waiters for r in self._inflight.values()):
                return 0.0
            return time.monotonic() - self._last_asked

    def pending(self) -> int:
        """Requests queued that somebody waits for."""
        with self._cond:
            return sum(1 for r in self._inflight.values() if r.state == "queued" and r.waiters)

    @property
    def cached_bytes(self) -> int:
        return self.results.bytes

    # --- the queue

    def _release(self, request: Flight, session: Hashable | None = None) -> None:
        with self._cond:
            self._last_asked = time.monotonic()
            request.waiters -= 1
            if request.waiters == 0 and request.state in ("queued", "running") and not request.keep:
                request.left_at = (
                    time.monotonic()
                )  # set aside: dropped after grace_s (stopped after cancel_after_s if it
                request.left_by = session  # runs) unless somebody comes back

    def _abandoned(self, request: Flight) -> bool:
        """Whether a running request's callers all left (cancel_after_s ago, or its session moved on): it is then
        taken out of the queue (a caller who asks again starts it afresh) and its computation stops (Progress.step)."""
        with self._cond:
            if request.state == "cancelled" or self._closing:
                return True
            if request.state != "running" or request.waiters or request.keep or request.left_at is None:
                return False
            if time.monotonic() - request.left_at < self.cancel_after_s:
                return False
            request.state = "cancelled"
            self._forget(request)
            self.counts["cancelled"] += 1
            return True

    def _forget(self, request: Flight) -> None:
        if self._inflight.get(request.key) is request:
            del self._inflight[request.key]

    def _position(self, request: Flight) -> int | None:
        with self._cond:
            if request.state != "queued":
                return None
            return sum(1 for r in self._inflight.values() if r.state == "queued" and self._before(r, request))

    @staticmethod
    def _before(a: Flight, b: Flight) -> bool:
        """a starts before b: requests somebody waits for first, then warm-up ones; each in arrival order."""
        return (not a.waiters, a.seq) < (not b.waiters, b.seq)

    def _next(self) -> Flight | None:
        """The next request to run (under the lock); drops those nobody came back for within grace_s."""
        now, best = time.monotonic(), None
        for r in list(self._inflight.values()):
            if r.state != "queued":
                continue
            if not r.waiters and not r.keep:
                if now - r.left_at > self.grace_s:
                    r.state = "dropped"
                    del self._inflight[r.key]
                    r.future.cancel()
                    self.counts["dropped"] += 1
                continue
            if best is None or self._before(r, best):
                best = r
        return best

    def _work(self) -> None:
        if self.initializer is not None:
            self.initializer()
        while True:
            with self._cond:
                request = None if self._closing else self._next()
                while request is None:
                    if self._closing:
                        return
                    self._cond.wait(timeout=self.grace_s)
                    request = None if self._closing else self._next()
                request.state = "running"
                self.counts["computed"] += 1
            if self.on_compute is not None:
                try:
                    self.on_compute(request.key)
                # a log that fails is logged: a worker that died here left its request running for ever
                except Exception:
                    log.exception("on_compute failed for %r", request.key)
            try:
                value = request.fn(request.progress)
            except BaseException as e:  # the error goes to every caller; nothing is cached
                with self._cond:
                    if request.state != "cancelled":  # (a computation that stopped itself is cancelled, not failed)
                        request.state = "cancelled" if isinstance(e, Cancelled) else "failed"
                        self.counts[request.state] += 1
                    self._forget(request)
                request.future.set_exception(e)
                continue
            with self._cond:
                request.state = "done"
                self._forget(request)
                try:
                    self.results.put(request.key, value)
                except Exception:  # (not kept: its callers still get it)
                    log.exception("the result of %r could not be stored", request.key)
            request.future.set_result(value)
