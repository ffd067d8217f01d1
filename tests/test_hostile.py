"""A course's server that nobody breaks with one message, tested as a hostile student would: `streamlit run Home.py` as
the README starts it, clients speaking the browser's protocol (tests/remote_client.py) and sending what a script can
send: client messages that act on the whole server, headers, cookies and links of other browsers, wrong keys, prompts
written as Markdown, drawings that are not the canvas's."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from conftest import ROOT
from remote_client import RemoteClient
from test_browser import serve_app


def computed(log) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def test_a_clear_cache_message_costs_the_room_nothing_and_makes_no_second_job_manager(tmp_path):
    """Streamlit empties every cache of the process when a client sends clear_cache: the room's results (and with
    them a second room and a second job manager, training a run twice) were one message away."""
    log, runs = tmp_path / "computed.log", tmp_path / "runs"
    env = {
        "DIFFUSION_LAB_RUNS": str(runs),
        "DIFFUSION_LAB_COMPUTE_LOG": str(log),
        "DIFFUSION_LAB_MAX_JOBS": "1",
        "DIFFUSION_LAB_WARM": "0",
    }
    with serve_app(env) as (url, _):
        with RemoteClient(url, "a7_sdedit") as first:
            assert first.images and not first.errors
        done = len(computed(log))
        with RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=alice-browser") as alice:
            alice.start_quick_run(50)
            alice.send("clear_cache")
            alice.send("load_git_info")
            with RemoteClient(
                url, "a7_sdedit"
            ) as again:  # the same picture: from the room's results, not computed again
                assert again.images == first.images and not again.errors
            assert len(computed(log)) == done
            with RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=bob-browser") as bob:
                bob.start_quick_run(50)
                assert bob.shows("queued, position 1"), bob.texts  # one manager: MAX_JOBS 1 still holds
            statuses = [
                json.loads((d / "owner.json").read_text())["status"]
                for d in runs.iterdir()
                if (d / "owner.json").exists()
            ]
            assert sorted(statuses) == ["queued", "running"]
            alice.open()  # her page after the message: her run, listed by the one manager
            assert alice.shows("running") and not alice.errors


def test_runs_are_capped_per_network_address_however_many_browsers_it_opens(tmp_path):
    """Fresh sessions with made-up owner ids from one address (here the proxy's X-Forwarded-For: uvicorn reads it from
    this machine) get the cap of one address; another address is not held up by it."""
    env = {
        "DIFFUSION_LAB_RUNS": str(tmp_path / "runs"),
        "DIFFUSION_LAB_WARM": "0",
        "DIFFUSION_LAB_MAX_JOBS": "1",
        "DIFFUSION_LAB_RUNS_PER_ADDRESS": "2",
        "DIFFUSION_LAB_QUEUE_MAX": "3",
    }
    with serve_app(env) as (url, _):
        said = []
        for i in range(3):
            with RemoteClient(
                url, "b4_train", cookies=f"diffusion_lab_owner=script-{i}", headers={"X-Forwarded-For": "10.9.8.7"}
            ) as c:
                c.start_quick_run(50)
                said.append(c.texts[:])
        assert not any("this network address" in t for t in said[0] + said[1])
        assert any("runs from this network address" in t for t in said[2]), said[2]
        with RemoteClient(
            url, "b4_train", cookies="diffusion_lab_owner=honest", headers={"X-Forwarded-For": "10.9.8.8"}
        ) as honest:
            honest.start_quick_run(50)
            assert honest.shows("queued, position") and not any("network address" in t for t in honest.texts)


def test_a_link_to_another_browsers_runs_never_replaces_this_browsers_own(tmp_path):
    env = {"DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_WARM": "0"}
    with serve_app(env) as (url, _):
        with RemoteClient(url, "b4_train", cookies="diffusion_lab_owner=mine-mine-mine") as me:
            me.start_quick_run(50)
            (run,) = [d.name for d in (tmp_path / "runs").iterdir() if d.is_dir() and (d / "owner.json").exists()]
        with RemoteClient(
            url, "b4_train", "owner=someone-elses-id", cookies="diffusion_lab_owner=mine-mine-mine"
        ) as me:
            assert me.shows(f"run `{run}`")  # still this browser's runs
            assert me.shows("You opened a link to another browser's runs") and "Switch to the link's runs" in me.ids
            me.press("Keep my runs")
            assert me.shows(f"run `{run}`") and not me.shows("You opened a link")


def test_wrong_lecturer_keys_are_slowed_down_and_logged(tmp_path):
    log = tmp_path / "server.log"
    env = {
        "DIFFUSION_LAB_RUNS": str(tmp_path / "runs"),
        "DIFFUSION_LAB_WARM": "0",
        "DIFFUSION_LAB_LECTURER_KEY": "the-lecturers-key",
    }
    with serve_app(env, log=log) as (url, _):
        with RemoteClient(url, "b4_train", headers={"X-Forwarded-For": "10.9.8.7"}) as student:
            for guess in ("a-guess", "the-lecturers-key"):  # the right key, a moment after a wrong one: not checked yet
                student.set_text("Lecturer key", guess)
                student.press("Sign in")
            assert student.shows("Too many wrong keys") and "Clear the queue" not in student.ids
        with RemoteClient(
            url, "b4_train", headers={"X-Forwarded-For": "10.9.8.7"}
        ) as again:  # a fresh session, same address
            again.set_text("Lecturer key", "the-lecturers-key")
            again.press("Sign in")
            assert again.shows("Too many wrong keys")
    assert "a wrong lecturer key from" in log.read_text() and "10.9.8.7" in log.read_text()


def test_a_short_lecturer_key_turns_the_sign_in_off_with_what_to_do():
    from serving.access import Attempts, KeyTooShort

    with pytest.raises(KeyTooShort, match="too short"):
        Attempts().check("short", "short", "session:a")
    clock = [0.0]
    attempts = Attempts(now=lambda: clock[0])
    assert not attempts.check("wrong-wrong-wrong", "right-right-right", "session:a", "address:x")
    with pytest.raises(ValueError, match="try again in 1 s"):
        attempts.check("right-right-right", "right-right-right", "session:b", "address:x")  # the address waits
    clock[0] += 1.1
    assert attempts.check("right-right-right", "right-right-right", "session:b", "address:x")
    for _ in range(8):
        clock[0] += 61
        attempts.check("wrong", "right-right-right", "address:y")
    assert attempts.wait_s("address:y") == 60  # at most a minute


def test_a_prompt_is_drawn_as_it_is_typed_not_as_markdown(tmp_path):
    with serve_app({"DIFFUSION_LAB_RUNS": str(tmp_path / "runs"), "DIFFUSION_LAB_WARM": "0"}) as (url, _):
        with RemoteClient(url, "a0_sampling", "backend=Emoji%20(colour)") as page:
            page.set_text("Prompt 1", "[Session expired, sign in](https://example.org)")
            page.rerun()
            shown = [t for t in page.received if "example" in t]
            assert shown and not [t for t in shown if "sign in](https://" in t], shown  # no link drawn: escaped
            assert all("sign in\\](" in t or "sign in\\\\](" in t for t in shown), shown
            assert not [e for e in page.errors if "Something went wrong" in e]


def png_header(width: int, height: int) -> bytes:
    """A PNG whose header says width x height (RGBA) and whose pixels are a few bytes: what a script sends as a
    "drawing" to make the server decode a huge image."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")
    )


