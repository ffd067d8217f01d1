"""The lab on a Ray cluster: connecting to it. Imported only when DIFFUSION_LAB_CLUSTER is set.

DIFFUSION_LAB_CLUSTER=auto joins the Ray cluster running on this machine or, if there is none, starts one
(``ray start --head``: it outlives the app; ``ray stop`` ends it) whose node address is 127.0.0.1 (no other machine
joins it) and which requires Ray's token authentication (Ray's ports listen on the machine's interfaces whatever the
node's address, and Ray has no authentication unless told to);
any other value is a Ray address (``ray://head:10001``, ``head:6379``) of a cluster its operator started, with Ray's
token authentication (docs/operating.md). Every node must run the lab from the same path (one image or checkout):
its workers import it from there (RUNTIME_ENV).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
from pathlib import Path

import ray

from serving.settings import ROOT

NAMESPACE = "diffusion-lab"
LOCALHOST = "127.0.0.1"  # where the head that "auto" starts listens: this machine only
CLIENT_PORT = 10001  # Ray's client server (ray://), Ray's default port
RUNTIME_ENV = {"env_vars": {"PYTHONPATH": str(ROOT)}}
_lock = threading.Lock()


class ClusterUnavailable(ValueError):
    """DIFFUSION_LAB_CLUSTER names a cluster that does not answer (the message says what to do)."""


def check_reachable(address: str, timeout: float = 3.0) -> None:
    """Fail at once, with the fix, where nothing listens at a Ray address (ray.init would wait for minutes)."""
    hostport = address.removeprefix("ray://")
    host, sep, port = hostport.rpartition(":")
    if not sep:
        host, port = hostport, ""
    port = int(port) if port.isdigit() else (10001 if address.startswith("ray://") else 6379)  # Ray's default ports
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as e:
        raise ClusterUnavailable(
            f"DIFFUSION_LAB_CLUSTER={address}: no Ray cluster answers at {host}:{port} ({e.strerror or e}). Start "
            "it (`ray start --head` on the head node), correct the address, or unset DIFFUSION_LAB_CLUSTER "
            "to compute in the app's own process."
        ) from None


def connect(address: str) -> None:
    """Join (or start, for "auto" with none running) the cluster, once per process."""
    with _lock:
        if ray.is_initialized():
            return
        if address != "auto":
            check_reachable(address)
        common = dict(namespace=NAMESPACE, runtime_env=RUNTIME_ENV, log_to_driver=False, configure_logging=False)
        if address == "auto":
            try:
                ray.init(address="auto", **common)
            except ConnectionError:  # no cluster on this machine: start one, as `ray start --head` (not inside this
                start_local_head()  # process: Ray's processes die with the thread that starts them, a page's run)
                ray.init(address="auto", **common)
        else:
            ray.init(address=address, **common)


def start_local_head() -> None:
    """`ray start --head` on this machine (it outlives the app: `ray stop` ends it), with Ray's token authentication on
    unless RAY_AUTH_MODE says otherwise (a token generated in ~/.ray/auth_token if there is none): Ray's GCS and raylet
    ports listen on every interface whatever the node's address, so without a token anyone who reaches them runs code
    here. Two app replicas starting at once: the second's start fails, and it joins the first's."""
    env = os.environ.copy()
    if "RAY_AUTH_MODE" not in env:
        env["RAY_AUTH_MODE"] = "token"
        if not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH"):
            subprocess.run([*RAY_CLI, "get-auth-token", "--generate"], env=env, capture_output=True, timeout=120)
            owner_only(Path.home() / ".ray" / "auth_token")
    subprocess.run([*HEAD_COMMAND], env=env, capture_output=True, timeout=120)


def owner_only(path: Path) -> None:
    """A secret file readable by its owner alone (Ray writes its token with the process's umask: often world-readable)."""
    try:
        path.chmod(0o600)
    except FileNotFoundError:
        pass


RAY_CLI = (sys.executable, "-m", "ray.scripts.scripts")
HEAD_COMMAND = (
    *RAY_CLI,
    "start",
    "--head",
    "--include-dashboard=false",
    "--disable-usage-stats",
    f"--node-ip-address={LOCALHOST}",
    f"--ray-client-server-port={CLIENT_PORT}",
)


def cluster_gpus() -> int:
    """GPUs in the cluster now (nodes come and go): a training run may ask for cuda where there is one, though the
    app's own machine has none (lab.train_config.TrainConfig.validate's cuda_elsewhere)."""
    return int(ray.cluster_resources().get("GPU", 0))
