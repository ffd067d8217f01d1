"""The room: what every browser of one server shares for Part A, its compute queue, and the defaults it warms.

One ``Room`` per server (st.cache_resource): a ``lab.compute.ComputeQueue`` that computes each distinct ``Run`` once
(in-flight sharing, arrival order, a results cache bounded by bytes), and for each backend the denoiser the server
computes with: on the fast path (the default) a ``lab.batching.LoopBatcher`` over ``for_inference()`` (BatchNorm
folded, channels_last) that runs the loops of all running requests as one, a model call per round for all; on the
exact path the backend itself, each request's loop run alone as ``lab`` runs it. At start it computes in the background every Part A page's default result for the
default backend and seed (and for the lecture's seeds), so a room that opens a page together is served from cache.

Settings (environment variables, read at server start):
    DIFFUSION_LAB_COMPUTE_WORKERS  requests computed at once, their loops sharing model calls (default 32)
    DIFFUSION_LAB_RESULTS_MB       memory the finished results may hold (default 256)
    DIFFUSION_LAB_FAST             1: the fast path (default); 0: the exact path, each request's model calls as lab makes them
    DIFFUSION_LAB_BATCH_ROWS       most rows in one model call (default 64; more on a GPU)
    DIFFUSION_LAB_MODEL_THREADS    torch threads of the model calls (default: torch's, one per core)
    DIFFUSION_LAB_BATCH_QUANTUM    model calls are padded to a multiple of this many rows (default 4, see lab/batching.py)
    DIFFUSION_LAB_WARM             1: compute the pages' defaults at start (default); 0: do not
    DIFFUSION_LAB_WARM_SEEDS       more seeds to warm, comma-separated (a lecture's seeds, e.g. "1,100")
    DIFFUSION_LAB_WARM_BACKENDS    more bundled backends to warm, comma-separated (e.g. "Fashion-MNIST")
    DIFFUSION_LAB_COMPUTE_LOG      a file that gets a line per computation started (what the server computed)
    DIFFUSION_LAB_CLUSTER          "auto" or a Ray address: bundled backends' computations go to Ray Serve (ui/cluster.py);
                                   unset (the default): computed here, and nothing of Ray is imported
    DIFFUSION_LAB_SERVE_REPLICAS   on a cluster: Serve replicas per backend (default 1)
    DIFFUSION_LAB_SERVE_BATCH      on a cluster: @serve.batch's most requests per batch (default 32)
    DIFFUSION_LAB_SERVE_WAIT_MS    on a cluster: how long @serve.batch waits to fill a batch (default 10)
    DIFFUSION_LAB_SERVE_CPUS       on a cluster: CPUs, and torch threads, of a Serve replica (default 1)
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass, fields

import streamlit as st
import torch

import lab
from lab.batching import LoopBatcher
from lab.compute import ComputeQueue
from lab.filters import max_kernel_size
from ui.runs import FORWARD_T, ITERATIVE_I_START, ONE_STEP_TS, Run, compute, default_gamma, default_prompts, one_step_run, preset_mask, sdedit_row

log = logging.getLogger("diffusion_lab")


@dataclass(frozen=True)
class RoomSettings:
    compute_workers: int = 32  # requests computed at once; their loops' model calls are batched together
    results_mb: int = 256  # memory bound of the results cache
    fast: bool = True  # batched calls on a folded channels_last copy; False: exactly what lab computes
    batch_rows: int = 64  # most rows in one model call
    batch_quantum: int = 4  # model calls padded to a multiple of this (a row's output then never depends on its batch)
    model_threads: int = 0  # torch threads of the model calls; 0: torch's default
    warm: bool = True  # compute every page's default result at start
    warm_seeds: tuple[int, ...] = ()  # seeds warmed besides the sidebar's default
    warm_backends: tuple[str, ...] = ()  # bundled backends warmed besides the default one
    compute_log: str | None = None  # file: one line per computation started
    cluster: str = ""  # "auto" or a Ray address: Part A on Ray Serve (ui/cluster.py); "": in this process
    serve_replicas: int = 1  # Serve replicas per backend
    serve_batch: int = 32  # @serve.batch's max_batch_size
    serve_wait_ms: int = 10  # @serve.batch's batch_wait_timeout_s, in ms
    serve_cpus: int = 1  # CPUs (and torch threads) of a Serve replica

    @classmethod
    def from_env(cls, env=os.environ) -> RoomSettings:
        """Settings from DIFFUSION_LAB_<FIELD> variables; ValueError names the variable and what it takes."""
        values = {}
        for f in fields(cls):
            name = f"DIFFUSION_LAB_{f.name.upper()}"
            raw = env.get(name, "").strip()
            if not raw:
                continue
            try:
                if f.type == "bool":
                    if raw.lower() not in ("0", "1", "true", "false", "on", "off"):
                        raise ValueError
                    values[f.name] = raw.lower() in ("1", "true", "on")
                elif f.type == "int":
                    values[f.name] = int(raw)
                    if values[f.name] < 1:
                        raise ValueError
                elif f.name == "warm_seeds":
                    values[f.name] = tuple(int(s) for s in raw.split(","))
                elif f.name == "warm_backends":
                    values[f.name] = tuple(s.strip() for s in raw.split(",") if s.strip())
                else:
                    values[f.name] = raw
            except ValueError:
                kind = {"bool": "0 or 1", "int": "a whole number >= 1"}.get(f.type, "a comma-separated list of whole numbers")
                raise ValueError(f"{name}={raw!r}: it takes {kind}") from None
        settings = cls(**values)
        if settings.batch_rows % settings.batch_quantum:
            raise ValueError("DIFFUSION_LAB_BATCH_ROWS must be a multiple of DIFFUSION_LAB_BATCH_QUANTUM")
        return settings


class Room:
    """The server's compute queue and serving backends (see the module docstring)."""

    def __init__(self, settings: RoomSettings):
        self.settings = settings
        self.model_threads = settings.model_threads or torch.get_num_threads()  # read before a worker sets its own
        on_compute = self._log_line if settings.compute_log else None
        self.queue = ComputeQueue(settings.compute_workers, settings.results_mb << 20, sizeof=lambda r: r.nbytes, on_compute=on_compute,
                                  initializer=lambda: torch.set_num_threads(1))  # a worker's own torch ops are small
        self._serving: dict[int, object] = {}
        self._lock = threading.Lock()
        self.warmed = threading.Event()  # set once the warm-up (if any) has finished
        self.cluster = None
        if settings.cluster:  # Ray only when asked for
            from ui.cluster import PartAOnRay

            self.cluster = PartAOnRay(settings)

    def serving(self, den) -> LoopBatcher | None:
        """The batcher that runs backend den's loops on the fast path (one per backend), None on the exact path."""
        if not self.settings.fast:
            return None
        with self._lock:
            if id(den) not in self._serving:
                fast = den.for_inference() if hasattr(den, "for_inference") else den
                self._serving[id(den)] = (den, LoopBatcher(fast, max_rows=self.settings.batch_rows,
                                                           quantum=self.settings.batch_quantum, threads=self.model_threads))
            return self._serving[id(den)][1]

    def job(self, cfg: Run, den):
        """What a queue worker runs for cfg: compute it, its loop run with the other requests' (fast path) or alone; on
        a cluster, its backend's Serve deployment computes it."""
        if self.cluster is not None and self.cluster.serves(cfg.backend):
            return lambda progress: self.cluster.compute(cfg)
        batcher = self.serving(den)
        if batcher is None:
            return lambda progress: compute(cfg, den, progress)
        return lambda progress: compute(cfg, batcher.denoiser, progress, batcher.run)

    def warm(self, requests: list[tuple[Run, object]]) -> list:
        """Queue requests nobody waits for yet; they run when no browser's request waits (lab.compute keep)."""
        return [self.queue.submit(cfg, self.job(cfg, den), keep=True) for cfg, den in requests]

    def _log_line(self, cfg: Run) -> None:
        with open(self.settings.compute_log, "a") as f:
            f.write(f"{time.time():.3f} {cfg.kind} {cfg.backend} seed={cfg.seed} i_start={cfg.i_start} prompts={'|'.join(cfg.prompts)}\n")


