"""Benchmark of live training: the UI's cost on throughput, and the delay from a logged step to the chart.

    python benchmarks/bench_ui.py [--epochs 3] [--repeats 3] [--room 10]

(1) images/s of the page's default run (flow matching, class-conditioned, D = 16, batch 64, lr 3e-3, clip 1.0,
    bundled MNIST), read from the run's history.jsonl (the wall time between consecutive steps of an epoch; the
    epoch-end sample grids left out), started four ways on this machine:
    - CLI: `python -m lab train` in its own process, nobody watching;
    - page, remote browser: the training page of a real `streamlit run Home.py`, the run started from its form and
      the page left open by tests/remote_client.py, which speaks the browser's protocol (fragment reruns every
      0.5 s included) but paints nothing: a student's browser on another machine. This is what the server pays.
    - page, browser here: the same in headless Chromium on this machine, which also pays for painting the chart.
    - page, a room: the remote browser and --room more on the same run's link (the lecturer's run on the
      projector, the room following it on their laptops), each rerunning the fragment every 0.5 s.
    Target: the page costs at most 5 %. CPU of the server process and of the browser are reported as cores.
(2) the time from a step's logging in the training process (its time in history.jsonl) to the chart that shows
    it: its arrival at the remote client, and its appearance in the chart's data in Chromium's page. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def images_per_s(run_dir: Path) -> float:
    """Throughput from history.jsonl: images over the wall time between consecutive steps of the same epoch."""
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    batch = json.loads((run_dir / "config.json").read_text())["batch_size"]
    gaps = [b["time"] - a["time"] for a, b in zip(rows[5:], rows[6:]) if math.ceil(a["epoch"]) == math.ceil(b["epoch"])]
    return batch * len(gaps) / sum(gaps)


def from_cli(tmp: Path, epochs: int) -> float:
    out = tmp / f"cli-{time.time_ns()}"
    cmd = [
        sys.executable,
        "-m",
        "lab",
        "train",
        "--experiment",
        "flow",
        "--condition",
        "class",
        "--D",
        "16",
        "--batch",
        "64",
        "--lr",
        "3e-3",
        "--grad-clip",
        "1.0",
        "--epochs",
        str(epochs),
        "--out",
        str(out),
    ]
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
    return [
        int(d.name)
        for d in Path("/proc").iterdir()
        if d.name.isdigit() and _comm(d) in ("chromium", "chrome", "headless_shell")
    ]


def _comm(d: Path) -> str:
    try:
        return (d / "comm").read_text().strip()
    except OSError:
        return ""


def page_remote(tmp: Path, epochs: int, watchers: int = 0) -> dict:
    """The run started and watched by a client that draws nothing (a browser on another machine: tests/remote_client.py),
    and by `watchers` more such clients on the same run's link (a lecture: the room follows the lecturer's run)."""
    from remote_client import RemoteClient
    from test_browser import serve_app

    runs, done = tmp / f"jobs-{time.time_ns()}", lambda c: c.shows("· done")
    with serve_app({"DIFFUSION_LAB_RUNS": str(runs)}) as (url, server_pid), contextlib.ExitStack() as clients:
        client = clients.enter_context(RemoteClient(url, "b4_train", "owner=bench"))
        client.start_quick_run(epochs)
        room = [clients.enter_context(RemoteClient(url, "b4_train", "owner=bench")) for _ in range(watchers)]
        threads = [threading.Thread(target=other.watch, args=(done, 600), daemon=True) for other in room]
        for thread in threads:
            thread.start()
        t0, server0 = time.time(), cpu_seconds([server_pid])
        client.watch(done, 600)
        wall = time.time() - t0
        server_cores = (cpu_seconds([server_pid]) - server0) / wall
        for thread in threads:
            thread.join(30)
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    latency = latencies(run_dir, client.chart_ends())
    return dict(
        rate=images_per_s(run_dir), server=server_cores, browser=0.0, latency=latency, redraws=client.reruns / wall
    )


# In the page: note the time whenever the curve's last step changes (every 50 ms; the chart is remounted on redraws).
WATCH_CHART = """() => { window.__shown = []; let last = null; setInterval(() => {
    const x = document.querySelector('.js-plotly-plot')?.data?.[0]?.x;
    const step = x && x.length ? x[x.length - 1] : null;
    if (step !== null && step !== last) { last = step; window.__shown.push([Date.now() / 1000, step]); } }, 50); }"""


def page_chromium(tmp: Path, epochs: int) -> dict:
    """The run started from the page in headless Chromium on this machine, the page left open until it is done."""
    from playwright.sync_api import sync_playwright
    from test_browser import FLAGS, choose, ensure_chromium, serve_app

    runs = tmp / f"jobs-{time.time_ns()}"
    with serve_app({"DIFFUSION_LAB_RUNS": str(runs)}) as (url, server_pid), sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1100})
        page.goto(f"{url}/b4_train")
        page.get_by_text("Choose a recipe (and change what you like) and press Start").first.wait_for(timeout=120_000)
        choose(page, "Recipe", "lecture quick run")
        page.get_by_text("Small enough for a lecture").first.wait_for(timeout=60_000)
        field = page.get_by_label("Epochs").first
        field.fill(str(epochs))
        field.press("Tab")
        page.evaluate(WATCH_CHART)
        page.get_by_role("button", name="Start").first.click()
        t0, server0, browser0 = time.time(), cpu_seconds([server_pid]), cpu_seconds(browser_pids())
        page.get_by_text("· done").first.wait_for(timeout=600_000)  # the page stays open, redrawing, until the end
        wall = time.time() - t0
        server_cores, browser_cores = (
            (cpu_seconds([server_pid]) - server0) / wall,
            (cpu_seconds(browser_pids()) - browser0) / wall,
        )
        shown = page.evaluate("window.__shown")
        browser.close()
    (run_dir,) = [d for d in runs.iterdir() if d.is_dir()]
    return dict(
        rate=images_per_s(run_dir), server=server_cores, browser=browser_cores, latency=latencies(run_dir, shown)
    )


def latencies(run_dir: Path, shown: list) -> list[float]:
    """For each logged step: the first time a chart showing it (or a later step) was seen, minus its logging time."""
    rows = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()]
    out = []
    for row in rows:
        seen = [t for t, step in shown if step >= row["step"] and t >= row["time"]]
        if seen and row["step"] <= shown[-1][1]:
            out.append(min(seen) - row["time"])
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--epochs", type=int, default=3, help="epochs of 71 steps")
    ap.add_argument("--repeats", type=int, default=3, help="runs of each, in turn; the medians are compared")
    ap.add_argument(
        "--room", type=int, default=10, help="also: the page run watched by this many remote browsers (0: not)"
    )
    args = ap.parse_args()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    cli, pages = [], {"remote browser": [], "browser here": [], f"{args.room + 1} remote browsers": []}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.repeats):
            cli.append(from_cli(Path(tmp), args.epochs))
            pages["remote browser"].append(page_remote(Path(tmp), args.epochs))
            pages["browser here"].append(page_chromium(Path(tmp), args.epochs))
            if args.room:
                pages[f"{args.room + 1} remote browsers"].append(page_remote(Path(tmp), args.epochs, args.room))
            print(
                "  CLI",
                f"{cli[-1]:.0f} img/s;",
                "; ".join(f"page, {k} {v[-1]['rate']:.0f} img/s" for k, v in pages.items() if v),
            )
    pages = {k: v for k, v in pages.items() if v}
    c = statistics.median(cli)
    print(f"(1) {args.epochs} epochs, D = 16, batch 64, medians of {args.repeats}: CLI {c:.0f} img/s")
    for name, runs in pages.items():
        p = statistics.median(r["rate"] for r in runs)
        redraws = f", {statistics.median(r['redraws'] for r in runs):.1f} redraws/s" if "redraws" in runs[0] else ""
        print(
            f"    page, {name}: {p:.0f} img/s ({(1 - p / c) * 100:+.1f} % cost; target <= 5 %); server process "
            f"{statistics.median(r['server'] for r in runs):.3f} cores, browser {statistics.median(r['browser'] for r in runs):.2f} "
            f"cores of {os.cpu_count()}{redraws}"
        )
    for name, runs in pages.items():
        lat = [x for r in runs for x in r["latency"]]
        print(
            f"(2) logged step -> chart, {name}, over {len(lat)} steps: median {statistics.median(lat):.2f} s, "
            f"p95 {statistics.quantiles(lat, n=20)[-1]:.2f} s, max {max(lat):.2f} s (target <= 1 s)"
        )


if __name__ == "__main__":
    main()
