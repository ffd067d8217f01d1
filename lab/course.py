"""The course's functions, by the course's names, as thin entry points over the one loop (``denoise``).

Every function takes the backend (a ``Denoiser``) first and a ``torch.Generator`` (or an int seed) for its
randomness. Defaults are the course's: strided timesteps 990, 960, ..., 0; prompt "a high quality photo";
CFG scale 7; hybrid blur kernel 33, sigma 2.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from lab import diffusion
from lab._checks import check_image, check_int
from lab.denoiser import Denoiser
from lab.diffusion import as_generator
from lab.fall2024 import CFG_SCALE, HYBRID_KERNEL, HYBRID_SIGMA
from lab.filters import check_kernel, colour_bands, frequency_bands
from lab.guidance import Guide
from lab.processes import check_timesteps, process_of
from lab.sampling import Callback, InpaintConstraint, Loop, denoise_steps, with_steps
from lab.schedules import strided_timesteps
from lab.views import get_view
from models.backend import DEFAULT_PROMPT, UNCONDITIONAL  # the course's "null" prompt, and its negative prompt for CFG


def default_timesteps(denoiser: Denoiser, stride: int = 30) -> list[int]:
    """The course's strided timesteps for this backend: 990, 960, ..., 0 for T = 1000."""
    _check_noise(denoiser)
    return strided_timesteps(denoiser.T, stride)


def _check_noise(denoiser: Denoiser) -> None:
    if denoiser.prediction != "epsilon":
        raise ValueError(
            "this is a Fall 2024 (DDPM) function and this backend predicts a velocity (Fall 2026, flow): "
            "use lab.flow.sample, lab.flow.edit_image ... with it, or pick a DDPM backend"
        )


def pure_noise(denoiser: Denoiser, n: int, generator=None) -> torch.Tensor:
    """x_T ~ N(0, I): n images of the backend's shape, dtype and device. (n, C, H, W)."""
    n = check_int("n", n, 1, None)
    shape = (n, *denoiser.image_shape)
    return diffusion.randn_like(
        torch.empty(shape, dtype=denoiser.dtype, device=denoiser.device), as_generator(generator)
    )


def forward(im: torch.Tensor, t, denoiser: Denoiser, generator=None) -> torch.Tensor:
    """1.1: noisy_im = forward(im, t), Eq. A.1/A.2, with the backend's alphas_cumprod."""
    _check_noise(denoiser)
    return diffusion.forward(im, t, denoiser.alphas_cumprod, as_generator(generator))


@with_steps
def one_step_denoise(denoiser: Denoiser, x_t: torch.Tensor, t: int, prompt: str = DEFAULT_PROMPT) -> torch.Tensor:
    """1.3: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t), eps_hat from one model call."""
    _check_noise(denoiser)
    check_image("x_t", x_t, denoiser.image_shape)
    t = check_int("t", t, 0, denoiser.T - 1)
    with torch.no_grad():
        cond = denoiser.encode([prompt])
    return Loop(
        _one_step(denoiser.alphas_cumprod, x_t, t, cond.expand(x_t.shape[0], *cond.shape[1:])), 1, process_of(denoiser)
    )


@torch.no_grad()
def _one_step(alphas_cumprod: torch.Tensor, x_t: torch.Tensor, t: int, cond: torch.Tensor):
    """The one model call of 1.3, in the loop's protocol (lab.sampling.denoise_steps)."""
    eps, _ = yield x_t, t, cond
    return diffusion.estimate_x0(x_t, t, alphas_cumprod, eps)


def _guide(denoiser: Denoiser, prompts: Sequence[str], scale: float | None, **terms) -> Guide:
    """A Guide over the prompts' conditions: no CFG for scale None, else CFG against the unconditional prompt ""."""
    _check_noise(denoiser)
    rows = denoiser.encode([*prompts] + ([] if scale is None else [UNCONDITIONAL]))  # one call: one T5 load on IF
    conds = [rows[i : i + 1] for i in range(len(prompts))]
    if scale is None:
        return Guide(conds, **terms)
    return Guide(conds, uncond=rows[-1:], scale=scale, **terms)


def _run(denoiser, x, guide, i_start=0, timesteps=None, generator=None, callback=None, constraint=None):
    """The course's loop over x (lab.sampling.denoise_steps), unrun."""
    timesteps = default_timesteps(denoiser) if timesteps is None else timesteps
    return denoise_steps(
        denoiser,
        x,
        timesteps,
        guide,
        i_start=i_start,
        constraint=constraint,
        callback=callback,
        generator=as_generator(generator),
        clip_x0=denoiser.clip_x0,
    )


