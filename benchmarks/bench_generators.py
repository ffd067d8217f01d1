"""Part B's generators page at the course's step counts, against the machine's floor: a new seed's 40 samples of the
bundled class-conditioned flow model with 300 Euler steps and CFG (40 x 300 x 2 = 24,000 calls of the D 64 UNet), as the
room computes them (serving.generators.sample on the room's model threads, the UNet with BatchNorm folded and
channels_last: "fast") and on the bundled model as it is ("exact"), next to the floor: the model's FLOPs (torch's FLOP
counter) over this CPU's fp32 GEMM peak, measured in the same run.

    python benchmarks/bench_generators.py [--seeds 2] [--threads N]   # N: the room's model threads (default: all cores)

Prints one JSON object: the GEMM peak, the FLOPs, the floor, each seed's seconds, and time / floor.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from lab.generate import class_grid, one_hot  # noqa: E402
from models.bundled import load_course_model  # noqa: E402
from models.unet import inference_copy  # noqa: E402
from serving import generators  # noqa: E402
from serving.defaults import generator_steps  # noqa: E402
from serving.queue import Progress  # noqa: E402


def gemm_peak(n: int = 1024, seconds: float = 3.0) -> float:
    """This CPU's fp32 matrix-multiply rate in GFLOP/s (the best of repeated n x n products on torch's threads)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best, end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


def sampling_flops(model, steps: int) -> float:
    """FLOPs of the page's sampling: one CFG model call (40 conditioned + 40 unconditioned images) times steps."""
    labels = class_grid(10, generators.SAMPLES // 10)
    c = torch.cat([one_hot(labels, 10), torch.zeros(len(labels), 10)])
    x, t = torch.randn(2 * len(labels), 1, 28, 28), torch.full((2 * len(labels), 1), 0.5)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x, t, c)
    return counter.get_total_flops() * steps


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", type=int, default=2, help="new seeds timed (each uncached, as a room's new seed)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    ap.add_argument("--stem", default="flow_class")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model, config = load_course_model(args.stem)
    model.eval()
    steps = generator_steps(config)
    peak = gemm_peak()
    flops = sampling_flops(model, steps)
    floor = flops / (peak * 1e9)
    paths = {"exact": model, "fast": inference_copy(model)}  # the page's: fast
    times = {path: [] for path in paths}
    for seed in range(1, args.seeds + 1):
        for path, net in paths.items():  # interleaved: both see the same machine
            t0 = time.perf_counter()
            generators.sample(net, config, 5.0, steps, 1000 + seed, Progress(), args.threads)
            times[path].append(time.perf_counter() - t0)
            print(f"seed {1000 + seed} {path}: {times[path][-1]:.1f} s", file=sys.stderr, flush=True)
    median = {path: statistics.median(t) for path, t in times.items()}
    print(
        json.dumps(
            {
                "machine": f"{os.cpu_count()}-core {platform.machine()} ({platform.processor() or 'cpu'}), torch {torch.__version__}",
                "threads": args.threads,
                "model": args.stem,
                "steps": steps,
                "samples": generators.SAMPLES,
                "gemm_peak_gflops": round(peak, 1),
                "sampling_gflop": round(flops / 1e9, 1),
                "floor_s": round(floor, 1),
                "seconds": {p: [round(x, 1) for x in t] for p, t in times.items()},
                "median_s": {p: round(m, 1) for p, m in median.items()},
                "ratio_to_floor": {p: round(m / floor, 2) for p, m in median.items()},
            }
        )
    )


if __name__ == "__main__":
    main()
