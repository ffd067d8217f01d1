"""The one denoising loop of Part A, and its per-step constraint for inpainting.

Sampling, SDEdit, CFG, inpainting, text image-to-image, anagrams and hybrids are all this loop: they differ
in where it starts (i_start), how the noise estimate is made (a ``Guide``), and what is imposed after each
step (a constraint). Like k-diffusion's samplers, it reports each step to a callback as a dict.

The loop is written as a generator of its model calls (``denoise_steps``): ``denoise`` runs it with the backend,
one call per step; a server runs many loops at once with one model call per round for all (lab.batching).
"""

from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Callable, Generator, Sequence

import torch

from lab._checks import check_image, check_int
from lab.denoiser import Denoiser
from lab.diffusion import CLEAN, DynamicThreshold, add_noise, check_step_args, randn_like, step
from lab.guidance import Guide

Callback = Callable[[dict], None]
Constraint = Callable[[torch.Tensor, int, "torch.Generator | None"], torch.Tensor]


def check_timesteps(timesteps: Sequence[int], T: int) -> list[int]:
    """Timesteps must be distinct integers in [0, T-1], in decreasing order."""
    ts = [check_int("timesteps", t, 0, T - 1) for t in timesteps]
    if not ts or any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(f"timesteps must be a non-empty, strictly decreasing list of integers in [0, {T - 1}], got {ts}")
    return ts


class Inpaint:
    """After every step keep the known pixels: x_t <- m x_t + (1 - m) forward(x_orig, t), Eq. A.5.

    mask is 1 where new content goes and 0 where x_orig stays; it broadcasts to x_orig: (H, W), (1|B, 1|C, H, W).
    """

    def __init__(self, x_orig: torch.Tensor, mask: torch.Tensor, alphas_cumprod: torch.Tensor):
        check_image("x_orig", x_orig)
        H, W = x_orig.shape[-2:]
        if not isinstance(mask, torch.Tensor):
            raise ValueError(f"mask must be a torch.Tensor of shape (H, W) = ({H}, {W}) or (B, 1, H, W), got {type(mask).__name__}")
        m = mask.to(x_orig.dtype).to(x_orig.device)
        m = m.view(1, 1, H, W) if m.ndim == 2 and tuple(m.shape) == (H, W) else m
        if m.ndim != 4 or m.shape[-2:] != (H, W) or m.shape[0] not in (1, x_orig.shape[0]) or m.shape[1] not in (1, x_orig.shape[1]):
            raise ValueError(f"mask must have shape ({H}, {W}), (1, 1, {H}, {W}) or (B, 1 or C, {H}, {W}), got {tuple(mask.shape)}")
        if not bool(((m >= 0) & (m <= 1)).all()):
            raise ValueError("mask values must lie in [0, 1] (1: fill in, 0: keep)")
        if not bool(m.any()):
            raise ValueError("mask is empty: mark the pixels to fill in with 1 (0 keeps the original)")
        self.x_orig, self.mask, self.alphas_cumprod = x_orig, m, alphas_cumprod

    def __call__(self, x: torch.Tensor, t: int, generator: torch.Generator | None) -> torch.Tensor:
        known = self.x_orig if t == CLEAN else add_noise(self.x_orig, t, self.alphas_cumprod, randn_like(self.x_orig, generator))
        return self.mask * x + (1 - self.mask) * known


Steps = Generator[tuple[torch.Tensor, int, torch.Tensor], tuple[torch.Tensor, "torch.Tensor | None"], torch.Tensor]
_STEPPING: ContextVar[bool] = ContextVar("lab_stepping", default=False)


@contextmanager
def stepping():
    """Inside it, ``denoise`` (and every course function over it) returns its loop unrun, as ``denoise_steps`` makes it,
    for a server that runs many loops as one (lab.batching); outside, it runs the loop."""
    token = _STEPPING.set(True)
    try:
        yield
    finally:
        _STEPPING.reset(token)


