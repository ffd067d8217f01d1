"""The room: what every browser of one server shares for Part A, its compute queue, and the defaults it warms.

One ``Room`` per server (the app keeps it in st.cache_resource): a ``serving.queue.ComputeQueue`` that computes each
distinct request once (in-flight sharing, arrival order, a results store bounded by bytes), and for each backend the
denoiser the server computes with: on the fast path (the default) a ``serving.batching.LoopBatcher`` over
``for_inference()`` (BatchNorm folded, channels_last) that runs the loops of all running requests as one, a model
call per round for all; on the exact path the backend itself, each request's loop run alone as ``lab`` runs it.
``warm_defaults`` computes, in the background, every Part A page's default result for the default backend and seed
(and a lecture's seeds and backends), so a room that opens a page together is served from the cache: the server's
edition first, the other edition's once the room is quiet.

The room is given its loaders (backend by name and device, the test images of a backend) and what more to warm
(Part B's page): it never imports the app's Streamlit code. Settings: serving.settings.RoomSettings.
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable

import torch

from serving.batching import LoopBatcher, own_threads
from serving.defaults import default_requests
from serving.queue import Cancelled, ComputeQueue, Progress
from serving.requests import Request, Result, compute
from serving.settings import ClusterSettings, RoomSettings

log = logging.getLogger("diffusion_lab")
Loader = Callable[[str, str], object]  # (backend name, device) -> the backend, loaded once


class Room:
    """The server's compute queue and serving backends (see the module docstring)."""

    def __init__(self, settings: RoomSettings, cluster: ClusterSettings | None = None):
        self.settings = settings
        self.model_threads = settings.model_threads or torch.get_num_threads()  # read before a worker sets its own
        on_compute = self._log_line if settings.compute_log else None
        self.queue = ComputeQueue(
            settings.compute_workers,
            settings.results_mb << 20,
            sizeof=lambda r: r.nbytes,
            on_compute=on_compute,
            # on the fast path a worker's own torch ops are small (the batcher calls the model); on the exact path
            # the worker calls it
            initializer=functools.partial(own_threads, 1 if settings.fast else self.model_threads),
            cancel_after_s=settings.cancel_after_s,
        )
        self._serving: dict[int, object] = {}
        self._lock = threading.Lock()
        self.warmed = threading.Event()  # set once the warm-up (if any) has finished
        self.closed = threading.Event()  # set when the server stops (close)
        self.threads: list[threading.Thread] = []  # its own threads beside the queue's (the warm-up): close joins them
        self.cluster = None
        if cluster is not None and cluster.cluster:  # Ray only when asked for: its import is the optional dependency's
            from serving.serve import PartAOnRay

            self.cluster = PartAOnRay(settings, cluster)

    def close(self, timeout: float = 10.0) -> None:
        """The server is stopping: the warm-up ends, the queue drops what waits and stops what runs at its next step, the
        batchers end; at most timeout seconds (ui.state registers it at exit: the room's threads stop before the
        interpreter does)."""
        self.closed.set()
        end = time.monotonic() + timeout
        self.queue.close(timeout)
        with self._lock:
            batchers = [batcher for _, batcher in self._serving.values()]
        for batcher in batchers:
            batcher.close(max(0.0, end - time.monotonic()))
        for thread in self.threads:
            thread.join(max(0.0, end - time.monotonic()))

    def serving(self, den) -> LoopBatcher | None:
        """The batcher that runs backend den's loops on the fast path (one per backend), None on the exact path."""
        if not self.settings.fast:
            return None
        with self._lock:
            if id(den) not in self._serving:
                q = self.settings.batch_quantum  # a backend of large images may take fewer rows (PixNerd's 512 px)
                rows = max(q, min(self.settings.batch_rows, den.batch_rows or self.settings.batch_rows) // q * q)
                batcher = LoopBatcher(den.for_inference(), max_rows=rows, quantum=q, threads=self.model_threads)
                self._serving[id(den)] = (den, batcher)  # den kept: its id is not reused while it is here
            return self._serving[id(den)][1]

    def job(self, request: Request, den) -> Callable[[Progress], Result]:
        """What a queue worker runs for request: ``Room.compute`` of it on den."""
        return functools.partial(self.compute, request, den)

    def compute(self, request: Request, den, progress: Progress) -> Result:
        """request's result on a queue worker: on the fast path its loop runs with the other requests' on den's
        batcher, on the exact path alone on den; on a cluster, its backend's Serve deployment computes it."""
        if self.cluster is not None and self.cluster.serves(request.backend):
            return self.cluster.compute(request)
        batcher = self.serving(den)
        if batcher is None:
            return compute(request, den, progress)
        return compute(request, batcher.denoiser, progress, lambda steps: batcher.run(steps, progress.wanted))

    def submit(self, requests: list[Request], load: Loader, session=None) -> list:
        """Tickets for the requests (each checked, on its backend, loaded by load): joined, cached or queued. session: the
        caller's (a browser tab's); what it alone left behind before is given up (serving.queue.submit_all)."""
        items = [(r.check(), self.job(r, load(r.backend, r.device))) for r in requests]
        return self.queue.submit_all(items, session)

    def warm(self, requests: list[tuple[Request, object]]) -> list:
        """Queue requests nobody waits for yet; they run when no browser's request waits (serving.queue keep)."""
        return [self.queue.submit(request, self.job(request, den), keep=True) for request, den in requests]

    def _log_line(self, request: Request | tuple) -> None:
        """A computation's line in the compute log: a Part A request's function, backend and arguments, or another key
        (Part B's generators page: a tuple naming what it samples) as it is."""
        line = " ".join(map(str, request)) if isinstance(request, tuple) else request.said()
        with open(self.settings.compute_log, "a") as f:
            f.write(f"{time.time():.3f} {line}\n")


QUIET_S = 15.0  # the room asked for nothing this long: the other edition's and Part B's warm-ups may start


def warm_defaults(
    r: Room,
    backends: list[str],
    seeds: list[int],
    load: Loader,
    test_images: Callable[[str], torch.Tensor],
    quiet: list[Callable[[int, Callable[[], bool]], None]] = (),
    later: list[str] = (),
) -> None:
    """Every Part A page's default requests for the backends and seeds (test_images(name): the picture a page opens on),
    then, once the room has asked for nothing for QUIET_S, those of the later backends (the other
    edition's: a room that comes in meanwhile is served first) and quiet(seed, busy) on one core (Part B's generators
    page), which stops (Cancelled) when busy() says a browser asked for something, and starts again once the room is
    quiet; r.warmed is set when all are done. Run it on a thread of its own."""

    def pages(names: list[str]) -> int:
        warmed = 0
        for name in names:
            try:
                den, x0 = load(name, "cpu"), test_images(name)
            except Exception:  # one backend that cannot load (a misspelt DIFFUSION_LAB_WARM_BACKENDS) costs only itself
                log.exception("not warming %r", name)
                continue
            for seed in seeds:
                for page in default_requests(
                    name, "cpu", seed, den, x0
                ).values():  # a page at a time: a browser that opens a
                    if r.closed.is_set():  # page meanwhile waits for one page's warm-up
                        return warmed
                    for ticket in r.warm([(request, den) for request in page]):
                        ticket.wait()
                        warmed += 1
        return warmed

    def until_quiet() -> None:
        while r.queue.idle_s() < QUIET_S and not r.closed.is_set():
            time.sleep(1.0)
        if r.closed.is_set():
            raise Cancelled("the server is stopping")

    own_threads(1)  # its own torch ops are small (loading, test images): no OpenMP team of its own (own_threads)
    try:
        t0 = time.perf_counter()
        warmed = pages(backends)
        log.info("warmed %d Part A default results in %.1f s", warmed, time.perf_counter() - t0)
        if later:
            until_quiet()
            warmed += pages(later)
            log.info("warmed %d Part A default results of both editions in %.1f s", warmed, time.perf_counter() - t0)
        if quiet:
            # Part B's generators page is ~15 s of both cores: it waits for a quiet room, then takes one core (a room that
            # comes in keeps the other: ui.state.generator_job)
            until_quiet()
            busy = lambda: r.queue.idle_s() == 0 or r.closed.is_set()  # noqa: E731  (a browser asked for something)
            for seed in seeds:
                for warm in quiet:
                    # quiet(seed, busy) stops (Cancelled) when the room asks for something: again once quiet
                    while True:
                        try:
                            warm(seed, busy)
                            break
                        except Cancelled:
                            until_quiet()
                    warmed += 1
        log.info("warmed %d default results in %.1f s", warmed, time.perf_counter() - t0)
    except Cancelled:  # the server stopped meanwhile
        log.info("the warm-up stopped: the server is stopping")
    except Exception:  # warming is a courtesy: the pages compute what they need anyway
        if not r.closed.is_set():
            log.exception("warming the pages' defaults failed")
    finally:
        r.warmed.set()
