"""Benchmark of live training (issue 6): the UI's cost on throughput, and the delay from a logged step to the chart.

    python benchmarks/bench_ui.py [--steps 60] [--D 16]

(1) images/s of the same run (flow matching, class-conditioned, bundled MNIST) started as the CLI starts it
    (lab.train.train in the foreground) and as the training page starts it (a JobManager thread) while the
    page's fragment redraws every second (AppTest of app_pages/part_b/b4_train.py, in the same process). Target:
    the page costs at most 5 %.
(2) for every step: the time from its logging to the end of the first redraw that shows it. Target: <= 1 s.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from lab.train import course_config, train  # noqa: E402

REDRAW = 0.5  # seconds: the training page's st.fragment(run_every=...)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--D", type=int, default=16)
    args = ap.parse_args()
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    config = course_config("flow", "class", D=args.D, batch_size=64, lr=3e-3, epochs=1, max_steps=args.steps, sample_every=0, grad_clip=1.0)

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        for _ in train(config, Path(tmp) / "cli"):
            pass
        cli = args.steps * config.batch_size / (time.perf_counter() - t0)

        os.environ["DIFFUSION_LAB_RUNS"] = str(Path(tmp) / "jobs")
        from streamlit.testing.v1 import AppTest

        from conftest import PAGE_SCRIPT
        from ui.training import manager

        manager.clear()
        at = AppTest.from_string(PAGE_SCRIPT.format(path=str(ROOT / "app_pages" / "part_b" / "b4_train.py"), page="b4_train.py"), default_timeout=300).run()
        job = manager().submit(at.query_params["owner"], config)
        at.session_state["train_job"] = job.id
        redraws = []  # (start, end) wall times of each redraw
        t0 = time.perf_counter()
        while not job.finished:
            start = time.time()
            at.run()  # what the page's fragment does every REDRAW seconds
            redraws.append((start, time.time()))
            time.sleep(max(0.0, REDRAW - (time.time() - start)))
        page = args.steps * config.batch_size / (time.perf_counter() - t0)
        # a step logged at L first shows in the first redraw that starts after L, on screen when that redraw ends
        latencies = [next(end for start, end in redraws if start >= s["logged"]) - s["logged"]
                     for s in job.steps if s["logged"] <= redraws[-1][0]]

    print(f"(1) {args.steps} steps, D={args.D}, batch 64: CLI {cli:.1f} img/s; page {page:.1f} img/s "
          f"({(1 - page / cli) * 100:+.1f} % cost; target <= 5 %)")  # fmt: skip
    print(f"(2) logged step -> chart, over {len(latencies)} steps: median {statistics.median(latencies):.2f} s, "
          f"max {max(latencies):.2f} s (target <= 1 s)")  # fmt: skip


if __name__ == "__main__":
    main()