PART_B_WARM_AFTER_IDLE_S = 15.0  # the room asked for nothing this long: Part B's warm-up may start


@st.cache_resource
def room() -> Room:
    """The server's room; at start it warms the pages' defaults in the background."""
    r = Room(RoomSettings.from_env())
    if r.settings.warm:
        threading.Thread(target=_warm_defaults, args=(r,), name="warm-defaults", daemon=True).start()
    return r


def _warm_defaults(r: Room) -> None:
    """Every Part A page's default requests for the default backend (and DIFFUSION_LAB_WARM_BACKENDS) and seed (and
    DIFFUSION_LAB_WARM_SEEDS), then the Part B generators page's default samples; r.warmed is set when they are done."""
    from models.bundled import BACKENDS
    from ui.common import DEFAULT_SEED, backend, first_test_images
    from ui.partb import warm_generators

    try:
        warmed, t0 = 0, time.perf_counter()
        for name in (next(iter(BACKENDS)), *r.settings.warm_backends):
            den = backend(name, "cpu")
            x0 = first_test_images(name, 1)
            for seed in (DEFAULT_SEED, *r.settings.warm_seeds):
                for page in default_requests(name, "cpu", seed, den, x0).values():  # a page at a time: a browser that opens a
                    for ticket in r.warm([(cfg, den) for cfg in page]):  # page meanwhile waits for one page's warm-up
                        ticket.wait()
                        warmed += 1
        log.info("warmed %d Part A default results in %.1f s", warmed, time.perf_counter() - t0)
        while r.queue.idle_s() < PART_B_WARM_AFTER_IDLE_S:  # Part B's generators page is ~15 s of both cores: it waits
            time.sleep(1.0)  # for a quiet room, then takes one core (a room that comes in meanwhile keeps the other)
        torch.set_num_threads(1)
        for seed in (DEFAULT_SEED, *r.settings.warm_seeds):
            warm_generators(seed)
            warmed += 1
        log.info("warmed %d default results in %.1f s", warmed, time.perf_counter() - t0)
    except Exception:  # warming is a courtesy: the pages compute what they need anyway
        log.exception("warming the pages' defaults failed")
    finally:
        r.warmed.set()


