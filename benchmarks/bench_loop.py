"""Benchmark of the one loop: loop overhead, and the cost of a CFG, anagram and hybrid step.

    python benchmarks/bench_loop.py [--batch 4] [--repeats 5] [--threads N]

(a) overhead = time of ``denoise`` over the 34 strided steps / time of the same number of bare model calls
    on the same batch (target <= 1.05).
(b) time of one step with each combiner relative to a plain step, next to a naive implementation that
    calls the model once per estimate (CFG: 2 calls; 2-view anagram with CFG: 4; hybrid with CFG: 4).

The model is a tiny random DeepFloyd-IF-architecture UNet (models.deepfloyd.tiny_unet_config, 0.87 M
parameters) at 64x64: a stand-in of realistic per-call cost on a CPU, since IF itself cannot run here.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from diffusers import UNet2DConditionModel
from tiny_if import tiny_unet_config

import lab
from lab.diffusion import step
from lab.filters import frequency_bands
from lab.sampling import denoise
from lab.schedules import strided_timesteps
from models.deepfloyd.denoiser import IFDenoiser


def best_of(fn, repeats: int) -> float:
    """Median wall time of fn() over repeats runs, after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=4, help="images per run")
    ap.add_argument("--repeats", type=int, default=5, help="timed repeats; the median is reported")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    embeds = {p: torch.randn(1, 7, 64, generator=g) for p in ("", "an old man", "a campfire")}
    model = IFDenoiser(UNet2DConditionModel(**tiny_unet_config()), embeds)
    B, ts = args.batch, strided_timesteps()
    x = torch.randn(B, 3, 64, 64, generator=g)
    c1, c2, u = model.encode(["an old man"]), model.encode(["a campfire"]), model.encode([""])
    print(
        f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} torch threads, "
        f"torch {torch.__version__}; batch {B}, {len(ts)} steps, 64x64, tiny IF UNet"
    )

    # (a) loop overhead
    def bare_calls():
        for t in ts:
            model(x, t, c1.expand(B, -1, -1))

    loop = best_of(
        lambda: denoise(model, x, ts, lab.plain(c1), generator=torch.Generator().manual_seed(0)), args.repeats
    )
    bare = best_of(bare_calls, args.repeats)
    print(f"(a) loop {loop:.3f} s, bare model calls {bare:.3f} s, overhead ratio {loop / bare:.3f} (target <= 1.05)")

    # (b) one step per combiner, ours (one batched call) vs naive (one call per estimate)
    bands = frequency_bands(33, (2.0,))
    guides = {
        "plain": lab.plain(c1),
        "CFG": lab.cfg(c1, u, 7.0),
        "anagram (2 views, CFG)": lab.anagram([c1, c2], ["identity", "flip"], u, 7.0),
        "hybrid (2 bands, CFG)": lab.factorized([c1, c2], bands, u, 7.0),
    }
    t, t_prev = 690, 660

    def ours(guide):
        def one_step():
            x_in, c_in = guide.inputs(x)
            eps, var = guide.combine(*model(x_in, t, c_in))
            step(x, eps, t, t_prev, model.alphas_cumprod, variance=var, variance_type="learned_range")

        return one_step

    def naive(name):
        flip = lab.get_view("flip")

        def estimate(xv, c):
            return model(xv, t, c.expand(B, -1, -1))

        def guided(xv, c):
            (e_u, _), (e_c, v) = estimate(xv, u), estimate(xv, c)
            return e_u + 7.0 * (e_c - e_u), v

        def one_step():
            if name == "plain":
                eps, var = estimate(x, c1)
            elif name == "CFG":
                eps, var = guided(x, c1)
            elif name.startswith("anagram"):
                (e1, v1), (e2, v2) = guided(x, c1), guided(flip.view(x), c2)
                eps, var = (e1 + flip.inverse(e2)) / 2, (v1 + flip.inverse(v2)) / 2
            else:
                (e1, v1), (e2, v2) = guided(x, c1), guided(x, c2)
                eps, var = bands[0](e1) + bands[1](e2), (v1 + v2) / 2
            step(x, eps, t, t_prev, model.alphas_cumprod, variance=var, variance_type="learned_range")

        return one_step

    plain_ours = best_of(ours(guides["plain"]), args.repeats * 4)
    print(f"(b) one step, {B} images: time (relative to a plain step)")
    print(f"    {'combiner':<24} {'model evals':>11} {'ours':>16} {'naive':>16}")
    for name, guide in guides.items():
        a = best_of(ours(guide), args.repeats * 4)
        b = best_of(naive(name), args.repeats * 4)
        print(
            f"    {name:<24} {guide.num_evals:>11} {a * 1e3:8.1f} ms {a / plain_ours:4.2f}x {b * 1e3:8.1f} ms {b / plain_ours:4.2f}x"
        )


if __name__ == "__main__":
    main()
