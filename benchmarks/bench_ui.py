"""Benchmark of live training (issue 6): the UI's cost on throughput, and the delay from a logged step to the chart.

    python benchmarks/bench_ui.py [--epochs 3] [--repeats 2]

(1) images/s of the page's default run (flow matching, class-conditioned, D = 16, batch 64, lr 3e-3, clip 1.0,
    bundled MNIST): started from the command line (`python -m lab train`, its own process) and started from the
    training page of a real `streamlit run Home.py` in headless Chromium (the job's own process, started by the
    server), the page left open so that its fragment redraws the curve every 0.5 s, server and browser on this
    same machine. Both are read from the run's history.jsonl:
    the wall time between consecutive steps within an epoch (epoch-end sample grids left out). Target: the page
    costs at most 5 %.
(2) for every step: the time from its arrival in the server to the end of the first redraw that shows it (AppTest
    reruns of the whole page every 0.5 s: an upper bound of the fragment's redraw). Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lab.train import course_config  # noqa: E402

REDRAW = 0.5  # seconds: the training page's st.fragment(run_every=...)
PAGE_RUN = dict(D=16, batch_size=64, lr=3e-3, grad_clip=1.0)  # the training page's defaults


def images_per_s(run_dir: Path) -> float:
    """Throughput from history.jsonl: images over the wall time between consecutive steps of the same epoch."""
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    batch = json.loads((run_dir / "config.json").read_text())["batch_size"]
    gaps = [b["time"] - a["time"] for a, b in zip(rows[5:], rows[6:]) if math.ceil(a["epoch"]) == math.ceil(b["epoch"])]
    return batch * len(gaps) / sum(gaps)


def from_cli(tmp: Path, epochs: int) -> float:
    out = tmp / f"cli-{time.time_ns()}"
    cmd = [sys.executable, "-m", "lab", "train", "--experiment", "flow", "--condition", "class", "--D", "16", "--batch", "64",
           "--lr", "3e-3", "--grad-clip", "1.0", "--epochs", str(epochs), "--out", str(out)]  # fmt: skip
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return images_per_s(out)


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time of these processes so far (Linux /proc; their children not included)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, IndexError, ValueError):
            pass
    return total


def browser_pids() -> list[int]:
    return [int(d.name) for d in Path("/proc").iterdir() if d.name.isdigit() and _comm(d) in ("chromium", "chrome", "headless_shell")]


def _comm(d: Path) -> str:
    try:
        return (d / "comm").read_text().strip()
    except OSError:
        return ""


def from_page(tmp: Path, epochs: int) -> tuple[float, float, float]:
    """(images/s, cores used by the server's redraws, cores used by the browser) while the run trains."""
    from playwright.sync_api import sync_playwright
    from test_browser import FLAGS, ensure_chromium, serve_app

    runs = tmp / f"jobs-{time.time_ns()}"
    with serve_app({"DIFFUSION_LAB_RUNS": str(runs)}) as (url, server_pid), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/b4_train")
        page.get_by_text("Choose settings and press Start").first.wait_for(timeout=120_000)
        field = page.get_by_label("Epochs").first
        field.fill(str(epochs))
        field.press("Tab")
        page.get_by_role("button", name="Start").first.click()
        t0, server0, browser0 = time.time(), cpu_seconds([server_pid]), cpu_seconds(browser_pids())
        page.get_by_text("· done").first.wait_for(timeout=600_000)  # the page stays open, redrawing, until the end
        wall = time.time() - t0
        server_cores, browser_cores = (cpu_seconds([server_pid]) - server0) / wall, (cpu_seconds(browser_pids()) - browser0) / wall
        browser.close()
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    return images_per_s(run_dir), server_cores, browser_cores


def latency(steps: int) -> list[float]:
    from streamlit.testing.v1 import AppTest

    from conftest import PAGE_SCRIPT
    from ui.training import manager

    config = course_config("flow", "class", **PAGE_RUN, epochs=1, max_steps=steps, sample_every=0)
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["DIFFUSION_LAB_RUNS"] = str(Path(tmp) / "jobs")
        manager.clear()
        at = AppTest.from_string(PAGE_SCRIPT.format(path=str(ROOT / "app_pages" / "part_b" / "b4_train.py"), page="b4_train.py"),
                                 default_timeout=300).run()  # fmt: skip
        job = manager().submit(at.query_params["owner"], config)
        at.session_state["train_job"] = job.id
        redraws = []  # (start, end) wall times of each redraw
        while not job.finished:
            start = time.time()
            at.run()
            redraws.append((start, time.time()))
            time.sleep(max(0.0, REDRAW - (time.time() - start)))
    # a step logged at L first shows in the first redraw that starts after L, on screen when that redraw ends
    return [next(end for start, end in redraws if start >= s["logged"]) - s["logged"] for s in job.steps if s["logged"] <= redraws[-1][0]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of 71 steps")
    ap.add_argument("--repeats", type=int, default=2, help="runs of each, alternating; the medians are compared")
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    cli, page, cores = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            cli.append(from_cli(Path(tmp), args.epochs))
            rate, server_cores, browser_cores = from_page(Path(tmp), args.epochs)
            page.append(rate)
            cores.append((server_cores, browser_cores))
            print(f"  CLI {cli[-1]:.1f} img/s, page {rate:.1f} img/s; meanwhile the server's redraws used {server_cores:.2f} "
                  f"cores and the browser {browser_cores:.2f}", flush=True)  # fmt: skip
    c, p = statistics.median(cli), statistics.median(page)
    print(f"(1) {args.epochs} epochs, D=16, batch 64: CLI {c:.1f} img/s; page (browser open) {p:.1f} img/s "
          f"({(1 - p / c) * 100:+.1f} % cost; target <= 5 %); server redraws {statistics.median(s for s, _ in cores):.2f} "
          f"cores, browser {statistics.median(b for _, b in cores):.2f} cores of {os.cpu_count()}")  # fmt: skip
    lat = latency(60)
    print(f"(2) logged step -> chart, over {len(lat)} steps: median {statistics.median(lat):.2f} s, max {max(lat):.2f} s (target <= 1 s)")


if __name__ == "__main__":
    main()
