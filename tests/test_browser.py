"""Real-browser tests: the app in headless Chromium, a stroke drawn on the canvas, the edited drawing shown.

Also: a Part A backend trained on the Train live page joins the sidebar's Backend list on another page.

Uses the system's Chromium (Debian package `chromium`) through Playwright, never a downloaded browser. Where
Chromium is missing the fixture installs it with apt-get when it can (CI runs as root), else the test is skipped
with the command to run.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest
from conftest import ROOT

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def ensure_chromium() -> str:
    if os.path.exists(CHROMIUM):
        return CHROMIUM
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-qq"], check=False, capture_output=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "chromium"], check=False, capture_output=True)
    if not os.path.exists(CHROMIUM):
        pytest.skip("no Chromium: install it with `apt-get install chromium` (Debian) to run the browser test")
    return CHROMIUM


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(port: int, timeout: float = 60.0) -> str:
    """The app's URL once its server answers its health check."""
    url = f"http://127.0.0.1:{port}"
    end = time.time() + timeout
    while time.time() < end:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=1).read() == b"ok":
                return url
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"streamlit did not answer on port {port} within {timeout:.0f} s")


SERVER_FLAGS = ("--server.headless", "--server.port", "--server.address")  # the only flags a test or benchmark adds


def app_command(port: int) -> list[str]:
    """The README's `streamlit run Home.py`, plus only what a server without a screen on a chosen port needs: every
    other setting is the one `.streamlit/config.toml` gives a lecturer's server (tests/test_repo.py holds this)."""
    return [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        "Home.py",
        "--server.headless",
        "true",
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
    ]


def app_env(env: dict | None = None) -> dict:
    """This process's environment without any STREAMLIT_* variable (a setting of the server is config.toml's, as for a
    lecturer), with env added: only DIFFUSION_LAB_* settings (a runs folder, the warm-up...)."""
    env = env or {}
    others = sorted(k for k in env if not k.startswith("DIFFUSION_LAB_"))
    if others:
        raise ValueError(
            f"a served app takes only DIFFUSION_LAB_* settings, not {others}: the server a test measures is "
            "the server the README starts"
        )
    return {k: v for k, v in os.environ.items() if not k.startswith("STREAMLIT_")} | env


def launch_app(port: int, env: dict | None = None, root=ROOT, out=subprocess.DEVNULL) -> subprocess.Popen:
    """Start the app as the README starts it (app_command, app_env) in root; its output to out."""
    return subprocess.Popen(app_command(port), cwd=root, stdout=out, stderr=out, env=app_env(env))


@contextlib.contextmanager
def serve_app(env: dict | None = None, root=ROOT, log=None):
    """`streamlit run Home.py` in root (this checkout, or another one to compare with) on a free port, env (DIFFUSION_LAB_*
    settings) added to this process's, its output to the file log (default: nowhere); yields (its URL, its pid) once it
    answers. Its runs folder is its own unless env names one (the test process's may be held by the test process)."""
    port = free_port()
    with (
        tempfile.TemporaryDirectory(prefix="diffusion-lab-server-runs-", ignore_cleanup_errors=True) as runs,
        open(log, "ab") if log else contextlib.nullcontext(subprocess.DEVNULL) as out,
    ):
        server = launch_app(port, {"DIFFUSION_LAB_RUNS": runs} | (env or {}), root, out)
        try:
            yield wait_healthy(port), server.pid
        finally:
            server.terminate()
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory):
    with serve_app({"DIFFUSION_LAB_RUNS": str(tmp_path_factory.mktemp("runs"))}) as (url, _):
        yield url