@with_steps
def iterative_denoise(
    denoiser: Denoiser,
    x_t: torch.Tensor,
    i_start: int,
    prompt: str = DEFAULT_PROMPT,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.4: denoise x_t, at timesteps[i_start], by step A.3 down the strided timesteps (no CFG)."""
    return _run(denoiser, x_t, _guide(denoiser, [prompt], None), i_start, timesteps, generator, callback)


@with_steps
def iterative_denoise_cfg(
    denoiser: Denoiser,
    x_t: torch.Tensor,
    i_start: int,
    prompt: str = DEFAULT_PROMPT,
    scale: float = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.6: iterative_denoise with CFG, eps = eps_u + scale (eps_c - eps_u), Eq. A.4."""
    return _run(denoiser, x_t, _guide(denoiser, [prompt], scale), i_start, timesteps, generator, callback)


@with_steps
def sample(
    denoiser: Denoiser,
    n: int = 5,
    prompt: str = DEFAULT_PROMPT,
    scale: float | None = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.5 / 1.6: n images from pure noise (i_start = 0); scale None samples without CFG."""
    generator = as_generator(generator)
    x = pure_noise(denoiser, n, generator)
    return _run(denoiser, x, _guide(denoiser, [prompt], scale), 0, timesteps, generator, callback)


@with_steps
def sdedit(
    denoiser: Denoiser,
    im: torch.Tensor,
    i_start: int,
    prompt: str = DEFAULT_PROMPT,
    scale: float | None = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.7 / 1.7.3: noise im to timesteps[i_start] (forward), then denoise it with CFG under prompt."""
    generator = as_generator(generator)
    timesteps = check_timesteps(default_timesteps(denoiser) if timesteps is None else timesteps, denoiser.T)
    i_start = check_int("i_start", i_start, 0, len(timesteps) - 1)
    x_t = forward(im, timesteps[i_start], denoiser, generator)
    return _run(denoiser, x_t, _guide(denoiser, [prompt], scale), i_start, timesteps, generator, callback)


@with_steps
def inpaint(
    denoiser: Denoiser,
    im: torch.Tensor,
    mask: torch.Tensor,
    prompt: str = DEFAULT_PROMPT,
    scale: float | None = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.7.2: sample from pure noise, keeping forward(im, t) where mask is 0 after every step, Eq. A.5."""
    check_image("im", im, denoiser.image_shape)
    constraint = InpaintConstraint(im, mask, denoiser.alphas_cumprod)
    generator = as_generator(generator)
    x = pure_noise(denoiser, im.shape[0], generator)
    return _run(denoiser, x, _guide(denoiser, [prompt], scale), 0, timesteps, generator, callback, constraint)


@with_steps
def visual_anagrams(
    denoiser: Denoiser,
    prompts: Sequence[str],
    views: Sequence[str] = ("identity", "flip"),
    n: int = 1,
    scale: float | None = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.8: an image that shows prompts[k] when seen through views[k]; eps = mean_k V_k^-1(eps_k(V_k(x_t)))."""
    if len(prompts) != len(views) or len(prompts) < 2:
        raise ValueError(
            f"prompts and views must pair up, two or more of each; got {len(prompts)} prompts, {len(views)} views"
        )
    C, H, W = denoiser.image_shape
    guide = _guide(denoiser, prompts, scale, views=[get_view(v, H, W) for v in views], reduction="mean")
    generator = as_generator(generator)
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0, timesteps, generator, callback)


@with_steps
def make_hybrids(
    denoiser: Denoiser,
    prompts: Sequence[str],
    kernel_size: int = HYBRID_KERNEL,
    sigmas: Sequence[float] = (HYBRID_SIGMA,),
    n: int = 1,
    scale: float | None = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """1.9: a hybrid image, prompts from far (low frequencies) to near (high); eps = lowpass(eps_1) + highpass(eps_2).

    Three prompts and two sigmas (decreasing) give low / middle / high bands.
    """
    if len(prompts) < 2 or len(sigmas) != len(prompts) - 1:
        raise ValueError(
            f"make_hybrids needs len(prompts) - 1 sigmas and at least two prompts; got {len(prompts)} prompts, sigmas {tuple(sigmas)}"
        )
    C, H, W = denoiser.image_shape
    for s in sigmas:
        check_kernel(kernel_size, s, H, W)
    guide = _guide(denoiser, prompts, scale, bands=frequency_bands(kernel_size, tuple(sigmas)), reduction="sum")
    generator = as_generator(generator)
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0, timesteps, generator, callback)


@with_steps
def colour_hybrids(
    denoiser: Denoiser,
    prompts: Sequence[str],
    n: int = 1,
    scale: float | None = CFG_SCALE,
    timesteps: Sequence[int] | None = None,
    generator=None,
    callback: Callback | None = None,
) -> torch.Tensor:
    """An image that reads as prompts[0] in grey and as prompts[1] in colour: eps = grey(eps_1) + colour(eps_2),
    grey the mean over channels and colour the rest (Factorized Diffusion's colour hybrids, Geng et al. 2024)."""
    if len(prompts) != 2:
        raise ValueError(f"a colour hybrid takes two prompts (grey, colour), got {len(prompts)}")
    if denoiser.image_shape[0] != 3:
        raise ValueError(
            "a colour hybrid needs a colour backend (3 channels): this one is grey; pick Emoji (colour) or DeepFloyd IF"
        )
    guide = _guide(denoiser, prompts, scale, bands=colour_bands(), reduction="sum")
    generator = as_generator(generator)
    return _run(denoiser, pure_noise(denoiser, n, generator), guide, 0, timesteps, generator, callback)
