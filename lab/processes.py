"""The two processes the one loop runs: the Fall 2024 edition's DDPM and the Fall 2026 edition's linear flow.

A process says how a clean image becomes x_t at a time t (``noise``), what the clean image is estimated to be from
the model's prediction there (``estimate``), and one step of the sampler from t to the next time (``step``). The loop
(lab.sampling) is the same for both; so are CFG, the views, the bands and a per-step constraint, which combine
predictions before the step, whatever they predict.

- ``DDPM`` [1]: t an integer timestep, T-1 (noise) down to 0, then ``CLEAN``; the model predicts the noise eps (and,
  for DeepFloyd IF, a variance); the step is A.3 of the Fall 2024 edition (DDPM Eqs. 6-7) with its variance.
- ``LinearFlow`` [2]: t in [0, 1], 0 noise and 1 the image, x_t = (1 - t) eps + t x1 (A.1 of Fall 2026); the model
  predicts the velocity v = x1 - eps; the step is Euler's, x_{t+h} = x_t + h v (A.3), and the clean estimate
  x1_hat = x_t + (1 - t) v (A.2). No variance, no schedule.

References:
    [1] Ho et al., Denoising Diffusion Probabilistic Models, 2020.   [2] Lipman et al., Flow Matching for Generative
    Modeling, 2023; Liu et al., Flow Straight and Fast (rectified flow), 2023.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

import torch

from lab._checks import check_float, check_int
from lab.diffusion import CLEAN, DynamicThreshold, add_noise, check_step_args, estimate_x0, step

PREDICTIONS = (
    "epsilon",
    "velocity",
)  # what a backend's model predicts: DDPM's noise (Fall 2024), a velocity (Fall 2026)


class Process(Protocol):
    end: int | float  # the clean level, after the last time of a run

    def check_times(self, times: Sequence) -> list:
        """The times of a run, validated (ValueError says what they must be)."""
        ...

    def noise(self, x_clean: torch.Tensor, t, eps: torch.Tensor) -> torch.Tensor:
        """x_t from the clean image and the noise eps (t may be the end: the clean image)."""
        ...

    def estimate(self, x_t: torch.Tensor, t, prediction: torch.Tensor) -> torch.Tensor:
        """The one-step estimate of the clean image from the model's prediction at t."""
        ...

    def step(self, x_t, prediction, t, t_next, *, variance=None, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """(x at t_next, the clean estimate) after one step of the sampler."""
        ...

    next_name: str  # a step's next time and clean estimate in the edition's names (a loop's callback dict)
    estimate_name: str

    def names(self, t_next, x_hat) -> dict:
        """A step's next time and clean estimate by the edition's names, for a loop's callback."""
        ...

    def label(self, t, t_next) -> str:
        """A step's caption in a trajectory: "t = 990 -> 960", "t = 0.50 -> 0.55"."""
        ...


class DDPM:
    """DDPM over a model's alphas_cumprod: integer timesteps, eps prediction, step A.3 with the fixed or learned variance."""

    end = CLEAN

    def __init__(
        self,
        alphas_cumprod: torch.Tensor,
        variance_type: str = "fixed_small",
        clip_x0: float | None = None,
        threshold: DynamicThreshold | None = None,
    ):
        check_step_args(variance_type, clip_x0, threshold)
        self.alphas_cumprod, self.variance_type, self.clip_x0, self.threshold = (
            alphas_cumprod,
            variance_type,
            clip_x0,
            threshold,
        )

    def check_times(self, times):
        return check_timesteps(times, len(self.alphas_cumprod))

    def noise(self, x0, t, eps):
        return add_noise(x0, t, self.alphas_cumprod, eps)

    def estimate(self, x_t, t, eps):
        return estimate_x0(x_t, t, self.alphas_cumprod, eps)

    def step(self, x_t, eps, t, t_next, *, variance=None, generator=None):
        return step(
            x_t,
            eps,
            t,
            t_next,
            self.alphas_cumprod,
            variance=variance,
            variance_type=self.variance_type,
            generator=generator,
            clip_x0=self.clip_x0,
            threshold=self.threshold,
        )

    next_name, estimate_name = "t_prev", "x0_hat"

    def names(self, t_next, x_hat):
        return {self.next_name: t_next, self.estimate_name: x_hat}

    def label(self, t, t_next):
        return f"t = {t} -> {'clean' if t_next == CLEAN else t_next}"


class LinearFlow:
    """Linear flow matching: x_t = (1 - t) eps + t x1 for t in [0, 1], velocity prediction, Euler steps."""

    end = 1.0

    def check_times(self, times):
        ts = [check_float("times", t, 0, 1) for t in times]
        if not ts or ts[-1] >= 1 or any(a >= b for a, b in zip(ts, ts[1:])):
            raise ValueError(f"flow times must be a non-empty, strictly increasing list of numbers in [0, 1), got {ts}")
        return ts

    def noise(self, x1, t, eps):
        """x_t = (1 - t) eps + t x1, A.1 (t a number, or a (B,) tensor of one t per image)."""
        t = _per_image(t, x1)
        return (1 - t) * eps + t * x1

    def estimate(self, x_t, t, v):
        """x1_hat = x_t + (1 - t) v, A.2."""
        return x_t + (1 - _per_image(t, x_t)) * v

    def step(self, x_t, v, t, t_next, *, variance=None, generator=None):
        """x_{t+h} = x_t + h v with h = t_next - t, A.3 (Euler); and x1_hat."""
        return x_t + (t_next - t) * v, self.estimate(x_t, t, v)

    next_name, estimate_name = "t_next", "x1_hat"

    def names(self, t_next, x_hat):
        return {self.next_name: t_next, self.estimate_name: x_hat}

    def label(self, t, t_next):
        return f"t = {t:.2f} -> {t_next:.2f}"


def check_timesteps(timesteps: Sequence[int], T: int) -> list[int]:
    """DDPM's timesteps must be distinct integers in [0, T-1], in decreasing order."""
    ts = [check_int("timesteps", t, 0, T - 1) for t in timesteps]
    if not ts or any(a <= b for a, b in zip(ts, ts[1:])):
        raise ValueError(
            f"timesteps must be a non-empty, strictly decreasing list of integers in [0, {T - 1}], got {ts}"
        )
    return ts


def process_of(
    denoiser, variance_type: str | None = None, clip_x0: float | None = None, threshold: DynamicThreshold | None = None
) -> Process:
    """The process a backend's model was trained for (its ``prediction``), with DDPM's options (variance_type: the
    backend's own by default); ValueError for an option the process has not."""
    if denoiser.prediction not in PREDICTIONS:
        raise ValueError(f"a backend's prediction must be one of {PREDICTIONS}, got {denoiser.prediction!r}")
    if denoiser.prediction == "velocity":
        if variance_type not in (None, "fixed_small") or clip_x0 is not None or threshold is not None:
            raise ValueError(
                "a flow backend (velocity prediction) has no variance, x0 clipping or thresholding: leave them unset"
            )
        return LINEAR_FLOW
    variance_type = variance_type or denoiser.variance_type
    check_step_args(variance_type, clip_x0, threshold)
    if variance_type == "learned_range" and denoiser.variance_type != "learned_range":
        raise ValueError(
            f"variance_type 'learned_range' needs a model with a variance output; this one is {denoiser.variance_type!r}"
        )
    return DDPM(denoiser.alphas_cumprod, variance_type, clip_x0, threshold)


def _per_image(t, x: torch.Tensor):
    """t as a number, or a (B,) tensor as (B, 1, 1, 1) on x's device and dtype."""
    if isinstance(t, torch.Tensor) and t.ndim == 1:
        return t.to(x.device, x.dtype).view(-1, 1, 1, 1)
    return float(t)


def euler_times(t_start: float = 0.0, step_size: float = 0.02) -> list[float]:
    """The times of Euler sampling from t_start to 1 in steps of step_size, the last one shortened to end exactly at 1:
    from 0 at h = 0.02 fifty steps, from 0.5 twenty-five, from 0.93 four (0.93, 0.95, 0.97, 0.99)."""
    t_start = check_float("t_start", t_start, 0, 1)
    step_size = check_float("step_size", step_size, 0, 1, strict_low=True)
    if t_start >= 1:
        raise ValueError(f"t_start must be below 1 (the image), got {t_start}")
    n = math.ceil(round((1 - t_start) / step_size, 9))  # round: 0.5 / 0.02 is 24.999999999999996 in floats
    return [t_start + k * step_size for k in range(n)]


LINEAR_FLOW = LinearFlow()
