"""The one denoising loop of Part A, in both editions, and its per-step constraint for inpainting.

Sampling, SDEdit (image-to-image edits), CFG, inpainting, text image-to-image, anagrams and hybrids are all this loop:
they differ in where it starts (i_start), how the model's prediction is made (a ``Guide``), and what is imposed after
each step (a constraint). The loop runs over a *process* (lab.processes): the Fall 2024 edition's DDPM (noise
predictions, strided integer timesteps, step A.3) or the Fall 2026 edition's linear flow (velocities, times from 0 to
1, Euler steps); the backend's ``prediction`` says which. Like k-diffusion's samplers, it reports each step to a
callback as a dict.

The loop is written as a generator of its model calls (``denoise_steps``): ``denoise`` runs it with the backend,
one call per step; a server runs many loops at once with one model call per round for all (serving.batching).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Generator, Sequence
from typing import Any

import torch

from lab._checks import check_image, check_int
from lab.denoiser import Denoiser
from lab.diffusion import DynamicThreshold, randn_like
from lab.guidance import Guide
from lab.processes import DDPM, Process, check_timesteps, process_of

__all__ = [
    "InpaintConstraint",
    "Loop",
    "check_timesteps",
    "denoise",
    "denoise_steps",
    "loop",
    "run_steps",
    "with_steps",
]

Callback = Callable[[dict], None]
Constraint = Callable[[torch.Tensor, "int | float", "torch.Generator | None"], torch.Tensor]


class InpaintConstraint:
    """After every step keep the known pixels: x_t <- m x_t + (1 - m) noise(x_orig, t), Eq. A.5 (the process's noise:
    forward for DDPM, interpolate for the linear flow).

    mask is 1 where new content goes and 0 where x_orig stays; it broadcasts to x_orig: (H, W), (1|B, 1|C, H, W).
    process: a lab.processes process, or a DDPM model's alphas_cumprod.
    """

    def __init__(self, x_orig: torch.Tensor, mask: torch.Tensor, process: Process | torch.Tensor):
        check_image("x_orig", x_orig)
        H, W = x_orig.shape[-2:]
        if not isinstance(mask, torch.Tensor):
            raise ValueError(
                f"mask must be a torch.Tensor of shape (H, W) = ({H}, {W}) or (B, 1, H, W), got {type(mask).__name__}"
            )
        m = mask.to(x_orig.dtype).to(x_orig.device)
        m = m.view(1, 1, H, W) if m.ndim == 2 and tuple(m.shape) == (H, W) else m
        if (
            m.ndim != 4
            or m.shape[-2:] != (H, W)
            or m.shape[0] not in (1, x_orig.shape[0])
            or m.shape[1] not in (1, x_orig.shape[1])
        ):
            raise ValueError(
                f"mask must have shape ({H}, {W}), (1, 1, {H}, {W}) or (B, 1 or C, {H}, {W}), got {tuple(mask.shape)}"
            )
        if not bool(((m >= 0) & (m <= 1)).all()):
            raise ValueError("mask values must lie in [0, 1] (1: fill in, 0: keep)")
        if not bool(m.any()):
            raise ValueError("mask is empty: mark the pixels to fill in with 1 (0 keeps the original)")
        self.x_orig, self.mask = x_orig, m
        self.process = DDPM(process) if isinstance(process, torch.Tensor) else process

    def __call__(self, x: torch.Tensor, t, generator: torch.Generator | None) -> torch.Tensor:
        known = (
            self.x_orig
            if t == self.process.end
            else self.process.noise(self.x_orig, t, randn_like(self.x_orig, generator))
        )
        return self.mask * x + (1 - self.mask) * known


Steps = Generator[
    tuple[torch.Tensor, "int | float", torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"], torch.Tensor
]


class Loop(Generator):
    """A loop's generator (the protocol above) that also says how many model calls it makes (``total``) and over which
    process (``process``: the names and captions of its steps): what a server's progress bar and trajectory show."""

    def __init__(self, steps: Steps, total: int, process: Process):
        self.steps, self.total, self.process = steps, total, process

    def send(self, value: Any):
        return self.steps.send(value)

    def throw(self, *args):
        return self.steps.throw(*args)