def test_drawing_a_stroke_on_the_canvas_shows_the_edited_drawing(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{app_url}/a71_inputs")
        page.get_by_text("Draw on the canvas").first.wait_for(timeout=120_000)  # Streamlit renders after Python runs
        assert page.get_by_text("Lab settings").count() == 1  # the router's sidebar, not a bare page
        assert page.get_by_text("Page not found").count() == 0  # the first session of a fresh server, by a deep link
        canvas = page.locator("canvas").last
        canvas.wait_for(timeout=60_000)
        edited = page.get_by_text("Edited your drawing.").first
        for attempt in range(2):  # the canvas may still be initialising when it first appears
            page.wait_for_timeout(3000)
            box = canvas.bounding_box()
            x, y = box["x"] + 0.35 * box["width"], box["y"] + 0.2 * box["height"]
            page.mouse.move(x, y)
            page.mouse.down()
            for k in range(1, 21):  # a downward stroke, like a "1"
                page.mouse.move(x + k * 2, y + k * 9, steps=2)
                page.wait_for_timeout(15)
            page.mouse.up()
            try:
                edited.wait_for(timeout=120_000)
                break
            except Exception:
                if attempt:
                    raise
        page.get_by_text("i_start = 20").first.wait_for(
            timeout=120_000
        )  # the edited row follows the message: wait for it
        assert page.get_by_text("i_start = 20").count() >= 1
        browser.close()


def choose(page, label: str, option: str) -> None:
    """Pick an option of the Streamlit selectbox whose label is `label`."""
    page.get_by_role("combobox", name=label).first.click()
    page.get_by_role("option", name=option).first.click()


def test_a_part_a_backend_trained_live_drives_a_part_a_page(app_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{app_url}/b4_train")
        page.get_by_text("Choose a recipe (and change what you like) and press Start").first.wait_for(timeout=120_000)
        choose(page, "Recipe", "lecture quick run")  # the form opens on the course's recipe: hours on a CPU
        page.get_by_text("Small enough for a lecture").first.wait_for(timeout=60_000)
        choose(page, "Experiment", "Part A backend")
        epochs = page.get_by_label("Epochs").first
        epochs.fill("1")
        epochs.press("Tab")  # Enter would submit the form
        page.get_by_role("button", name="Start").first.click()
        page.get_by_text("· done").first.wait_for(timeout=300_000)  # the status line of the run
        assert (
            "owner=" not in page.url and page.get_by_text("Run", exact=True).count() == 1
        )  # no credential in the address bar
        page.reload()  # a refresh (a new session) finds the run again: the browser's id is in its cookie
        page.get_by_text("· done").first.wait_for(timeout=120_000)
        assert "owner=" not in page.url
        page.get_by_role("link", name="1.5 · Sampling").first.click()  # the sidebar's navigation, as a user would
        page.get_by_text("Sampling from pure noise").first.wait_for(timeout=60_000)
        page.get_by_text("sample 1").first.wait_for(timeout=120_000)
        images = lambda: page.locator("[data-testid=stMain] img").evaluate_all("els => els.map(e => e.src)")  # noqa: E731
        bundled = images()
        backend = page.get_by_role("combobox", name="Backend").first
        backend.click()
        option = page.get_by_role("option", name="Your run ")
        option.first.wait_for(timeout=10_000)
        assert option.count() == 1
        option.first.click()
        for _ in range(120):  # the page reruns and samples with the run's model
            page.wait_for_timeout(500)
            if images() and images() != bundled:
                break
        assert images() != bundled and backend.input_value().startswith("Your run ")
        assert (
            page.get_by_text("could not be loaded").count() == 0
            and page.get_by_text("Something went wrong").count() == 0
        )
        browser.close()


# Each Part A page's design-card sliders (timestep, i_start, CFG scale, blur kernel and sigma) by their labels, and the
# key that moves each (Home: its lowest value, End: its highest) to a value that must change the picture
DESIGN_CARD = {
    "a0_sampling": [("CFG scale γ", "Home")],
    "a1_forward": [("Timestep t", "Home")],
    "a2_blur": [("Blur kernel size k", "End"), ("Blur sigma σ", "End")],
    "a3_one_step": [("Timestep t", "Home")],
    "a4_iterative": [("i_start", "Home"), ("Blur kernel size k", "End"), ("Blur sigma σ", "End")],
    "a6_cfg": [("CFG scale γ", "Home")],
    "a7_sdedit": [("CFG scale γ", "Home"), ("i_start", "Home")],
    "a72_inpaint": [("CFG scale γ", "Home")],
    "a73_text": [("CFG scale γ", "Home"), ("i_start", "Home")],
    "a8_anagrams": [("CFG scale γ", "Home")],
    "a9_hybrids": [("Blur sigma σ", "End"), ("Blur kernel size k", "Home"), ("CFG scale γ", "Home")],
}


def settled_images(page, timeout_s: float = 120) -> list[str]:
    """The main area's image sources once they stop changing and no run is in progress."""
    images = lambda: page.locator("[data-testid=stMain] img").evaluate_all("els => els.map(e => e.src)")  # noqa: E731
    end, last = time.time() + timeout_s, None
    while time.time() < end:
        now = images()
        if now and now == last and page.locator("[data-testid=stProgress]").count() == 0:
            return now
        last = now
        page.wait_for_timeout(500)
    raise AssertionError(f"the page's pictures did not settle in {timeout_s:.0f} s")


def test_every_design_card_slider_on_every_part_a_page_changes_the_picture(app_url):
    """In a browser, as a student would: each slider moved with the keyboard changes what the page shows, without an
    error."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        for path, labels in DESIGN_CARD.items():
            page.goto(f"{app_url}/{path}")
            page.get_by_text("Lab settings").first.wait_for(timeout=120_000)
            for label, key in labels:
                before = settled_images(page)
                slider = page.get_by_role("slider", name=label)
                assert slider.count() == 1, f"{path}: one slider {label!r}"
                slider.first.focus()
                slider.first.press(key)
                try:
                    page.wait_for_function(
                        "before => { const now = [...document.querySelectorAll('[data-testid=stMain] img')]"
                        ".map(e => e.src); return now.length && now.join() !== before.join(); }",
                        arg=before,
                        timeout=120_000,
                        polling=200,
                    )
                except PlaywrightTimeout:
                    raise AssertionError(f"{path}: moving {label!r} changed no picture in 120 s") from None
                assert (
                    page.get_by_text("Something went wrong").count() == 0
                    and page.locator("[data-testid=stException]").count() == 0
                )
        browser.close()


def test_an_image_of_your_own_uploaded_on_1_1_is_the_one_1_3_works_on(app_url, tmp_path):
    """The course's "one image of your own on 1.1 to 1.5", in a browser: an upload on 1.1 is shown there, and 1.3, reached
    through the sidebar, opens on it."""
    from PIL import Image
    from playwright.sync_api import sync_playwright

    Image.new("RGB", (120, 90), (250, 250, 250)).save(
        tmp_path / "mine.png"
    )  # a light square: a digit model's odd input
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{app_url}/f1_1_noisy")
        page.get_by_text("Noisy training inputs").first.wait_for(timeout=120_000)
        page.get_by_text("upload", exact=True).first.click()
        page.locator("input[type=file]").first.set_input_files(str(tmp_path / "mine.png"))
        page.get_by_text("fitted to 28x28").first.wait_for(timeout=60_000)
        page.get_by_role("link", name="1.3 · One-step denoising").first.click()
        page.get_by_text("Your upload from before").first.wait_for(timeout=120_000)
        page.get_by_text("one-step estimate").first.wait_for(timeout=120_000)
        assert page.get_by_text("Something went wrong").count() == 0
        browser.close()
