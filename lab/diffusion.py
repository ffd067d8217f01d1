"""The forward process, the one-step estimate of x0, and one reverse step from t to t_prev < t.

Equation numbers: the course's A.1-A.3; [1] is DDPM (Ho et al., 2020); [2] Improved DDPM (Nichol &
Dhariwal, 2021); [3] Imagen (Saharia et al., 2022). t indexes ``alphas_cumprod`` (0 .. T-1) as in
diffusers; ``CLEAN`` (-1) is the level after the last timestep, alpha_bar = 1, diffusers' ``prev_t = -1``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from lab._checks import check_float, check_image, check_int

CLEAN = -1  # t_prev of the last step: the clean image, alpha_bar = 1
VARIANCE_TYPES = ("fixed_small", "learned_range")


@dataclass(frozen=True)
class DynamicThreshold:
    """Dynamic thresholding of x0_hat, Sec. 2.3 [3], as DeepFloyd IF's scheduler applies it."""

    ratio: float = 0.95  # percentile of |x0_hat| per image that becomes the clip value s
    max_value: float = 1.5  # s is clamped to [1, max_value]; x0_hat is clipped to [-s, s] and divided by s


def alpha_bar_at(alphas_cumprod: torch.Tensor, t) -> torch.Tensor:
    """alpha_bar_t as a 0-d float32 tensor for an int t in [-1, T-1] (-1, CLEAN: 1), or (B, 1, 1, 1) for a (B,) tensor."""
    if isinstance(t, torch.Tensor) and t.ndim == 1:
        table = torch.cat([alphas_cumprod.new_ones(1), alphas_cumprod])  # index 0 is CLEAN
        return table.to(t.device)[t + 1].view(-1, 1, 1, 1)
    t = int(t)
    return alphas_cumprod[t] if t >= 0 else alphas_cumprod.new_tensor(1.0)


def _check_t(name: str, t, T: int, low: int = 0) -> None:
    if isinstance(t, torch.Tensor) and t.ndim == 1:
        if t.is_floating_point() or t.numel() == 0 or int(t.min()) < low or int(t.max()) > T - 1:
            raise ValueError(f"{name} must hold integers in [{low}, {T - 1}], got {t.tolist()}")
    else:
        check_int(name, t, low, T - 1)


