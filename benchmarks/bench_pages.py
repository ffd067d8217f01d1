"""Benchmark of the Part A pages: server time per interaction on a bundled backend.

    python benchmarks/bench_pages.py [--repeats 5] [--backend "Emoji (colour)"] [--runs-only]
    python benchmarks/bench_pages.py --flow [--repeats 5] [--backend "Emoji (colour, flow)"]

- a slider move on the forward and blur pages: AppTest run time of the page script after the move (targets <= 0.15 s);
- one SDEdit run (i_start 10, CFG 7) and one anagram (flip, CFG 7), uncached (targets <= 1 s and <= 2 s);
- cold start: `streamlit run Home.py` in a fresh process until a browser (headless Chromium) shows the first
  result image of the forward page (target <= 8 s).
--flow, the Fall 2026 pages on a flow backend (default "MNIST digits (flow)"):
- a slider move on 1.1 (t), 1.2 (the blur kernel) and 1.4 (the test image: three one-step velocities), AppTest run
  time of the page after the move (target <= 0.2 s);
- 3.1's edit row (7 start times, w = 7) and 2.1's 5 + 5 samples, each a page's requests computed together by a room
  (its queue and loop batcher, as the server computes them: one model call per step for the requests), uncached
  (targets <= 2 s each).
--colour, the colour backends against the digit ones, both editions, in one run: each page's requests as it opens
(Fall 2024: 1.6 CFG, 1.7 SDEdit row, 1.8 anagram, 1.9 hybrid; Fall 2026: 2.1 CFG 5 + 5, 3.1 edit row, 3.3, 3.4)
computed together by a room, uncached; seconds, the colour/digit ratio (targets <= 1.5 s and <= 1.5x), and the
model's FLOPs per interaction against this CPU's fp32 GEMM peak measured in the same run (the physical floor).
"""

from __future__ import annotations

import argparse
import platform
import statistics
import sys
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))


def page_slider(
    page: str,
    key: str,
    values: list,
    repeats: int,
    folder: str = "part_a",
    query: dict | None = None,
    kind: str = "slider",
) -> float:
    """Median seconds of an AppTest rerun of the page after its slider key moved to each value (+ the repeat's index;
    a select_slider's: the values themselves)."""
    from conftest import PAGE_SCRIPT
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_string(
        PAGE_SCRIPT.format(path=str(ROOT / "app_pages" / folder / page), page=page, url=None), default_timeout=300
    )
    at.query_params.update(query or {})
    at.run()
    times = []
    for r in range(repeats):
        for v in values:
            t0 = time.perf_counter()
            (at.slider(key=key).set_value(v + r) if kind == "slider" else at.select_slider(key=key).set_value(v)).run()
            times.append(time.perf_counter() - t0)
            assert not at.exception
    return statistics.median(times)


def uncached_run(fn, repeats: int, name: str = "MNIST digits", **kwargs) -> float:
    """Median seconds of one request of fn (a course function) computed alone, a new seed each time."""
    from serving.requests import Request, compute
    from ui.state import backend

    den = backend(name, "cpu")  # loaded once per server
    times = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        compute(Request.of(fn, name, "cpu", generator=1000 + seed, **kwargs), den)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


MODEL_THREADS = torch.get_num_threads()  # the rooms' model threads: torch's default, read before a page takes one


