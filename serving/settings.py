"""Every ``DIFFUSION_LAB_*`` setting: declared once (name, default, what it does), parsed one way (serving.variables).

Settings come from environment variables, read when the server makes what they configure (the room, the job
manager, DeepFloyd IF). DeepFloyd IF's may also come from the ``[deepfloyd]`` table of a TOML file (``CONFIG``),
with the same keys as ``IFSettings``' fields; the environment wins. A value that cannot be read is a ``ValueError``
that names the variable and what it takes (for IF an ``IFNotConfigured``, which the sidebar shows with its fix).
An empty variable is an unset one. docs/operating.md lists every variable (a test keeps it and ``VARIABLES`` equal).

Sections: ``RoomSettings`` (Part A computations, the default edition), ``ClusterSettings`` (Ray), ``TrainingSettings`` (Train live's
jobs), ``IFSettings`` (DeepFloyd IF; declared in models.deepfloyd.settings, beside the code whose messages name its
variables), ``PixNerdSettings`` (PixNerd; models.pixnerd.settings).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import tomllib
import torch

from models.deepfloyd.errors import IFNotConfigured
from models.deepfloyd.settings import IFSettings
from models.pixnerd.errors import PixNerdNotConfigured
from models.pixnerd.settings import PixNerdSettings
from models.sources import variable
from serving.variables import SettingError, Variable, parse, shown

ROOT = Path(__file__).resolve().parents[1]  # the repository: the training process runs from here, to import lab


@dataclass(frozen=True)
class RoomSettings:
    """What every browser of one server shares for Part A (serving.room), and the edition its pages open in."""

    edition: str = variable(
        "DIFFUSION_LAB_EDITION",
        "2024",
        "the course's edition Part A opens in: 2024 (DDPM, "
        "DeepFloyd IF) or 2026 (flow matching, PixNerd); a browser picks its own in the sidebar or "
        "with ?edition=",
        "edition",
    )
    compute_workers: int = variable(
        "DIFFUSION_LAB_COMPUTE_WORKERS",
        32,
        "requests computed at once; their loops' model calls are batched together",
        "whole",
    )
    results_mb: int = variable("DIFFUSION_LAB_RESULTS_MB", 256, "memory the finished results may hold (MB)", "whole")
    fast: bool = variable(
        "DIFFUSION_LAB_FAST",
        True,
        "1: batched model calls on a folded channels_last copy of the "
        "backend; 0: the exact path, each request's calls as lab makes them",
        "bool",
    )
    batch_rows: int = variable("DIFFUSION_LAB_BATCH_ROWS", 64, "most rows in one model call (more on a GPU)", "whole")
    batch_quantum: int = variable(
        "DIFFUSION_LAB_BATCH_QUANTUM",
        4,
        "model calls are padded to a multiple of this many "
        "rows (a row's output then never depends on its batch: serving/batching.py)",
        "whole",
    )
    model_threads: int = variable(
        "DIFFUSION_LAB_MODEL_THREADS",
        0,
        "torch threads of the model calls; 0: torch's default, one per core",
        "whole0",
        "torch's",
    )
    warm: bool = variable("DIFFUSION_LAB_WARM", True, "1: compute every page's default result at start", "bool")
    warm_seeds: tuple[int, ...] = variable(
        "DIFFUSION_LAB_WARM_SEEDS", (), "more seeds to warm (a lecture's, e.g. 1,100)", "seeds", "none"
    )
    warm_backends: tuple[str, ...] = variable(
        "DIFFUSION_LAB_WARM_BACKENDS", (), "more backends to warm (e.g. Fashion-MNIST, PixNerd)", "names", "none"
    )
    cancel_after_s: float = variable(
        "DIFFUSION_LAB_CANCEL_AFTER_S",
        1.0,
        "a computation nobody waits for any more "
        "stops at its next step after this many seconds (a page rerun that asks for it "
        "again meanwhile keeps it)",
        "number",
    )
    page_runs: int = variable(
        "DIFFUSION_LAB_PAGE_RUNS",
        0,
        "page scripts run at once; the others wait their turn, a line "
        "on their page says so (a page waiting for a computation gives its turn up: ui/turns.py); "
        "0: two per core",
        "whole0",
        "two per core",
    )
    compute_log: str | None = variable(
        "DIFFUSION_LAB_COMPUTE_LOG",
        None,
        "a file that gets a line per computation started (what the server computed)",
        "path",
        "none",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RoomSettings:
        settings = parse(cls, env)
        if settings.batch_rows % settings.batch_quantum:
            raise SettingError(
                "DIFFUSION_LAB_BATCH_ROWS", settings.batch_rows, "a multiple of DIFFUSION_LAB_BATCH_QUANTUM"
            )
        return settings


@dataclass(frozen=True)
class ClusterSettings:
    """The lab on a Ray cluster (serving.cluster, serving.serve, serving.cluster_jobs): Part A on Ray Serve, training
    as Ray tasks. Without DIFFUSION_LAB_CLUSTER nothing of Ray is imported."""

    cluster: str = variable(
        "DIFFUSION_LAB_CLUSTER",
        "",
        "auto (the cluster on this machine, started if there is "
        "none) or a Ray address (ray://head:10001): Part A on Ray Serve, training as Ray tasks; "
        "unset: all in the app's process",
        "text",
        "none",
    )
    serve_replicas: int = variable(
        "DIFFUSION_LAB_SERVE_REPLICAS", 1, "on a cluster: Serve replicas per backend", "whole"
    )
    serve_batch: int = variable(
        "DIFFUSION_LAB_SERVE_BATCH", 32, "on a cluster: @serve.batch's most requests per batch", "whole"
    )
    serve_wait_ms: int = variable(
        "DIFFUSION_LAB_SERVE_WAIT_MS", 10, "on a cluster: how long @serve.batch waits to fill a batch (ms)", "whole"
    )
    serve_cpus: int = variable(
        "DIFFUSION_LAB_SERVE_CPUS",
        1,
        "on a cluster: CPUs, and torch threads, of a Serve replica (a replica on cuda asks for a GPU too)",
        "whole",
    )
    train_cpus: float = variable(
        "DIFFUSION_LAB_TRAIN_CPUS", 1.0, "on a cluster: CPUs (and torch threads) of a training task", "number"
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ClusterSettings:
        return parse(cls, env)


@dataclass(frozen=True)
class TrainingSettings:
    """Train live's jobs (serving.jobs): where runs live, how many train at once, how long they are kept."""

    runs: str = variable(
        "DIFFUSION_LAB_RUNS",
        lambda: str(ROOT / "runs" / "jobs"),
        "the runs folder (checkpoints, history, samples); on a cluster, a path every node and app replica sees",
        "path",
        "runs/jobs",
    )
    max_jobs: int = variable(
        "DIFFUSION_LAB_MAX_JOBS",
        lambda: 2 if torch.cuda.is_available() else 1,
        "runs that train at once; the others wait in a fair queue",
        "whole",
        "1 on a CPU, 2 on a GPU",
    )
    runs_per_browser: int = variable(
        "DIFFUSION_LAB_RUNS_PER_BROWSER", 2, "runs one browser may have queued or running at once", "whole"
    )
    runs_per_address: int = variable(
        "DIFFUSION_LAB_RUNS_PER_ADDRESS",
        2,
        "runs one network address may have queued "
        "or running at once, however many browsers or sessions it opens (the same machine "
        "is not counted); 0: no such cap, for a room behind one NAT address",
        "whole0",
    )
    trusted_proxies: tuple[str, ...] = variable(
        "DIFFUSION_LAB_TRUSTED_PROXIES",
        ("127.0.0.1", "::1"),
        "addresses of "
        "reverse proxies whose X-Forwarded-For names the browser's address "
        "(from any other peer the header is ignored)",
        "names",
        "127.0.0.1,::1",
    )
    runs_max_age_days: float = variable(
        "DIFFUSION_LAB_RUNS_MAX_AGE_DAYS",
        30.0,
        "finished runs of browsers not seen for this many days are removed when the server starts",
        "number",
    )
    stop_wait_s: float = variable(
        "DIFFUSION_LAB_STOP_WAIT_S",
        10.0,
        "a stopping server waits this long for its running runs to checkpoint (s)",
        "number",
    )
    checkpoint_every_s: float = variable(
        "DIFFUSION_LAB_CHECKPOINT_EVERY_S",
        60.0,
        "seconds between a run's periodic checkpoints: a killed server or process loses at most this much",
        "number",
    )
    queue_max: int = variable(
        "DIFFUSION_LAB_QUEUE_MAX", 20, "runs that may wait in the queue, all browsers together", "whole"
    )
    run_max_minutes: float = variable(
        "DIFFUSION_LAB_RUN_MAX_MINUTES",
        30.0,
        "a run stops (checkpointed, resumable) after training this many minutes at a stretch; 0: no limit",
        "number",
    )
    min_free_mb: float = variable(
        "DIFFUSION_LAB_MIN_FREE_MB",
        500.0,
        "a run starts only with this much free disk in the runs folder (MB)",
        "number",
    )
    lecturer_key: str | None = variable(
        "DIFFUSION_LAB_LECTURER_KEY",
        None,
        "the lecturer's key on the Train live "
        "page (also lecturer_key in .streamlit/secrets.toml); unset: no lecturer "
        "unless st.login names one (DIFFUSION_LAB_LECTURERS)",
        "text",
        "none",
    )
    lecturers: tuple[str, ...] = variable(
        "DIFFUSION_LAB_LECTURERS",
        (),
        "with Streamlit's own login (st.login, an "
        "[auth] section in secrets.toml): the e-mail addresses of the lecturers",
        "names",
        "none",
    )
    train_threads: int = variable(
        "DIFFUSION_LAB_TRAIN_THREADS",
        0,
        "torch threads of a training process; 0: torch's, one per core",
        "whole0",
        "torch's",
    )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> TrainingSettings:
        return parse(cls, env)