def test_a_drawing_that_is_not_the_canvass_is_refused_before_it_is_decoded():
    from PIL import Image

    from lab.images import ImageRejected
    from ui.inputs import strokes_from_png

    with pytest.raises(ImageRejected, match="12000x12000 pixels, not this 280x280 canvas"):
        strokes_from_png(png_header(12000, 12000), 280, 28, 28)
    with pytest.raises(ImageRejected, match="more than a drawing"):
        strokes_from_png(b"\x89PNG" + b"\x00" * (5 << 20), 280, 28, 28)
    with pytest.raises(ImageRejected, match="not a picture"):
        strokes_from_png(b"not a png", 280, 28, 28)
    canvas = Image.new("RGBA", (560, 560), (0, 0, 0, 0))  # a real one, at a screen's pixel ratio of 2
    canvas.paste((0, 0, 0, 255), (0, 0, 280, 560))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    strokes = strokes_from_png(buffer.getvalue(), 280, 28, 28)
    assert strokes.shape == (28, 28) and np.allclose(strokes[:, :14], 1) and np.allclose(strokes[:, 14:], 0)


def test_a_process_that_ran_a_page_with_the_warm_up_exits_cleanly():
    """The room's threads stop before the interpreter does: a process that opened a page while the warm-up computed
    printed "terminate called without an active exception" at exit and ended with SIGABRT (134)."""
    script = (
        "import sys; sys.path[:0] = ['tests', '.']\n"
        "import conftest\n"
        "at = conftest.open_page('a5_sample.py')\n"
        "print('page ran', flush=True)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
        env={**__import__("os").environ, "DIFFUSION_LAB_WARM": "1"},
    )
    assert "page ran" in done.stdout, done.stderr[-2000:]
    assert done.returncode == 0 and "terminate called" not in done.stderr, (done.returncode, done.stderr[-2000:])


