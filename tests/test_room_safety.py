"""A room nobody can hijack, starve or break, on a real server: `streamlit run Home.py` as the README starts it, driven
by clients that speak the browser's protocol (tests/remote_client.py)."""

from __future__ import annotations

import json
import threading
import time

from remote_client import RemoteClient
from test_browser import serve_app
from test_reliability import damaged_runs
from test_restart import wait_for


def start(client: RemoteClient, epochs: int = 50) -> None:
    client.open()
    client.start_quick_run(epochs)


def test_a_student_cannot_take_over_the_lecturers_run_and_the_lecturer_can_stop_any(tmp_path):
    runs = tmp_path / "runs"
    env = {
        "DIFFUSION_LAB_RUNS": str(runs),
        "DIFFUSION_LAB_WARM": "0",
        "DIFFUSION_LAB_MAX_JOBS": "1",
        "DIFFUSION_LAB_LECTURER_KEY": "the-lecturers-key",
    }
    with serve_app(env) as (url, _):
        lecturer = RemoteClient(url, "b4_train")
        start(lecturer)
        (run,) = [d for d in runs.iterdir() if (d / "owner.json").exists()]
        owner = json.loads((run / "owner.json").read_text())["owner"]
        assert lecturer.shows(f"run `{run.name}`")
        # the projector shows the address bar and the page: neither holds the lecturer's credential
        assert "owner" not in lecturer.address and owner not in lecturer.address
        assert not [
            t for t in lecturer.received if owner in t and "document.cookie" not in t
        ]  # only the cookie's script

        student = RemoteClient(url, "b4_train", lecturer.address)  # types in what the projector shows
        student.open()
        assert not student.shows(f"run `{run.name}`") and student.shows(
            "Choose a recipe (and change what you like) and press Start"
        )
        guess = RemoteClient(url, "b4_train", "owner=lecturer")  # a made-up owner is another browser, not the lecturer
        guess.open()
        assert not guess.shows(f"run `{run.name}`")
        follower = RemoteClient(url, "b4_train", f"follow={run.name}")  # the read-only link
        follower.open()
        assert (
            follower.shows(f"following run {run.name} read-only")
            and "Stop" not in follower.ids
            and "Resume" not in follower.ids
        )

        student.start_quick_run(50)  # queued behind the lecturer's
        (theirs,) = [d for d in runs.iterdir() if (d / "owner.json").exists() and d != run]
        assert student.shows("queued, position 1")
        student.set_text("Lecturer key", "a-guess")
        student.press("Sign in")
        assert student.shows("That is not the lecturer's key") and "Clear the queue" not in student.ids

        lecturer.set_text("Lecturer key", "the-lecturers-key")
        lecturer.press("Sign in")
        assert "Clear the queue" in lecturer.ids and lecturer.shows("1 running, 1 queued")  # the lecturer's panel
        lecturer.press("Clear the queue")  # the student's queued run stopped by the lecturer
        wait_for(
            lambda: json.loads((theirs / "owner.json").read_text())["status"] == "stopped",
            what="the student's run to stop",
        )
        assert json.loads((run / "owner.json").read_text())["status"] == "running"
        for c in (lecturer, student, guess, follower):
            c.close()


def test_a_link_cannot_draw_markdown_on_the_page(tmp_path):
    with serve_app({"DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_WARM": "0"}) as (url, _):
        with RemoteClient(
            url, "b4_train", "follow=%5BSession%20expired%2C%20sign%20in%5D(https%3A%2F%2Fexample.org)"
        ) as page:
            assert page.shows("This link does not name a run") and not page.errors[1:]
            assert not [t for t in page.received if "example.org" in t or "Session expired" in t]


def test_a_flood_of_seed_changes_from_one_session_does_not_delay_another_sessions_request(tmp_path):
    """One browser stepping its seed every 0.1 s has one computation going, not a growing backlog: another browser's
    request shares the CPU with that one (about 2x its time alone) and nothing the flood left behind runs after it.
    Without the cancellation (serving.queue) the other request took 16-27x its time alone here, growing."""
    log = tmp_path / "computed.log"
    env = {
        "DIFFUSION_LAB_RUNS": str(tmp_path / "runs"),
        "DIFFUSION_LAB_WARM": "0",
        "DIFFUSION_LAB_COMPUTE_LOG": str(log),
    }
    with serve_app(env) as (url, _), RemoteClient(url, "a5_sample") as other, RemoteClient(url, "a5_sample") as flooder:
        alone = min(other.change("Seed", 1000 + i)["last_image"] for i in range(3))  # this request, with the room quiet
        stop = threading.Event()

        def flood():  # one browser stepping its seed, a click every 0.1 s, never waiting for a picture
            seed = 5000
            while not stop.is_set():
                flooder.change_nowait("Seed", seed)
                flooder.drain(0.1)
                seed += 1

        thread = threading.Thread(target=flood)
        thread.start()
        try:
            time.sleep(2.0)  # the flood is under way
            during = sorted(other.change("Seed", 2000 + i)["last_image"] for i in range(3))
        finally:
            stop.set()
            thread.join(30)
        stopped = time.time()
        time.sleep(1.0)  # a backlog would start within it (a computation of the flood's is ~0.1 s here)
        print(f"alone {alone:.2f} s, during the flood {', '.join(f'{d:.2f}' for d in during)} s")
        assert during[1] <= 3 * alone + 1.0, (alone, during)  # the median; a fair share of two busy browsers is 2x
        assert other.images and not other.errors
        started_after = [line for line in log.read_text().splitlines() if float(line.split()[0]) > stopped]
        assert len(started_after) <= 1, started_after  # the flood's last click at most: no backlog


def test_damaged_run_folders_of_every_kind_leave_every_page_working(tmp_path):
    runs = tmp_path / "runs"
    damaged_runs(runs)
    with serve_app({"DIFFUSION_LAB_RUNS": str(runs), "DIFFUSION_LAB_WARM": "0"}) as (url, _):
        for page in ("", "a1_forward", "b2_generators", "b4_train"):
            with RemoteClient(url, page) as client:
                assert not client.errors, (page, client.errors)
        with RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=latest-folder") as owner:  # its owner's browser
            assert owner.shows("20260101-000000-aaaaa4") and any("damaged" in t for t in owner.texts), owner.texts
        with RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=cut-history") as owner:
            assert owner.shows("20260101-000000-aaaaa2` · done") and not owner.errors
