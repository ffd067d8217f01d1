"""What the pages read their state from: the server's singletons (``singleton``, made once per process, which no
client message can drop: the room, the job manager, the loaded backends and models) and this browser's session (its sidebar choices, its owner id).

The bottom of ui/: it imports nothing of ui/ but the page catalogue. The room and the job manager are made from
serving/ with their settings (serving.settings) the first time a page asks for them.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import streamlit as st
import torch
from streamlit.runtime.scriptrunner import get_script_run_ctx

from lab.checkpoint import load_trained
from lab.data import test_image_labels as dataset_test_image_labels
from lab.data import test_images as dataset_test_images
from lab.fall2024 import SEED
from models.bundled import (
    ALL_BACKENDS,
    BACKENDS,
    FLOW_BACKENDS,
    course_backend,
    load_backend,
    load_course_model,
    part_a_problem,
)
from models.unet import inference_copy
from serving import generators
from serving.defaults import GENERATOR_FIRST, GENERATOR_GAMMA, generator_steps
from serving.jobs import JobManager
from serving.requests import Packed
from serving.room import Room, warm_defaults
from serving.settings import (
    ClusterSettings,
    RoomSettings,
    TrainingSettings,
    deepfloyd_settings,
    pixnerd_settings,
)
from ui.identity import owner_id

log = logging.getLogger("diffusion_lab")
IF_NAME = "DeepFloyd IF"
PIXNERD_NAME = "PixNerd"  # the Fall 2026 course's model (models.pixnerd), on its own settings
COURSE_MODELS = (IF_NAME, PIXNERD_NAME)  # the courses' own models: free text, photos, loaded from their settings
TRAINED_PREFIX = "Your run "  # + a job id: a Part A backend this browser trained on the Train live page
DEFAULT_SEED = SEED  # a seed the course's students used
LECTURE_WIDTH = 1180  # pixels a page's main column has on a 1280x720 projector with the sidebar closed


@dataclass(frozen=True)
class Settings:
    backend: (
        str  # a name of models.bundled.ALL_BACKENDS, IF_NAME, PIXNERD_NAME, or TRAINED_PREFIX + a finished run's id
    )
    device: str  # "cpu" or "cuda"
    seed: int  # the one seed every page uses, as the course asks
    lecture: bool  # large images, fewer controls
    edition: str = "2024"  # the course's edition Part A follows: "2024" (DDPM) or "2026" (flow); ui.catalog.EDITIONS

    @property
    def size(self) -> int:
        """Display width of one image, in pixels."""
        return 224 if self.lecture else 128

    @property
    def large(self) -> int:
        """Display width of a page's main picture: large, and in lecture mode still above a 720 px projector's fold."""
        return 280 if self.lecture else 256

    def row_size(self, n: int) -> int:
        """Width of each of n images in a row: in lecture mode as large as fits a 1280 px projector without wrapping."""
        return min(self.size, LECTURE_WIDTH // max(1, n) - 12) if self.lecture else self.size


def settings() -> Settings:
    """The sidebar's choices, for a page (the shell sets them before the page runs)."""
    return st.session_state["settings"]


# --- the server's singletons


def singleton(spinner: str | None = None, close=None):
    """A process-wide value per arguments, made once (callers that ask meanwhile wait for it; an exception is not
    kept): st.cache_resource's job, without its clear. Streamlit empties its caches when any browser sends clear_cache
    (ui.guard refuses it); the room and the job manager must never be made twice in one process. ``.clear()`` (tests)
    forgets the values, first closing each with ``close`` where one is given (a job manager gives its runs folder back:
    the next one of this process takes it)."""

    def wrap(fn):
        values: dict = {}
        locks: dict = {}
        guard = threading.Lock()

        @functools.wraps(fn)
        def get(*args):
            if args in values:
                return values[args]
            with guard:
                lock = locks.setdefault(args, threading.Lock())
            with lock:
                if args not in values:
                    with (
                        st.spinner(spinner)
                        if spinner and get_script_run_ctx() is not None
                        else contextlib.nullcontext()
                    ):
                        values[args] = fn(*args)
            return values[args]

        def clear():
            with guard:
                held = list(values.values())
                values.clear()
            for value in held if close else ():
                close(value)

        get.clear = clear
        return get

    return wrap


