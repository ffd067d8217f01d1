"""Benchmark of Part B: training throughput of the lab's trainer vs a plain loop, and sampling time.

    python benchmarks/bench_train.py [--steps 30] [--D 64] [--batch 128] [--threads N]
    python benchmarks/bench_train.py --recipes [--steps 20] [--threads N]

(1) images/s of lab.train.train (bf16 autocast) against a plain eager fp32 loop of the same model, batch, data
    and loss, in the same process, from the same initial weights; the two loss curves are printed side by side
    so their equivalence can be judged. Target: >= 1.7x.
(2) seconds for a 10 x 4 class grid with CFG 5: DDPM at the course's 300 steps and at a 30-step strided
    schedule; flow matching at its 50 Euler steps. Uses the bundled weights when present (speed does not
    depend on the weights).
--recipes: what each of Train live's recipes costs here (ui.recipes.RECIPES, built as the page builds them by
    ui.recipes.form_config, without its sample grids): seconds per step after 5 warm-up steps, and the whole run at
    that pace; one JSON line each. The recipe notes on the page quote these figures.
--start [--runs 6]: what starting a run costs through the job manager (Train live's path): seconds from Start to the
    run's first step and the machine's busy CPU per run, each run a fresh `python -m serving.train_child` against
    forked from the fork server (serving.jobs.forkserver), the two alternating; the fork server's own start (its
    imports, once per server) counted in the first forked run.
"""

from __future__ import annotations

import argparse
import platform
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lab.data import load_dataset
from lab.diffusion import add_noise
from lab.generate import class_grid, ddpm_sample, flow_sample, one_hot
from lab.schedules import make_alphas_cumprod
from lab.train import train
from lab.train_config import course_config
from models.course_backend import CourseDenoiser
from models.unet import CourseUNet


def plain_loop(config, steps: int) -> tuple[float, list[float]]:
    """The textbook loop: eager fp32, same data order and noise as the trainer. Returns (images/s, losses)."""
    torch.manual_seed(config.seed)
    model = CourseUNet(config.unet_config()).train()
    opt = torch.optim.Adam(model.parameters(), lr=config.lr)
    data = load_dataset(config.dataset, "train")
    x_all, labels_all = data.as_float(), data.labels
    ac = make_alphas_cumprod(config.schedule, config.T)
    g = torch.Generator().manual_seed(config.seed)
    order = torch.randperm(len(x_all), generator=torch.Generator().manual_seed(config.seed * 100_003))
    losses, t0 = [], None
    for b in range(steps):
        if b == 3:
            t0 = time.perf_counter()  # after warm-up
        idx = order[(b * config.batch_size) % len(x_all) :][: config.batch_size]
        x, labels = x_all[idx], labels_all[idx]
        eps = torch.randn(x.shape, generator=g)
        drop = torch.rand(len(x), generator=g) < config.p_uncond
        c = one_hot(torch.where(drop, -1, labels), 10)
        t = torch.randint(0, config.T, (len(x),), generator=g)
        loss = F.mse_loss(model(add_noise(x, t, ac, eps), t / config.T, c), eps)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return (steps - 3) * config.batch_size / (time.perf_counter() - t0), losses


def lab_trainer(config, steps: int, run_dir: Path) -> tuple[float, list[float]]:
    losses, t0 = [], None
    for event in train(config, run_dir):
        if event["kind"] == "step":
            if event["step"] == 3:
                t0 = time.perf_counter()
            losses.append(event["loss"])
    return (steps - 3) * config.batch_size / (time.perf_counter() - t0), losses


def recipes(steps: int, warm: int = 5) -> None:
    import json
    import tempfile
    from dataclasses import replace

    from ui.recipes import RECIPES, form_config

    for name, recipe in RECIPES.items():
        config = form_config(recipe.values, checkpoint_every_s=None)
        quick = replace(
            config,
            max_steps=warm + steps,
            sample_every=0,
            sample_every_steps=0,
            snapshot_epochs=(),
            checkpoint_every_s=None,
        )
        with tempfile.TemporaryDirectory() as run:
            stamps = [time.perf_counter() for event in train(quick, run) if event["kind"] == "step"]
        per_step = (stamps[-1] - stamps[warm - 1]) / steps
        total = config.epochs * -(
            -(config.epoch_images or len(load_dataset(config.dataset, "train"))) // config.batch_size
        )
        print(
            json.dumps(
                {
                    "recipe": name,
                    "precision": config.precision,
                    "s_per_step": round(per_step, 3),
                    "steps": total,
                    "hours": round(total * per_step / 3600, 2),
                }
            ),
            flush=True,
        )