def room_run(requests_of, repeats: int, name: str) -> float:
    """Median seconds of a page's requests computed together by a room (warm-up off), a new seed each time."""
    from serving.room import Room
    from serving.settings import RoomSettings
    from ui.state import backend

    room = Room(RoomSettings(warm=False, model_threads=MODEL_THREADS))
    times = []
    for seed in range(repeats):
        t0 = time.perf_counter()
        for ticket in room.submit(requests_of(2000 + seed), backend):
            ticket.result()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def flow_pages(args) -> None:
    """The Fall 2026 pages' interactions (see the module docstring)."""
    import lab.fall2026 as fall2026
    import lab.flow as flow
    from lab.fall2026 import SAMPLES as FLOW_SAMPLES
    from serving.defaults import flow_prompts
    from serving.requests import Request, editing_row
    from ui.state import backend, first_test_images

    torch.set_num_threads(1)  # this thread loads and draws as a server's page does; the rooms' model thread computes
    name, query = args.backend, {"backend": args.backend}
    print(
        f"slider move, 1.1 noisy inputs (t):      "
        f"{page_slider('f1_1_noisy.py', 'noisy_t', [0.1, 0.3, 0.6, 0.9], args.repeats, 'part_a_flow', query, 'select'):.3f} s (target <= 0.2)"
    )
    print(
        f"slider move, 1.2 blur (kernel):         "
        f"{page_slider('f1_2_blur.py', 'flow_blur_kernel', [3, 7, 11, 15], args.repeats, 'part_a_flow', query):.3f} s (target <= 0.2)"
    )
    print(
        f"slider move, 1.4 velocity (test image): "
        f"{page_slider('f1_4_velocity.py', 'part1_test_image', [1, 2, 3, 4], args.repeats, 'part_a_flow', query):.3f} s (target <= 0.2)"
    )
    den, x1 = backend(name, "cpu"), first_test_images(name, 1)
    w, prompt = fall2026.CFG_W, flow_prompts("cfg", den)[0]
    edit = room_run(
        lambda seed: editing_row(
            flow.edit_image, name, "cpu", x1, flow_prompts("edit", den)[0], w, fall2026.EDIT_STARTS, seed
        ),
        args.repeats,
        name,
    )
    print(f"3.1's edit row (7 start times, w = {w:g}): {edit:.3f} s (target <= 2)")
    cfg = room_run(
        lambda seed: [
            Request.of(
                flow.sample, name, "cpu", n=FLOW_SAMPLES, prompt=prompt, w=scale, seeds=range(seed, seed + FLOW_SAMPLES)
            )
            for scale in (w, None)
        ],
        args.repeats,
        name,
    )
    print(f"2.1's 5 + 5 samples (w = {w:g}, {prompt!r}): {cfg:.3f} s (target <= 2)")


COLOUR_PAGES = {
    "2024": ("a6_cfg", "a7_sdedit", "a8_anagrams", "a9_hybrids"),
    "2026": ("f2_1_cfg", "f3_1_edit", "f3_3_anagrams", "f3_4_hybrids"),
}
COLOUR_PAIRS = {"2024": ("MNIST digits", "Emoji (colour)"), "2026": ("MNIST digits (flow)", "Emoji (colour, flow)")}