@singleton("Loading the model ...")
def backend(name: str, device: str):
    """One loaded backend per (name, device), shared by every session of this server (IF, PixNerd: their own settings)."""
    if name.startswith(TRAINED_PREFIX):
        model, train = load_trained(trained_run(name).run_dir)
        return course_backend(model, train, device)
    if name == PIXNERD_NAME:
        return pixnerd_backend()
    return if_backend() if name == IF_NAME else load_backend(name, device)


@singleton("Loading DeepFloyd IF ...")
def if_backend():
    """DeepFloyd IF stage I as a lab Denoiser, loaded once per server from its settings (environment / TOML)."""
    from models.deepfloyd.loading import load_stage1  # diffusers' IF pipeline: imported when IF is asked for

    return load_stage1(deepfloyd_settings())


@singleton("Loading PixNerd ...")
def pixnerd_backend():
    """PixNerd as a lab velocity backend, loaded once per server from its settings (environment / TOML)."""
    from models.pixnerd.loading import load_pixnerd  # the user's checkout of PixNerd: imported when it is asked for

    return load_pixnerd(pixnerd_settings())


@singleton("Loading DeepFloyd IF stage II ...")
def if_upsampler():
    """DeepFloyd IF stage II (64 -> 256 px), sharing stage I's prompt embeddings; loaded once per server when asked for."""
    from models.deepfloyd.loading import load_stage2  # diffusers' IF pipelines: imported when IF is asked for

    return load_stage2(deepfloyd_settings(), if_backend())


@st.cache_data(show_spinner="Upsampling with stage II ...", max_entries=32)
def upsampled(images: Packed, prompt: str, seed: int) -> torch.Tensor:
    """Stage II's upsampling of stage I results (B, C, H, W) under their prompt, IF's defaults; once per server for
    each."""
    return if_upsampler()(images.tensor(), prompt, generator=torch.Generator().manual_seed(seed))


@singleton("Loading the model ...")
def bundled_model(stem: str):
    """A bundled Part B model: (UNet, its training config as a dict)."""
    return load_course_model(stem)


@singleton("Loading the run ...")
def run_model(run_dir: str):
    """A finished run's model: (UNet, its training config as a dict)."""
    return load_trained(run_dir)


@singleton("Loading the model ...")
def inference_model(source: str):
    """A Part B model (bundled stem or run folder) for the room's sampling: BatchNorm folded, channels_last (1.2-1.4x
    less time, equal up to fp32 rounding: models.unet.fold_batchnorm), and its training config as a dict."""
    model, config = bundled_model(source) if not Path(source).is_dir() else run_model(source)
    return inference_copy(model), config


@singleton(close=lambda r: r.close())
def room() -> Room:
    """The server's room; at start it warms the pages' defaults in the background (Part B's too, once it is quiet)."""
    settings = RoomSettings.from_env()
    r = Room(settings, ClusterSettings.from_env())
    if settings.warm:
        ours, other = (FLOW_BACKENDS, BACKENDS) if settings.edition == "2026" else (BACKENDS, FLOW_BACKENDS)
        backends = [
            next(iter(ours)),
            *settings.warm_backends,
        ]  # the server's edition first, the other's when it is quiet
        seeds = [DEFAULT_SEED, *settings.warm_seeds]
        args = (
            r,
            backends,
            seeds,
            backend,
            lambda name: first_test_images(name, 1),
            [warm_generators],
            [next(iter(other))],
        )
        r.threads.append(threading.Thread(target=warm_defaults, args=args, name="warm-defaults", daemon=True))
        r.threads[-1].start()
    # its threads stop before the interpreter does (torch in a thread at exit aborts the process)
    atexit.register(r.close)
    return r


@singleton(close=lambda m: m.shutdown(60))
def manager():
    """One job manager per server (serving.settings.TrainingSettings: limits, runs folder, clean-up); with
    DIFFUSION_LAB_CLUSTER set, runs are Ray tasks and one manager serves every app replica (serving.cluster_jobs).
    When the server stops, its running runs checkpoint and its queued runs are queued again at restart."""
    s, cluster = TrainingSettings.from_env(), ClusterSettings.from_env()
    limits = (Path(s.runs), s.max_jobs, s.runs_per_browser)
    bounds = dict(
        max_queued=s.queue_max,
        max_minutes=s.run_max_minutes,
        min_free_mb=s.min_free_mb,
        max_per_address=s.runs_per_address,
    )
    if cluster.cluster:  # runs are Ray tasks, managed for every app replica by one actor (Ray: imported only then)
        from serving.cluster import connect
        from serving.cluster_jobs import ClusterJobManager

        connect(cluster.cluster)
        m = ClusterJobManager(*limits, cpus=cluster.train_cpus, **bounds)
    else:
        m = JobManager(*limits, **bounds)
    m.cleanup(s.runs_max_age_days * 86400)
    atexit.register(m.shutdown, s.stop_wait_s)
    return m