@pytest.mark.parametrize("verified, lecturer", [(True, True), (False, False), ("true", True)])
def test_a_login_is_the_lecturer_only_with_an_email_its_provider_verified(verified, lecturer, monkeypatch):
    """st.login through the university's OpenID provider (Streamlit's own test user stands in for it): the lecturer's
    panel for a verified address of DIFFUSION_LAB_LECTURERS; an unverified one could be anyone's."""
    from conftest import PAGE_SCRIPT, page_url
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("DIFFUSION_LAB_LECTURERS", "prof@berkeley.edu")
    at = AppTest.from_string(
        PAGE_SCRIPT.format(
            path=str(ROOT / "app_pages" / "part_b" / "b4_train.py"), page="b4_train.py", url=page_url("b4_train.py")
        ),
        default_timeout=120,
    )
    at.user = {"is_logged_in": True, "email": "prof@berkeley.edu", "email_verified": verified}
    at.run()
    assert not at.exception
    panel = [e.label for e in at.expander]
    assert ("Lecturer: the room's runs" in panel) is lecturer, panel


def test_the_requirements_install_authlib_for_st_login_and_a_secrets_example_shows_the_auth_section():
    import tomllib

    reqs = (ROOT / "requirements.txt").read_text()
    assert "streamlit[auth]==" in reqs
    example = tomllib.loads((ROOT / ".streamlit" / "secrets.toml.example").read_text())
    assert {"redirect_uri", "cookie_secret", "client_id", "client_secret", "server_metadata_url"} <= set(
        example["auth"]
    )
    assert ".streamlit/secrets.toml" in (ROOT / ".gitignore").read_text().splitlines()


def test_forgetting_the_job_manager_gives_its_runs_folder_to_the_next_one(tmp_path, monkeypatch):
    """ui.state.manager.clear() (what a test does to start a fresh server's manager) forgot the manager but kept its
    runs folder held in this process: the next page to list runs was refused with RunsFolderBusy (CI, a page test after
    a Part B test cleared it). Clearing closes it: its runs checkpoint and the folder is the next manager's."""
    from serving.jobs import JobManager, RunsFolderBusy
    from ui.state import manager

    monkeypatch.setenv("DIFFUSION_LAB_RUNS", str(tmp_path))
    manager.clear()
    first = manager()
    with pytest.raises(RunsFolderBusy):  # the folder is held while the manager lives
        JobManager(tmp_path, 1, 1)
    manager.clear()
    second = manager()
    assert second is not first and second.jobs("someone") == []
    manager.clear()
