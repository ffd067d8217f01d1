"""Part A on Ray Serve: when DIFFUSION_LAB_CLUSTER is set, the room sends each computation to a Serve deployment of
its backend instead of computing it in this process. Imported only then (serving.room).

A deployment per (bundled backend, device), shared by every app replica of the cluster (found by name; the first
replica that needs it deploys it). Its entry point takes a frozen ``serving.requests.Request`` and returns its
``Result``:

- identical requests are computed once across app replicas (in flight: joined; finished: a bytes-bounded cache), as
  each replica's own compute queue does for its browsers;
- the others are grouped by Serve's dynamic batching (``@serve.batch``: up to DIFFUSION_LAB_SERVE_BATCH requests, or
  what arrived within DIFFUSION_LAB_SERVE_WAIT_MS), and a batch's loops run as one through the replica's
  ``serving.batching.LoopBatcher``: one model call per step for all of them (batches in flight at once share the
  calls too), on the same fast path, padding and therefore the same bits as the in-process room.

Settings: serving.settings.ClusterSettings (replicas, batch size and wait, CPUs of a replica; a replica on cuda asks
for a GPU too) and the room's. DeepFloyd IF and a browser's own trained runs stay in the app's process.
"""

from __future__ import annotations

import asyncio
import functools
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import ray.exceptions
import torch
from ray import serve

from models.bundled import BACKENDS, load_backend
from serving.batching import LoopBatcher, own_threads
from serving.cluster import RUNTIME_ENV, connect
from serving.queue import ResultsStore
from serving.requests import Request, Result, compute
from serving.settings import ClusterSettings, RoomSettings


@serve.deployment
class PartA:
    """One backend's Part A computations for the whole cluster (see the module docstring)."""

    def __init__(self, backend: str, device: str, settings: RoomSettings, cluster: ClusterSettings):
        threads = max(1, int(cluster.serve_cpus))
        torch.set_num_threads(threads)
        self.den = load_backend(backend, device)
        self.batcher = (
            LoopBatcher(
                self.den.for_inference(), max_rows=settings.batch_rows, quantum=settings.batch_quantum, threads=threads
            )
            if settings.fast
            else None
        )
        # the pool's threads compute on one torch thread where the batcher calls the model (serving.batching)
        self.pool = ThreadPoolExecutor(
            cluster.serve_batch * 4,
            thread_name_prefix="part-a",
            initializer=functools.partial(own_threads, 1 if settings.fast else threads),
        )
        self.results = ResultsStore(
            settings.results_mb << 20, sizeof=lambda result: result.nbytes
        )  # one event loop: no lock
        self.inflight: dict[Request, asyncio.Future] = {}
        self.counts = {"requests": 0, "computed": 0, "joined": 0, "cached": 0}
        self.batch_sizes: list[int] = []
        self.compute_batch.set_max_batch_size(cluster.serve_batch)
        self.compute_batch.set_batch_wait_timeout_s(cluster.serve_wait_ms / 1000)

    async def __call__(self, cfg: Request) -> Result:
        self.counts["requests"] += 1
        if cfg in self.results:
            self.counts["cached"] += 1
            return self.results.get(cfg)
        if cfg in self.inflight:
            self.counts["joined"] += 1
            return await asyncio.shield(self.inflight[cfg])
        future = self.inflight[cfg] = asyncio.get_running_loop().create_future()
        future.add_done_callback(lambda f: f.cancelled() or f.exception())  # joined or not, its error is seen
        try:
            result = await self.compute_batch(cfg)
            if isinstance(result, BaseException):
                raise result
            self.results.put(cfg, result)
            future.set_result(result)
            return result
        except BaseException as e:
            future.set_exception(e)
            raise
        finally:
            del self.inflight[cfg]

    @serve.batch(max_batch_size=32, batch_wait_timeout_s=0.01, max_concurrent_batches=8)
    async def compute_batch(self, cfgs: list[Request]) -> list:
        """A batch of distinct requests: their loops run together (one model call per step); each result or error."""
        self.batch_sizes.append(len(cfgs))
        self.counts["computed"] += len(cfgs)
        loop = asyncio.get_running_loop()
        return await asyncio.gather(
            *(loop.run_in_executor(self.pool, self._compute, cfg) for cfg in cfgs), return_exceptions=True
        )

    def _compute(self, cfg: Request) -> Result:
        if self.batcher is None:
            return compute(cfg, self.den)
        return compute(cfg, self.batcher.denoiser, None, self.batcher.run)

    def stats(self) -> dict:
        """What this replica did: requests, computed / joined / cached, the batch sizes Serve formed, model calls."""
        return dict(
            self.counts, batch_sizes=list(self.batch_sizes), model=dict(self.batcher.stats) if self.batcher else None
        )


def app_name(backend: str, device: str) -> str:
    return "diffusion-lab-" + re.sub(r"[^a-z0-9]+", "-", f"{backend} {device}".lower()).strip("-")


class PartAOnRay:
    """The room's way to Ray Serve: the deployment handle of each backend, deployed on first use."""

    def __init__(self, settings: RoomSettings, cluster: ClusterSettings):
        self.settings, self.cluster = settings, cluster
        connect(cluster.cluster)
        self._handles: dict[tuple[str, str], object] = {}
        self._lock = threading.Lock()

    @staticmethod
    def serves(backend: str) -> bool:
        """Bundled backends are served by the cluster; DeepFloyd IF and a browser's trained runs by the app."""
        return backend in BACKENDS

    def handle(self, backend: str, device: str):
        key = (backend, device)
        with self._lock:
            if key not in self._handles:
                self._handles[key] = self._deploy(backend, device)
            return self._handles[key]

    def _deploy(self, backend: str, device: str):
        name = app_name(backend, device)
        try:  # another app replica deployed it: share it
            return serve.get_app_handle(name)
        except Exception:
            pass
        c = self.cluster
        options = {
            "num_cpus": c.serve_cpus,
            "num_gpus": 1 if device.startswith("cuda") else 0,
            "runtime_env": RUNTIME_ENV,
        }
        deployment = PartA.options(
            num_replicas=c.serve_replicas, max_ongoing_requests=max(64, 4 * c.serve_batch), ray_actor_options=options
        )
        serve.start(proxy_location="Disabled")
        return serve.run(deployment.bind(backend, device, self.settings, c), name=name, route_prefix=None)

    def compute(self, cfg: Request) -> Result:
        try:
            return self.handle(cfg.backend, cfg.device).remote(cfg).result()
        except ray.exceptions.RayTaskError as e:  # the computation's own error (bad input...), as it said it
            raise (e.cause if e.cause is not None else e) from None

    def stats(self, backend: str, device: str = "cpu") -> dict:
        return self.handle(backend, device).stats.remote().result()
