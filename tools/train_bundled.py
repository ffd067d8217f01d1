"""Train the models bundled in models/weights/, by name, into runs/bundled/NAME (the exact recipes of the cards).

    python tools/train_bundled.py [--threads N] parta_mnist ddpm_class ...   # names from BUNDLED; none: all of them

A run that was interrupted resumes from its latest checkpoint; a finished one is skipped.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import torch  # noqa: E402

from lab.train import course_config, train  # noqa: E402

PART_A = dict(condition="class", D=32, batch_size=128, lr=2e-3, T=1000, schedule="squaredcos_cap_v2", signed=True,
              sample_every=0, sample_stride=30, cfg_scale=3.0)  # fmt: skip
BUNDLED = {
    # Part A backends: class-conditional, T = 1000, DeepFloyd IF's schedule, images in [-1, 1] (SPEC's probe recipe)
    "parta_mnist": course_config("ddpm", **PART_A, epochs=153, max_steps=5500),
    "parta_fashion": course_config("ddpm", **PART_A, dataset="fashion_mnist", epochs=12, max_steps=5500),
    # Part B: the course's settings on the bundled MNIST
    "denoiser": course_config("denoiser"),
    "pure_noise": course_config("pure_noise"),
    "ddpm_time": course_config("ddpm", "time"),
    "ddpm_class": course_config("ddpm", "class"),
    "flow_time": course_config("flow", "time"),
    "flow_class": course_config("flow", "class"),
}

if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, help="torch threads (1 keeps a run steady beside other work)")
    ap.add_argument("names", nargs="*", help=f"any of {', '.join(BUNDLED)} (default: all)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    for name in args.names or list(BUNDLED):
        run = ROOT / "runs" / "bundled" / name
        latest = run / "latest"
        if latest.exists() and latest.read_text().startswith("final"):
            print(f"{name} already trained: {run}", flush=True)
            continue
        t0 = time.time()
        for event in train(BUNDLED[name], run, resume=latest.exists()):
            if event["kind"] == "step" and event["step"] % 100 == 0:
                print(f"{name} step {event['step']} loss {event['loss']:.4f} {event['images_per_s']:.0f} img/s", flush=True)
            elif event["kind"] in ("epoch", "done"):
                print(f"{name} {event['kind']} epoch {event['epoch']} step {event['step']} {time.time() - t0:.0f} s", flush=True)
        print(f"{name} finished in {time.time() - t0:.0f} s", flush=True)
