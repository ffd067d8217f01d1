"""Nothing lost when the server stops, tested as it runs: `streamlit run Home.py`, runs started from the
Train live page by clients that speak the browser's protocol, then the server killed (kill -9, with or without its
training process) or stopped (SIGTERM), and started again on the same runs folder.

A run loses at most one checkpoint interval (DIFFUSION_LAB_CHECKPOINT_EVERY_S); after the restart every run is listed:
the interrupted one stopped and resumable, the one that waited in the queue queued again.
"""

import json
import os
import signal
import time
from pathlib import Path

import psutil
from remote_client import RemoteClient
from test_browser import serve_app

INTERVAL = 2.0  # seconds between periodic checkpoints in these tests


def wait_for(predicate, timeout=120.0, what="it"):
    end = time.time() + timeout
    while time.time() < end:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def run_of(runs: Path, owner: str) -> Path:
    (run,) = [
        d
        for d in runs.iterdir()
        if (d / "owner.json").exists() and json.loads((d / "owner.json").read_text())["owner"] == owner
    ]
    return run


def latest(run: Path) -> str:
    return (run / "latest").read_text().strip() if (run / "latest").exists() else ""


def checkpoint_step(run: Path) -> int:
    return json.loads((run / "checkpoints" / latest(run) / "state.json").read_text())["step"]


def logged(run: Path) -> list[dict]:
    """The steps the run logged (history.jsonl), none before it starts."""
    path = run / "history.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


def training_pid(run: Path) -> int | None:
    """The pid of the run's training process (the process whose stderr is the run's train.log: forked from the server's
    fork server, or a fresh `python -m serving.train_child`), None once it has ended."""
    log = str((run / "train.log").resolve())
    for proc in Path("/proc").iterdir():
        try:
            if os.readlink(proc / "fd" / "2") == log:
                return int(proc.name)
        except (OSError, ValueError):
            continue
    return None


def gone(process: psutil.Process) -> bool:
    try:
        return process.status() == psutil.STATUS_ZOMBIE  # ended, where nothing reaps an orphan
    except psutil.NoSuchProcess:
        return True


def start_run(url: str, owner: str, epochs: int = 50, run_timeout: float = RemoteClient.run_timeout) -> RemoteClient:
    client = RemoteClient(url, "b4_train", f"owner={owner}", run_timeout=run_timeout)
    client.open()
    client.start_quick_run(epochs)
    return client


def page_of(url: str, owner: str, run_timeout: float = RemoteClient.run_timeout) -> RemoteClient:
    client = RemoteClient(url, "b4_train", f"owner={owner}", run_timeout=run_timeout)
    client.open()
    return client


def test_a_killed_server_loses_at_most_a_checkpoint_interval_and_its_run_goes_on_by_itself_first(tmp_path):
    runs = tmp_path / "jobs"
    env = {
        "DIFFUSION_LAB_RUNS": str(runs),
        "DIFFUSION_LAB_MAX_JOBS": "1",
        "DIFFUSION_LAB_CHECKPOINT_EVERY_S": str(INTERVAL),
        "DIFFUSION_LAB_WARM": "0",
    }
    with serve_app(env) as (url, server):
        start_run(url, "alice").close()
        bob = start_run(url, "bob")
        assert bob.shows("queued, position 1")
        bob.close()
        alice_run, bob_run = run_of(runs, "alice"), run_of(runs, "bob")
        wait_for(lambda: latest(alice_run).startswith("step_"), what="a periodic checkpoint")
        child = training_pid(alice_run)
        (forker,) = [p for p in psutil.Process(server).children() if p.name() == "lab-forkserver"]
        assert psutil.Process(child).ppid() == forker.pid  # forked from the server's fork server: torch imported once
        os.kill(server, signal.SIGKILL)  # the server only: its training process sees its pipe close
        at_kill = logged(alice_run)[-1]["step"]
        wait_for(lambda: training_pid(alice_run) is None, 60, "the training process to end on its own")
        wait_for(lambda: gone(forker), 60, "the fork server to end with the server")
    assert latest(alice_run).startswith("stopped_") and checkpoint_step(alice_run) >= at_kill  # nothing lost
    assert "Traceback" not in (alice_run / "train.log").read_text()  # it ended cleanly, not of a broken pipe
    assert child is not None and not (bob_run / "latest").exists()  # bob's never started

    with serve_app(env) as (
        url,
        server,
    ):  # restarted on the same runs: the run it was training goes on by itself, first
        page_of(
            url, "carol"
        ).close()  # somebody opens a page (Streamlit starts the server's job manager with the first)
        wait_for(lambda: logged(alice_run)[-1]["step"] > at_kill, what="alice's run to go on by itself")
        alice = page_of(url, "alice")
        assert alice.shows(f"run `{alice_run.name}` · running") and not alice.errors
        bob = page_of(url, "bob")
        assert bob.shows(f"run `{bob_run.name}` · queued, position 1")  # still behind it
        wait_for(lambda: latest(alice_run).startswith("step_"), what="a periodic checkpoint of the resumed run")
        os.kill(training_pid(alice_run), signal.SIGKILL)  # this time everything is killed at once
        os.kill(server, signal.SIGKILL)
        at_kill = logged(alice_run)[-1]
    kept = next(row for row in logged(alice_run) if row["step"] == checkpoint_step(alice_run))
    assert at_kill["time"] - kept["time"] <= INTERVAL + 1.0  # at most one interval (and a step) lost

    with serve_app(env) as (url, server):  # nobody presses Resume: it goes on from its last checkpoint
        page_of(url, "carol").close()
        wait_for(lambda: logged(alice_run)[-1]["step"] > at_kill["step"], what="the run to go on again by itself")
        assert checkpoint_step(alice_run) >= kept["step"] and not (bob_run / "latest").exists()


def test_a_server_stopped_with_sigterm_checkpoints_its_runs_and_they_go_on_first_when_it_is_back(tmp_path):
    runs = tmp_path / "jobs"
    env = {
        "DIFFUSION_LAB_RUNS": str(runs),
        "DIFFUSION_LAB_MAX_JOBS": "1",
        "DIFFUSION_LAB_CHECKPOINT_EVERY_S": "600",
        "DIFFUSION_LAB_WARM": "0",
    }
    with serve_app(env) as (url, server):
        start_run(url, "alice").close()
        start_run(url, "bob").close()
        alice_run, bob_run = run_of(runs, "alice"), run_of(runs, "bob")
        wait_for(lambda: len(logged(alice_run)) >= 5, what="alice's run to train")
        os.kill(server, signal.SIGTERM)  # as systemd, docker stop or a lecturer's Ctrl-C would
        wait_for(lambda: training_pid(alice_run) is None, 60, "the run to checkpoint and end")
    assert latest(alice_run).startswith("stopped_")
    assert json.loads((alice_run / "owner.json").read_text())["status"] == "interrupted"
    assert json.loads((bob_run / "owner.json").read_text())["status"] == "queued"
    stopped_at = logged(alice_run)[-1]["step"]
    with serve_app(env) as (url, server):  # the interrupted run first, by itself; the queued one behind it
        page_of(url, "carol").close()
        wait_for(lambda: logged(alice_run)[-1]["step"] > stopped_at, what="alice's interrupted run to go on")
        assert page_of(url, "bob").shows(f"run `{bob_run.name}` · queued, position 1") and not logged(bob_run)