def default_requests(backend: str, device: str, seed: int, den, x0: torch.Tensor) -> dict[str, list[Run]]:
    """What each Part A page asks for when opened with its defaults on this backend and seed (x0: the first test
    image), page file -> its requests, in the course's order; tests/test_room.py opens each page after warming these
    and checks that it computes nothing new; the Welcome page shows their first pictures."""
    C, H, W = den.image_shape
    gamma = default_gamma(den)
    run = lambda kind, prompts=("a high quality photo",), scale=gamma, **kw: Run(kind, backend, device, seed, prompts, scale, **kw)  # noqa: E731
    ts = [*ONE_STEP_TS, FORWARD_T]
    noisy = lab.forward(x0.expand(len(ts), -1, -1, -1), torch.tensor(ts), den, generator=seed)
    t_iter = lab.strided_timesteps(den.T, 30)[ITERATIVE_I_START]
    noisy_iter = lab.forward(x0, t_iter, den, generator=seed)
    cfg_prompt, text_prompt = default_prompts("cfg", den)[0], default_prompts("text", den)[0]
    return {
        "a0_sampling.py": [run("sample", (p,), stride=max(1, den.T // n)) for p in default_prompts("sampling", den) for n in (10, 34)],
        "a3_one_step.py": [one_step_run(backend, device, seed, noisy, ts)],
        "a4_iterative.py": [run("iterative", scale=None, i_start=ITERATIVE_I_START, image=Run.pack(x0)), one_step_run(backend, device, seed, noisy_iter, [t_iter])],
        "a5_sample.py": [run("sample", scale=None, n=5)],
        "a6_cfg.py": [run("sample", (cfg_prompt,), n=5), run("sample", (cfg_prompt,), None, n=5)],
        "a7_sdedit.py": sdedit_row(backend, device, seed, x0, default_prompts("sdedit", den)[0], gamma),  # its i_start slider starts in the row
        "a72_inpaint.py": [run("inpaint", default_prompts("inpaint", den), image=Run.pack(x0), mask=Run.pack(preset_mask("top half", H, W)))],
        "a73_text.py": sdedit_row(backend, device, seed, x0, text_prompt, gamma),
        "a8_anagrams.py": [run("anagram", default_prompts("anagram", den)[:2], views=("identity", "flip"))],
        "a9_hybrids.py": [run("hybrid", default_prompts("hybrid", den)[:2], kernel_size=min(33, max_kernel_size(H, W)), sigmas=(2.0,))],
    }  # fmt: skip