def starts(runs: int) -> None:
    import statistics
    import tempfile

    import psutil

    import serving.jobs.child as child
    from serving.jobs import JobManager

    config = course_config("flow", "class", D=4, batch_size=64, epochs=1, T=10, sample_every=0, max_steps=3)
    forked_server = child.fork_server
    seen: dict[str, list[tuple[float, float]]] = {"fresh": [], "forked": []}
    with tempfile.TemporaryDirectory() as tmp:
        manager = JobManager(Path(tmp) / "runs", max_per_owner=runs * 2)
        for _ in range(runs):
            for how in ("fresh", "forked"):
                child.fork_server = (lambda: None) if how == "fresh" else forked_server
                busy = sum(psutil.cpu_times()[:3])  # user, nice, system: the whole machine's, every core
                t0 = time.perf_counter()
                job = manager.submit("bench", config)
                while not job.steps and not job.finished:
                    time.sleep(0.005)
                first = time.perf_counter() - t0
                while not job.finished:
                    time.sleep(0.005)
                time.sleep(0.2)  # the process's exit
                seen[how].append((first, sum(psutil.cpu_times()[:3]) - busy))
                assert job.status == "done", job.error
    for how, rows in seen.items():
        later = rows[1:]  # the first forked run also starts the fork server
        print(
            f"{how:7s} first run: {rows[0][0]:.2f} s to its first step, {rows[0][1]:.2f} CPU-s; the next {len(later)}: "
            f"median {statistics.median(r[0] for r in later):.2f} s, {statistics.median(r[1] for r in later):.2f} CPU-s"
        )
    fresh, forked = (statistics.median(r[0] for r in seen[h][1:]) for h in ("fresh", "forked"))
    print(f"Start to first step: forked {fresh / forked:.1f}x sooner than fresh")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--D", type=int, default=64)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--threads", type=int)
    ap.add_argument("--recipes", action="store_true", help="time Train live's recipes instead")
    ap.add_argument("--start", action="store_true", help="time a run's start, fresh process or forked, instead")
    ap.add_argument("--runs", type=int, default=6, help="--start: runs of each kind")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} torch threads, torch {torch.__version__}")
    if args.recipes:
        return recipes(args.steps if args.steps != 30 else 20)
    if args.start:
        return starts(args.runs)
    import tempfile

    config = course_config(
        "ddpm", "class", D=args.D, batch_size=args.batch, max_steps=args.steps, sample_every=0, epochs=1
    )
    with tempfile.TemporaryDirectory() as tmp:
        fast, fast_losses = lab_trainer(config, args.steps, Path(tmp) / "run")
    plain, plain_losses = plain_loop(config, args.steps)
    print(f"(1) DDPM class-conditioned, D={args.D}, batch {args.batch}, {args.steps} steps (3 warm-up):")
    print(
        f"    plain eager fp32 loop {plain:7.1f} img/s; lab trainer (bf16 autocast) {fast:7.1f} img/s; speed-up {fast / plain:.2f}x (target >= 1.7)"
    )
    print(
        "    loss curves, every 5th step (plain | lab):",
        ", ".join(f"{a:.3f}|{b:.3f}" for a, b in list(zip(plain_losses, fast_losses))[::5]),
    )
    tail = slice(len(plain_losses) // 2, None)
    print(
        f"    mean loss over the second half: plain {sum(plain_losses[tail]) / len(plain_losses[tail]):.4f}, "
        f"lab {sum(fast_losses[tail]) / len(fast_losses[tail]):.4f}"
    )

    from models.bundled import WEIGHTS, load_course_model

    def model_for(stem, time_mode):
        if (WEIGHTS / f"{stem}.safetensors").exists():
            return load_course_model(stem)[0]
        return CourseUNet(config.unet_config().__class__(D=64, time=time_mode, num_classes=10)).eval()

    labels = class_grid(10, 4)
    ddpm = CourseDenoiser(
        model_for("ddpm_class", "add"), make_alphas_cumprod("linear", 300), [str(k) for k in range(10)]
    )
    print("(2) a 10 x 4 class grid with CFG 5:")
    for stride, label in ((1, "DDPM, the course's 300 steps"), (10, "DDPM, 30 strided steps")):
        t0 = time.perf_counter()
        ddpm_sample(ddpm, labels, 40, 5.0, stride, torch.Generator().manual_seed(0))
        print(f"    {label:<32} {time.perf_counter() - t0:6.2f} s")
    fm = model_for("flow_class", "mul")
    t0 = time.perf_counter()
    flow_sample(fm, labels, 40, 50, 5.0, torch.Generator().manual_seed(0))
    print(f"    {'flow matching, 50 Euler steps':<32} {time.perf_counter() - t0:6.2f} s")


if __name__ == "__main__":
    main()
