"""Part B's generators page through the room: 40 samples of a trained DDPM or flow-matching UNet (4 per class, or 40
without classes) and the frames of its GIF, one computation per (model, CFG scale, steps, seed) for the whole server.

The course samples its class-conditioned flow model with 300 Euler steps at CFG 5 (``class_fm_sample(num_ts=300)``):
24,000 model calls, a minute of a 2-core CPU. So the page's request goes through the room's queue like Part A's: its
progress shown step by step, a room that asks for the same picture joined to one computation, the result kept in the
room's store, and a browser that moves on stopping what only it waited for. No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from lab.generate import class_grid, sample_trained
from lab.schedules import strided_timesteps
from serving.batching import on_fresh_thread
from serving.queue import Cancelled, Progress

SAMPLES = 40  # 4 per digit
FRAMES = 30  # the GIF's frames (about; and the last)


@dataclass(frozen=True)
class Samples:
    """Samples in [0, 1] and the GIF's frames (each the batch at one step, in [0, 1])."""

    images: torch.Tensor
    frames: tuple[torch.Tensor, ...]

    @property
    def nbytes(self) -> int:  # the room's results store bounds what it keeps by this
        return self.images.nbytes + sum(f.nbytes for f in self.frames)


def key(source: str, gamma: float, steps: int, seed: int) -> tuple:
    """The room's key for a generators-page picture (source: a bundled stem or a run folder)."""
    return ("part-b-samples", str(source), float(gamma), int(steps), int(seed))


def sampling_steps(config: dict, steps: int) -> int:
    """Model calls the sampler makes (progress.total): the Euler steps, or the strided DDPM timesteps."""
    if config["experiment"] != "ddpm":
        return steps
    return len(strided_timesteps(config["T"], max(1, config["T"] // steps)))


def sample(
    model,
    config: dict,
    gamma: float,
    steps: int,
    seed: int,
    progress: Progress,
    threads: int,
    stop: Callable[[], bool] | None = None,
) -> Samples:
    """The page's samples, step by step into progress (Cancelled when nobody waits any more, or when stop() says so
    while nobody waits: the warm-up gives way to a room), on `threads` torch threads (the queue's worker has one)."""
    low = -1.0 if config.get("signed") else 0.0
    labels = class_grid(10, SAMPLES // 10) if config["condition"] == "class" else None
    progress.total = total = sampling_steps(config, steps)
    kept = set(range(0, total, -(-total // FRAMES))) | {total - 1}  # at most FRAMES + 1, evenly spaced, the last
    frames = []

    def record(step: dict) -> None:
        if progress.done in kept:
            frames.append(((step["x"].float() - low) / (1 - low)).clamp(0, 1))
        progress.step()  # Cancelled once nobody waits for it
        if stop is not None and stop() and not progress.wanted():
            raise Cancelled("a browser asked the room for something: the warm-up goes on once it is quiet")

    # on a thread of its own: its OpenMP team ends with it (a queue worker that kept one would slow every model call)
    images = on_fresh_thread(
        threads,
        sample_trained,
        model,
        config,
        labels,
        SAMPLES,
        gamma,
        steps=steps,
        generator=torch.Generator().manual_seed(seed),
        callback=record,
    )
    return Samples(images, tuple(frames))
