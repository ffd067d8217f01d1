"""Benchmark of PixNerd as the lab's Fall 2026 backend: model calls, pages and memory at 512 px.

    python benchmarks/bench_pixnerd.py --source ../PixNerd [--model MCG-NJU/PixNerd-XXL-P16-T2I] [--dtype bfloat16]
    python benchmarks/bench_pixnerd.py --source ../PixNerd --device cpu --rows 1 --pages none   # what a CPU can do

The network is the checkout's own PixNerDiT from its config (the full size, 1.17 B parameters); its weights are the
checkpoint's (--model) or its initial random ones (speed and memory do not depend on the values). Prompts are random
embeddings of the right shape (Qwen3 is not loaded: its cost is once per new prompt). It reports, per batch of rows,
the seconds per model call and (CUDA) the peak memory allocated, then the seconds of the Fall 2026 pages' default work:
1.6's five samples (50 Euler steps, no CFG), 2.1's five with CFG (w = 7: ten rows a call), 3.4's hybrid (kernel 265,
sigma 16). The course measured about 5.8 GiB peak on an A100 for its whole notebook, in float32.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import lab.flow as flow
from models.backend import NULL_PROMPTS
from models.pixnerd import loading
from models.pixnerd.settings import PixNerdSettings

PAGES = {
    "1.6 five samples": lambda den: flow.sample(den, n=5, prompt="", w=None, generator=0),
    "2.1 five samples, CFG w 7": lambda den: flow.sample(den, n=5, prompt="a rocket ship", generator=0),
    "3.4 hybrid, kernel 265, sigma 16": lambda den: flow.hybrid_images(den, ["a skull", "waterfalls"], generator=0),
}


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", required=True, help="your checkout of MCG-NJU/PixNerd")
    parser.add_argument("--model", help="weights (hub id, .ckpt, .safetensors); default: the initial random ones")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    parser.add_argument("--rows", default="1,2,4,8,10", help="batch sizes of the model-call timing")
    parser.add_argument("--pages", default="all", choices=["all", "none"])
    parser.add_argument("--out", default="runs/bench_pixnerd.json")
    args = parser.parse_args()

    settings = PixNerdSettings(
        model=args.model,
        source=args.source,
        device=args.device,
        dtype=args.dtype,
        text_encoder=None,
        cache_dir=str(Path(args.out).parent / "bench_pixnerd_cache"),
    )
    t0 = time.perf_counter()
    den = loading.load_pixnerd(settings, random_weights=args.model is None)
    load_s = time.perf_counter() - t0
    device = den.device
    g = torch.Generator().manual_seed(0)
    for prompt in [*NULL_PROMPTS, "a rocket ship", "a skull", "waterfalls"]:  # random embeddings of Qwen3's shape
        den.embeddings.add(
            prompt, torch.randn(den.net.txt_max_length, den.net.txt_embed_dim, generator=g), persist=False
        )
    report = {
        "machine": platform.processor() or platform.machine(),
        "device": str(device),
        "dtype": args.dtype,
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "torch": torch.__version__,
        "weights": args.model or "random (initial)",
        "params": sum(p.numel() for p in den.net.parameters()),
        "load_s": round(load_s, 1),
        "calls": {},
        "pages": {},
    }
    if device.type == "cuda":
        report["weights_gib"] = round(torch.cuda.memory_allocated(device) / 2**30, 2)
    cond = den.encode(["a rocket ship"])
    for rows in [int(r) for r in args.rows.split(",")]:
        x = torch.randn(rows, *den.image_shape, device=device)
        den(x, 0.5, cond.expand(rows, -1, -1))  # warm-up (kernels, positions)
        if device.type == "cuda":
            torch.cuda.reset_peak_memory_stats(device)
        sync(device)
        t0 = time.perf_counter()
        den(x, torch.full((rows,), 0.5), cond.expand(rows, -1, -1))
        sync(device)
        entry = {"s": round(time.perf_counter() - t0, 3)}
        if device.type == "cuda":
            entry["peak_gib"] = round(torch.cuda.max_memory_allocated(device) / 2**30, 2)
        report["calls"][rows] = entry
        print(f"batch {rows}: {entry}", flush=True)
    for name, run in PAGES.items() if args.pages == "all" else ():
        sync(device)
        t0 = time.perf_counter()
        run(den)
        sync(device)
        report["pages"][name] = round(time.perf_counter() - t0, 2)
        print(f"{name}: {report['pages'][name]} s", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(report, indent=2))
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
