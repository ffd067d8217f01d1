"""A model's noise schedule: betas and alpha_bar (``alphas_cumprod``), as the model was trained with them.

Both schedules are computed exactly as diffusers' ``DDPMScheduler`` computes them (float32), so
``alphas_cumprod`` of ours and of a scheduler with the same config are equal bit for bit. The schedule is part of
a model, as a scheduler config ships beside a diffusers UNet; ``lab.schedules`` adds the course's strided timesteps.

References:
    [1] Ho et al., Denoising Diffusion Probabilistic Models, 2020 (linear betas).
    [2] Nichol & Dhariwal, Improved DDPM, 2021, Eq. (17) (cosine, "squaredcos_cap_v2": DeepFloyd IF).
"""

from __future__ import annotations

import math
import numbers

import torch

SCHEDULES = ("linear", "squaredcos_cap_v2")


def linear_betas(T: int, beta_start: float = 1e-4, beta_end: float = 0.02) -> torch.Tensor:
    """Betas spaced linearly from beta_start to beta_end, Sec. 4 [1]. Shape (T,)."""
    _check_T(T)
    return torch.linspace(beta_start, beta_end, T, dtype=torch.float32)


def cosine_betas(T: int, max_beta: float = 0.999) -> torch.Tensor:
    """Betas of alpha_bar(s) = cos^2((s + 0.008) / 1.008 * pi / 2), Eq. (17) [2], capped at max_beta. Shape (T,)."""
    _check_T(T)

    def alpha_bar(s: float) -> float:
        return math.cos((s + 0.008) / 1.008 * math.pi / 2) ** 2

    betas = [min(1 - alpha_bar((i + 1) / T) / alpha_bar(i / T), max_beta) for i in range(T)]
    return torch.tensor(betas, dtype=torch.float32)


def make_alphas_cumprod(schedule: str, T: int) -> torch.Tensor:
    """alpha_bar_t = prod_{s<=t} (1 - beta_s) for t in [0, T-1], Eq. (4) [1]. Shape (T,)."""
    if schedule == "linear":
        betas = linear_betas(T)
    elif schedule == "squaredcos_cap_v2":
        betas = cosine_betas(T)
    else:
        raise ValueError(f"schedule must be one of {SCHEDULES}, got {schedule!r}")
    return torch.cumprod(1.0 - betas, dim=0)


def _check_T(T) -> None:
    if isinstance(T, bool) or not isinstance(T, numbers.Integral) or T < 1:
        raise ValueError(f"T must be an integer >= 1, got {T!r}")