def image_flops(den) -> float:
    """FLOPs of one image's model call on a backend (torch's FLOP counter, a batch of 4 / 4)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(4, *den.image_shape)
    cond = den.encode([den.prompts[0] if den.prompts else (den.names[0] if den.names else "")] * 4)
    with FlopCounterMode(display=False) as counter:
        den(x, torch.full((4,), 0.5) if den.prediction == "velocity" else 500, cond)
    return counter.get_total_flops() / 4


class RowCounter:
    """Counts the image rows the outermost network of a backend is called on (global forward hooks: a network inside
    another, such as the course's UNet in the colour backend's CourseNameUNet, is not counted again)."""

    def __init__(self, networks: tuple[type, ...]):
        self.networks, self.rows, self.depth = networks, 0, threading.local()
        self.handles = [
            torch.nn.modules.module.register_module_forward_pre_hook(self.enter),
            torch.nn.modules.module.register_module_forward_hook(
                self.leave, always_call=True
            ),  # (a forward that raises)
        ]

    def enter(self, module, args):
        if isinstance(module, self.networks):
            self.depth.n = getattr(self.depth, "n", 0) + 1

    def leave(self, module, args, output):
        if isinstance(module, self.networks):
            self.depth.n = max(0, getattr(self.depth, "n", 0) - 1)  # (a forward that began before the counter did)
            if self.depth.n == 0 and args:
                self.rows += args[0].shape[0]


def colour_pages(args) -> None:
    """The colour backends against the digit ones (see the module docstring)."""
    from diffusers import UNet2DModel

    from benchmarks.bench_generators import gemm_peak
    from models.emoji_unet import CourseNameUNet, SpaceToDepthUNet
    from models.unet import CourseUNet
    from serving.batching import on_fresh_thread
    from serving.defaults import default_requests
    from ui.state import backend, first_test_images

    # the peak on a thread of its own, then this thread on one torch thread (as a server's page: loading, the FLOP
    # count), so that the room's model thread has the process's only OpenMP team (serving.batching.own_threads)
    peak = on_fresh_thread(MODEL_THREADS, gemm_peak)
    torch.set_num_threads(1)
    counter = RowCounter((UNet2DModel, CourseUNet, CourseNameUNet, SpaceToDepthUNet))
    print(f"fp32 GEMM peak now: {peak:.0f} GFLOP/s")
    print(
        "| edition | page | digit s | colour s | colour / digit | colour GFLOP | floor at peak s | colour s / floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for edition, pages in COLOUR_PAGES.items():
        for page in pages:
            times, flops = {}, {}
            for name in COLOUR_PAIRS[edition]:
                den, x = backend(name, "cpu"), first_test_images(name, 1)
                counter.rows = 0
                times[name] = room_run(
                    lambda seed, name=name, den=den, x=x, page=page: default_requests(name, "cpu", seed, den, x)[page],
                    args.repeats,
                    name,
                )
                flops[name] = counter.rows / args.repeats * image_flops(den)
            digit, colour = COLOUR_PAIRS[edition]
            floor = flops[colour] / peak / 1e9
            print(
                f"| {edition} | {page} | {times[digit]:.2f} | {times[colour]:.2f} | {times[colour] / times[digit]:.2f}x | "
                f"{flops[colour] / 1e9:.0f} | {floor:.2f} | {times[colour] / floor:.2f}x |",
                flush=True,
            )


def cold_start() -> float:
    from playwright.sync_api import sync_playwright
    from test_browser import FLAGS, ensure_chromium, free_port, launch_app

    port = free_port()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=ensure_chromium(), args=FLAGS)
        page = browser.new_page()
        t0 = time.perf_counter()
        server = launch_app(port, {"DIFFUSION_LAB_WARM": "1"})  # as the README starts it (the tests turn warming off)
        try:
            while True:
                try:
                    page.goto(f"http://127.0.0.1:{port}/a1_forward", timeout=2000)
                    break
                except Exception:
                    time.sleep(0.1)
            page.locator("img[src*='media']").first.wait_for(timeout=60_000)
            elapsed = time.perf_counter() - t0
        finally:
            server.terminate()
            server.wait()
            browser.close()
    return elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--backend", default="MNIST digits", help='a bundled Part A backend, e.g. "Emoji (colour)"')
    ap.add_argument(
        "--runs-only", action="store_true", help="only the SDEdit and anagram runs (no sliders, no cold start)"
    )
    ap.add_argument("--flow", action="store_true", help="the Fall 2026 pages on a flow backend")
    ap.add_argument("--colour", action="store_true", help="the colour backends against the digit ones, both editions")
    args = ap.parse_args()
    if args.colour:
        print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
        return colour_pages(args)
    if args.flow and args.backend == ap.get_default("backend"):
        args.backend = "MNIST digits (flow)"  # the Fall 2026 edition's default
    print(
        f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}; backend {args.backend}"
    )
    if args.flow:
        return flow_pages(args)
    if not args.runs_only:
        print(
            f"slider move, 1.1 forward page (t):   {page_slider('a1_forward.py', 'forward_t', [100, 300, 600, 900], args.repeats):.3f} s (target <= 0.15)"
        )
        print(
            f"slider move, 1.2 blur page (kernel): {page_slider('a2_blur.py', 'blur_kernel', [3, 7, 11, 15], args.repeats):.3f} s (target <= 0.15)"
        )
    import lab
    from serving.defaults import default_prompts
    from ui.state import backend, first_test_images

    den = backend(args.backend, "cpu")
    x0 = first_test_images(args.backend, 1)
    sdedit_prompt = default_prompts("text", den)[0]  # a prompt that guides (the null one would skip CFG's second row)
    anagram = default_prompts("anagram", den)[:2]
    print(
        f"one SDEdit run (i_start 10, CFG 7, {sdedit_prompt!r}): "
        f"{uncached_run(lab.sdedit, args.repeats, args.backend, im=x0, i_start=10, prompt=sdedit_prompt):.3f} s (target <= 1)"
    )
    print(
        f"one anagram (flip, CFG 7, {' / '.join(anagram)}): "
        f"{uncached_run(lab.visual_anagrams, args.repeats, args.backend, prompts=anagram):.3f} s (target <= 2)"
    )
    if not args.runs_only:
        print(f"cold start to the first result:       {cold_start():.2f} s (target <= 8)")


if __name__ == "__main__":
    main()