CONFIG = "DIFFUSION_LAB_CONFIG"  # a TOML file whose [deepfloyd] and [pixnerd] tables set IFSettings' and PixNerdSettings' fields
CONFIG_DEFAULT = "diffusion-lab.toml"  # in the working directory
CONFIG_DOC = (
    "a TOML file whose [deepfloyd] and [pixnerd] tables set DeepFloyd IF's and PixNerd's settings, keys as "
    'in IFSettings and PixNerdSettings (model = "DeepFloyd/IF-I-XL-v1.0"); the environment wins'
)
SECTIONS = (RoomSettings, ClusterSettings, TrainingSettings, IFSettings, PixNerdSettings)


_DECLARED = [
    Variable(f.metadata["env"], shown(f), f.metadata["doc"], section.__name__)
    for section in SECTIONS
    for f in fields(section)
    if "env" in f.metadata
]
# one per name (IF and PixNerd share DIFFUSION_LAB_CACHE: the first section's says it), and the config file's
VARIABLES = tuple(v for i, v in enumerate(_DECLARED) if v.name not in {w.name for w in _DECLARED[:i]}) + (
    Variable(CONFIG, CONFIG_DEFAULT, CONFIG_DOC, "IFSettings"),
)


def training_settings(env: Mapping[str, str] | None = None) -> TrainingSettings:
    return TrainingSettings.from_env(env)