def denoise(
    denoiser: Denoiser,
    x: torch.Tensor,
    timesteps: Sequence[int],
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
    """Denoise x, at timesteps[i_start], down to the clean image by step A.3 through each following timestep.

    After the last timestep the loop takes one step to CLEAN (alpha_bar = 1, no noise added), as diffusers
    does. Each step calls the model once, on the batch the guide builds. callback gets {"i", "t", "t_prev",
    "x_t", "x0_hat", "x"} after every step, "x" being the new sample at t_prev. Under ``stepping()`` the loop
    is returned unrun (see denoise_steps).
    """
    steps = denoise_steps(
        denoiser, x, timesteps, guide, i_start=i_start, constraint=constraint, callback=callback, generator=generator,
        variance_type=variance_type, clip_x0=clip_x0, threshold=threshold,
    )  # fmt: skip
    return run_unless_stepping(steps, denoiser)


def run_unless_stepping(steps: Steps, denoiser: Denoiser):
    """steps run with denoiser (their result), or, under stepping(), steps themselves."""
    return steps if _STEPPING.get() else run_steps(steps, denoiser)


def denoise_steps(denoiser: Denoiser, x: torch.Tensor, timesteps: Sequence[int], guide: Guide, *, i_start: int = 0,
                  constraint: Constraint | None = None, callback: Callback | None = None,
                  generator: torch.Generator | None = None, variance_type: str | None = None,
                  clip_x0: float | None = None, threshold: DynamicThreshold | None = None) -> Steps:  # fmt: skip
    """The loop of ``denoise`` as a generator of its model calls: it yields each step's batched model input
    (x_in, t, c_in), is sent the model's (eps, variance) for it, and returns the clean x. Arguments are checked now."""
    ts = check_timesteps(timesteps, denoiser.T)
    i_start = check_int("i_start", i_start, 0, len(ts) - 1)
    check_image("x", x, denoiser.image_shape)
    if not isinstance(guide, Guide):
        raise ValueError(f"guide must be a lab.guidance.Guide (plain, cfg, anagram, factorized), got {type(guide).__name__}")
    variance_type = variance_type or denoiser.variance_type
    check_step_args(variance_type, clip_x0, threshold)
    if variance_type == "learned_range" and denoiser.variance_type != "learned_range":
        raise ValueError(f"variance_type 'learned_range' needs a model with a variance output; this one is {denoiser.variance_type!r}")
    return _loop(denoiser.alphas_cumprod, x, ts, guide, i_start, constraint, callback, generator, variance_type, clip_x0, threshold)


@torch.no_grad()
def _loop(alphas_cumprod, x, ts, guide, i_start, constraint, callback, generator, variance_type, clip_x0, threshold) -> Steps:
    for i in range(i_start, len(ts)):
        t = ts[i]
        t_prev = ts[i + 1] if i + 1 < len(ts) else CLEAN
        x_in, c_in = guide.inputs(x)
        eps, variance = yield x_in, t, c_in  # the step's one model call
        eps, variance = guide.combine(eps, variance)
        x_prev, x0_hat = step(
            x, eps, t, t_prev, alphas_cumprod, variance=variance, variance_type=variance_type,
            generator=generator, clip_x0=clip_x0, threshold=threshold,
        )  # fmt: skip
        if constraint is not None:
            x_prev = constraint(x_prev, t_prev, generator)
        if callback is not None:
            callback({"i": i, "t": t, "t_prev": t_prev, "x_t": x, "x0_hat": x0_hat, "x": x_prev})
        x = x_prev
    return x


def run_steps(steps: Steps, model: Callable) -> torch.Tensor:
    """Run a loop generator with a model, one call per step, here: model(x_in, t, c_in) -> (eps, variance)."""
    try:
        request = next(steps)
        while True:
            request = steps.send(model(*request))
    except StopIteration as done:
        return done.value
