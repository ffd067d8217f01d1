"""Hosting for a course, tested here as far as these machines allow: Debian's nginx with deploy/nginx.conf (its upstream
and listen lines pointed at local ports, TLS left out) in front of two app replicas started as the README starts
them, on one runs folder; protocol clients go through the proxy. The container image itself is not built here (no
Docker daemon on these machines).

Where nginx is missing the test installs it with apt-get when it can (CI runs as root), else it is skipped."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess

import psutil
import pytest
from conftest import ROOT
from remote_client import RemoteClient
from test_browser import free_port, serve_app, wait_healthy
from test_restart import wait_for

NGINX = "/usr/sbin/nginx"


def ensure_nginx() -> str:
    if not os.path.exists(NGINX) and os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=False, capture_output=True)
        if not os.path.exists(NGINX):
            subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
            subprocess.run(["apt-get", "install", "-y", "-qq", "nginx-light"], check=False, capture_output=True)
    if not os.path.exists(NGINX):
        pytest.skip("no nginx: install it with `apt-get install nginx-light` (Debian) to run the proxy test")
    return NGINX


def local_config(ports: list[int], listen: int) -> str:
    """deploy/nginx.conf for this machine: its upstreams on local ports, plain HTTP on listen."""
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    for name, port in zip(("app1", "app2"), ports):
        conf = conf.replace(f"server {name}:8501", f"server 127.0.0.1:{port}")
    conf = re.sub(r"    server \{\n        listen 80;\n.*?\n    \}\n\n", "", conf, flags=re.S)  # the redirect to https
    conf = conf.replace("listen 443 ssl;", f"listen 127.0.0.1:{listen};").replace("Secure; ", "")
    conf = re.sub(r"\n\s*ssl_certificate\S* [^\n]+", "", conf)
    return conf.replace("events {}", "events {}\npid nginx.pid;\nerror_log stderr;", 1)


@contextlib.contextmanager
def proxy(ports: list[int], folder):
    port = free_port()
    (folder / "nginx.conf").write_text(local_config(ports, port))
    for sub in ("logs", "client_body_temp", "proxy_temp"):
        (folder / sub).mkdir(exist_ok=True)
    process = subprocess.Popen(
        [ensure_nginx(), "-p", str(folder), "-c", str(folder / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=open(folder / "nginx.err", "wb"),
    )
    try:
        yield wait_healthy(port, timeout=30)
    finally:
        process.terminate()
        process.wait(timeout=30)


def exited(pid: int) -> bool:
    """Whether the process pid has ended (a child of this test process not yet reaped is a zombie: ended)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def start_run(url: str, owner: str, route: str) -> RemoteClient:
    client = RemoteClient(url, "b4_train", cookies=f"diffusion_lab_owner={owner}; lab_route={route}")
    client.open()
    client.start_quick_run(50)
    return client


def test_two_replicas_behind_nginx_serve_the_room_and_a_stopped_replicas_runs_go_on_on_the_other(tmp_path):
    runs = tmp_path / "runs"
    env = {"DIFFUSION_LAB_RUNS": str(runs), "DIFFUSION_LAB_WARM": "0", "DIFFUSION_LAB_CHECKPOINT_EVERY_S": "1"}
    with serve_app(env) as (one, pid_one), serve_app(env) as (two, pid_two):
        ports = [int(u.rsplit(":", 1)[1]) for u in (one, two)]
        (tmp_path / "nginx").mkdir()
        with proxy(ports, tmp_path / "nginx") as url:
            for route in ("alpha", "beta", "gamma", "delta"):  # browsers spread over the replicas by their cookie
                with RemoteClient(url, "a7_sdedit", cookies=f"lab_route={route}") as page:
                    assert page.images and not page.errors
            alice = start_run(url, "alice-alice", "alpha")
            (run,) = [d for d in runs.iterdir() if d.is_dir() and (d / "owner.json").exists()]
            assert alice.shows(f"run `{run.name}`")
            wait_for(lambda: (run / "latest").exists(), timeout=120, what="the run's first checkpoint")
            holder = int((runs / ".server.lock").read_text())  # the replica that trains: it holds the runs folder
            assert holder in (pid_one, pid_two)
            alice.close()
            os.kill(holder, signal.SIGTERM)  # that replica goes away: its run checkpoints and is marked interrupted
            wait_for(
                lambda: json.loads((run / "owner.json").read_text())["status"] == "interrupted",
                timeout=60,
                what="the run to be interrupted",
            )
            wait_for(lambda: exited(holder), timeout=60, what="the stopped replica to exit")  # its lock goes with it
            again = RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=alice-alice; lab_route=alpha")
            again.open()  # nginx sends her to the other replica, whose job manager takes the folder over
            assert again.shows(f"run `{run.name}`") and not again.errors, again.texts
            wait_for(
                lambda: json.loads((run / "owner.json").read_text())["status"] == "running",
                timeout=120,
                what="the run to go on, on the other replica",
            )
            assert int((runs / ".server.lock").read_text()) == ({pid_one, pid_two} - {holder}).pop()
            again.close()