def deepfloyd_settings(env: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> IFSettings:
    """IF's settings: the environment, then the [deepfloyd] table of the config file, then the defaults; a value or a
    file that cannot be read is an IFNotConfigured naming it and the fix."""
    return course_model_settings(IFSettings, "deepfloyd", IFNotConfigured, env, config_file)


def pixnerd_settings(env: Mapping[str, str] | None = None, config_file: str | Path | None = None) -> PixNerdSettings:
    """PixNerd's settings, as IF's: the environment, then the [pixnerd] table of the config file, then the defaults."""
    return course_model_settings(PixNerdSettings, "pixnerd", PixNerdNotConfigured, env, config_file)


def course_model_settings(
    cls, table_name: str, error, env: Mapping[str, str] | None = None, config_file: str | Path | None = None
):
    """A course model's settings (cls): the environment, then the config file's [table_name], then the defaults; a
    value or a file that cannot be read is an ``error`` (its BackendUnavailable) naming it and the fix."""
    env = os.environ if env is None else env
    path = Path(config_file or env.get(CONFIG) or CONFIG_DEFAULT).expanduser()
    table: dict = {}
    if path.is_file():
        try:
            table = tomllib.loads(path.read_text()).get(table_name, {})
        except tomllib.TOMLDecodeError as e:
            raise error(f"the config file {path} is not valid TOML ({e}).", f"fix or remove {path}.") from None
        known = {f.name for f in fields(cls) if "env" in f.metadata}
        unknown = set(table) - known
        if unknown:
            raise error(f"{path} [{table_name}] has unknown keys {sorted(unknown)}.", f"use only {sorted(known)}.")
    try:
        return parse(cls, env, table, str(path))
    except SettingError as e:
        raise error(f"{e.label} is {e.value!r}.", f"set {e.label} to {e.takes}.") from None