def with_steps(build: Callable[..., Steps]):
    """A course function over one loop: build(denoiser, ...) checks its arguments and makes the loop (a generator of its
    model calls, lab.sampling's protocol); the function returned runs it with the denoiser and returns what it makes.
    build itself stays as the function's ``steps``: ``lab.sdedit.steps(den, ...)`` is the loop unrun, for a server that
    runs many loops as one (serving.batching)."""

    @functools.wraps(build)
    def run(denoiser, *args, **kwargs):
        return run_steps(build(denoiser, *args, **kwargs), denoiser)

    run.steps = build
    return run


def denoise(
    denoiser: Denoiser,
    x: torch.Tensor,
    timesteps: Sequence,
    guide: Guide,
    *,
    i_start: int = 0,
    constraint: Constraint | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    variance_type: str | None = None,
    clip_x0: float | None = None,
    threshold: DynamicThreshold | None = None,
) -> torch.Tensor:
    """Denoise x, at timesteps[i_start], to the clean image by the backend's process, through each following time.

    DDPM: step A.3 down the integer timesteps, then one step to CLEAN (alpha_bar = 1, no noise added), as diffusers
    does. Linear flow: Euler steps up the times (in [0, 1)), then one step to t = 1. Each step calls the model once,
    on the batch the guide builds. callback gets {"i", "t", "x_t", "x"} after every step, "x" being the new sample,
    with the next time and the step's clean estimate in the edition's names: DDPM "t_prev" and "x0_hat", flow
    "t_next" and "x1_hat". denoise_steps is the same loop unrun.
    variance_type, clip_x0, threshold: DDPM's options (lab.diffusion.step).
    """
    steps = denoise_steps(
        denoiser,
        x,
        timesteps,
        guide,
        i_start=i_start,
        constraint=constraint,
        callback=callback,
        generator=generator,
        variance_type=variance_type,
        clip_x0=clip_x0,
        threshold=threshold,
    )
    return run_steps(steps, denoiser)


def denoise_steps(
    denoiser: Denoiser,
    x: torch.Tensor,
    timesteps: Sequence,
    guide: Guide,
    *,
    i_start: int = 0,
    constraint: Constraint | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
    variance_type: str | None = None,
    clip_x0: float | None = None,
    threshold: DynamicThreshold | None = None,
) -> Steps:
    """The loop of ``denoise`` as a generator of its model calls: it yields each step's batched model input
    (x_in, t, c_in), is sent the model's (prediction, variance) for it, and returns the clean x. Arguments are checked
    now."""
    process = process_of(denoiser, variance_type, clip_x0, threshold)
    check_image("x", x, denoiser.image_shape)
    return loop(
        process, x, timesteps, guide, i_start=i_start, constraint=constraint, callback=callback, generator=generator
    )


def loop(
    process: Process,
    x: torch.Tensor,
    times: Sequence,
    guide: Guide,
    *,
    i_start: int = 0,
    constraint: Constraint | None = None,
    callback: Callback | None = None,
    generator: torch.Generator | None = None,
) -> Steps:
    """The one loop over a process, as a generator of its model calls (any model: a backend, a velocity function)."""
    ts = process.check_times(times)
    i_start = check_int("i_start", i_start, 0, len(ts) - 1)
    check_image("x", x)
    if not isinstance(guide, Guide):
        raise ValueError(
            f"guide must be a lab.guidance.Guide (plain, cfg, anagram, factorized), got {type(guide).__name__}"
        )
    return Loop(_loop(process, x, ts, guide, i_start, constraint, callback, generator), len(ts) - i_start, process)


@torch.no_grad()
def _loop(process, x, ts, guide, i_start, constraint, callback, generator) -> Steps:
    for i in range(i_start, len(ts)):
        t = ts[i]
        t_next = ts[i + 1] if i + 1 < len(ts) else process.end
        x_in, c_in = guide.inputs(x)
        prediction, variance = yield x_in, t, c_in  # the step's one model call
        prediction, variance = guide.combine(prediction, variance)
        x_next, x_hat = process.step(x, prediction, t, t_next, variance=variance, generator=generator)
        if constraint is not None:
            x_next = constraint(x_next, t_next, generator)
        if callback is not None:
            callback({"i": i, "t": t, "x_t": x, "x": x_next} | process.names(t_next, x_hat))
        x = x_next
    return x


def run_steps(steps: Steps, model: Callable) -> torch.Tensor:
    """Run a loop generator with a model, one call per step, here: model(x_in, t, c_in) -> (prediction, variance)."""
    try:
        request = next(steps)
        while True:
            request = steps.send(model(*request))
    except StopIteration as done:
        return done.value