def add_noise(x0: torch.Tensor, t, alphas_cumprod: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps, Eq. A.2 (t may be CLEAN: x_t = x0)."""
    alpha_bar = alpha_bar_at(alphas_cumprod, t).to(x0.device)
    return alpha_bar.sqrt() * x0 + (1 - alpha_bar).sqrt() * eps


def as_generator(seed: int | torch.Generator | None) -> torch.Generator | None:
    """A generator from an int seed (CPU, so results match across devices); a generator or None as is."""
    if seed is None or isinstance(seed, torch.Generator):
        return seed
    return torch.Generator().manual_seed(check_int("seed", seed, 0, 2**63 - 1))


def randn_like(x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Standard normal noise shaped like x, drawn on the generator's device (as diffusers' randn_tensor does)."""
    device = generator.device if generator is not None else x.device
    return torch.randn(x.shape, generator=generator, device=device, dtype=x.dtype).to(x.device)


def forward(
    x0: torch.Tensor, t, alphas_cumprod: torch.Tensor, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Sample q(x_t | x0) = N(sqrt(alpha_bar_t) x0, (1 - alpha_bar_t) I), Eq. A.1/A.2; t an int or a (B,) tensor."""
    check_image("x0", x0)
    _check_t("t", t, len(alphas_cumprod))
    return add_noise(x0, t, alphas_cumprod, randn_like(x0, generator))


def estimate_x0(x_t: torch.Tensor, t, alphas_cumprod: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
    """One-step estimate x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t), Eq. A.2 solved for x0."""
    alpha_bar = alpha_bar_at(alphas_cumprod, t).to(x_t.device)
    return (x_t - (1 - alpha_bar) ** 0.5 * eps) / alpha_bar**0.5


def dynamic_threshold(x0_hat: torch.Tensor, threshold: DynamicThreshold) -> torch.Tensor:
    """Clip each image to [-s, s] and divide by s, s the ratio-quantile of |x0_hat| clamped to [1, max_value], Sec. 2.3 [3]."""
    B = x0_hat.shape[0]
    flat = x0_hat.float().reshape(B, -1)  # (B, C*H*W); quantile needs float32
    s = torch.quantile(flat.abs(), threshold.ratio, dim=1).clamp(1, threshold.max_value).unsqueeze(1)  # (B, 1)
    return (flat.clamp(-s, s) / s).reshape(x0_hat.shape).to(x0_hat.dtype)


def step(
    x_t: torch.Tensor,
    eps: torch.Tensor,
    t: int,
    t_prev: int,
    alphas_cumprod: torch.Tensor,
    *,
    variance: torch.Tensor | None = None,
    variance_type: str = "fixed_small",
    generator: torch.Generator | None = None,
    clip_x0: float | None = None,
    threshold: DynamicThreshold | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One reverse step x_t -> x_t_prev, Eq. A.3 (DDPM Eqs. 6-7 [1]) plus v_sigma; returns (x_t_prev, x0_hat).

    variance_type "fixed_small" adds noise of the posterior variance beta_tilde, Eq. (7) [1]; "learned_range"
    interpolates log variance between beta_tilde and beta_t with the model's output v in [-1, 1], Eq. (15) [2].
    No noise is added on the step to CLEAN.
    """
    # 1. alphas and betas of the strided step, Eq. A.3
    alpha_bar = alpha_bar_at(alphas_cumprod, t)
    alpha_bar_prev = alpha_bar_at(alphas_cumprod, t_prev)
    alpha = alpha_bar / alpha_bar_prev
    beta = 1 - alpha

    # 2. predicted original sample, Eq. A.2 / Eq. (15) [1]
    x0_hat = (x_t - (1 - alpha_bar) ** 0.5 * eps) / alpha_bar**0.5

    # 3. optional clipping or dynamic thresholding of x0_hat (the course's A.3 has neither)
    if threshold is not None:
        x0_hat = dynamic_threshold(x0_hat, threshold)
    elif clip_x0 is not None:
        x0_hat = x0_hat.clamp(-clip_x0, clip_x0)

    # 4. posterior mean, Eq. A.3 / Eq. (7) [1]
    x0_coeff = alpha_bar_prev**0.5 * beta / (1 - alpha_bar)
    x_t_coeff = alpha**0.5 * (1 - alpha_bar_prev) / (1 - alpha_bar)
    x_prev = x0_coeff * x0_hat + x_t_coeff * x_t

    # 5. v_sigma: noise with the fixed or the learned variance
    if t_prev != CLEAN:
        noise = randn_like(x_t, generator)
        posterior_variance = ((1 - alpha_bar_prev) / (1 - alpha_bar) * beta).clamp(min=1e-20)  # beta_tilde, Eq. (7) [1]
        if variance_type == "learned_range":
            frac = (variance + 1) / 2  # v in [-1, 1] -> [0, 1], Eq. (15) [2]
            log_variance = frac * beta.log() + (1 - frac) * posterior_variance.log()
            x_prev = x_prev + (0.5 * log_variance).exp() * noise
        else:
            x_prev = x_prev + posterior_variance**0.5 * noise
    return x_prev, x0_hat


def check_step_args(variance_type: str, clip_x0, threshold) -> None:
    """Validate the options of step once, before a loop over steps."""
    if variance_type not in VARIANCE_TYPES:
        raise ValueError(f"variance_type must be one of {VARIANCE_TYPES}, got {variance_type!r}")
    if clip_x0 is not None:
        check_float("clip_x0", clip_x0, 0, None, strict_low=True)
    if threshold is not None:
        check_float("threshold.ratio", threshold.ratio, 0, 1, strict_low=True)
        check_float("threshold.max_value", threshold.max_value, 1, None)