def runs_root() -> Path:
    """The runs folder (DIFFUSION_LAB_RUNS)."""
    return Path(TrainingSettings.from_env().runs)


def checkpoint_every_s() -> float:
    """Seconds between a run's periodic checkpoints (DIFFUSION_LAB_CHECKPOINT_EVERY_S)."""
    return TrainingSettings.from_env().checkpoint_every_s


def cuda_elsewhere() -> bool:
    """Whether a run may ask for cuda that this machine lacks: the Ray cluster that trains it has a GPU."""
    if not ClusterSettings.from_env().cluster:
        return False
    from serving.cluster import cluster_gpus  # Ray: imported only on a cluster

    return cluster_gpus() > 0


def generator_job(source: str, gamma: float, steps: int, seed: int, stop: Callable[[], bool] | None = None):
    """(key, job) of Part B's generators-page picture for the room's queue (serving.generators): a bundled stem or a
    run folder sampled on the room's model threads (the warm-up's, stop given, on one)."""
    threads = 1 if stop is not None else room().model_threads

    def job(progress):
        model, config = inference_model(source)
        return generators.sample(model, config, gamma, steps, seed, progress, threads, stop)

    return generators.key(source, gamma, steps, seed), job


def warm_generators(seed: int, stop: Callable[[], bool] | None = None) -> None:
    """The generators page's first picture of each edition (its model, CFG scale and steps; the server's edition first)
    into the room's store, so that a room opening the page is served at once (the room's warm-up calls it once the room
    is quiet, on one core; Cancelled when stop() says the room asked for something meanwhile and nobody waits for it)."""
    first = default_edition()
    for edition in sorted(GENERATOR_FIRST, key=lambda e: e != first):
        stem = GENERATOR_FIRST[edition]
        room().queue.submit(
            *generator_job(stem, GENERATOR_GAMMA, generator_steps(bundled_model(stem)[1]), seed, stop), keep=True
        ).result()


def trained_backends(edition: str = "2024") -> list[str]:
    """Ids of this browser's finished runs that can drive an edition's Part A pages, newest first: class DDPMs with
    T = 1000 (Fall 2024), class flow-matching models (Fall 2026), of images in [-1, 1]."""
    try:
        jobs = manager().jobs(owner_id())
    except Exception:
        log.exception("listing this browser's runs failed")  # backends, the Train live page says what is wrong
        return []
    experiment = "flow" if edition == "2026" else "ddpm"
    return [
        job.id
        for job in jobs
        if job.status == "done" and job.config.experiment == experiment and part_a_problem(job.config.to_dict()) is None
    ]


@singleton()
def default_edition() -> str:
    """The edition Part A opens in on this server (DIFFUSION_LAB_EDITION)."""
    return RoomSettings.from_env().edition


def trained_run(name: str):
    """The job behind a "Your run <id>" backend name."""
    return manager().get(name.removeprefix(TRAINED_PREFIX))


def backend_dataset(name: str) -> str | None:
    """The dataset a backend was trained on (None for DeepFloyd IF and PixNerd: photos)."""
    if name in COURSE_MODELS:
        return None
    return trained_run(name).config.dataset if name.startswith(TRAINED_PREFIX) else ALL_BACKENDS[name][1]


def current_backend():
    s = settings()
    return backend(s.backend, s.device)


@st.cache_data(show_spinner=False)
def test_images(name: str, count: int = 16) -> torch.Tensor:
    """Held-out images of the backend's dataset, (count, C, H, W) in [-1, 1], never seen in training; photos for the
    colour backends (IF, emoji)."""
    return first_test_images(name, count)


def first_test_images(name: str, count: int = 16) -> torch.Tensor:
    """test_images, uncached (the room's warm-up asks for the first: the picture a page opens on)."""
    return dataset_test_images(backend_dataset(name), backend(name, "cpu").image_shape, count)


@st.cache_data(show_spinner=False)
def test_image_labels(name: str, count: int = 16) -> list[str]:
    """What each of test_images(name, count) is (a held-out image, a rendering it did not train on, a photo)."""
    return dataset_test_image_labels(backend_dataset(name), backend(name, "cpu").image_shape, count)
