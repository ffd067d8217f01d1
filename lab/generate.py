"""Part B's samplers: DDPM through the one loop of Part A, flow matching by Euler steps, and the one-step denoiser;
``sample_trained`` samples any trained generator as it was trained (the pages, the trainer's grids and the CLI).

References:
    [1] Ho et al., DDPM, 2020, Algorithm 2.   [2] Lipman et al., Flow Matching for Generative Modeling, 2023.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import torch

from lab._checks import check_float, check_int
from lab.diffusion import randn_like
from lab.guidance import Guide
from lab.sampling import denoise
from lab.schedules import make_alphas_cumprod, strided_timesteps
from models.classes import CLASSES
from models.course_backend import CourseDenoiser


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """(B,) class indices -> (B, num_classes) float one-hot; index -1 -> all zeros (no class)."""
    out = torch.zeros(len(labels), num_classes, device=labels.device)
    keep = labels >= 0
    out[keep, labels[keep]] = 1
    return out


def class_grid(num_classes: int, per_class: int) -> torch.Tensor:
    """Labels 0,0,..,1,1,.. (per_class of each), for a grid with one row per class. (num_classes * per_class,)."""
    return torch.arange(num_classes).repeat_interleave(per_class)


def _class_guide(denoiser: CourseDenoiser, labels: torch.Tensor | None, scale: float) -> Guide:
    """CFG for the labels' one-hot classes against no class (all zeros), or the unconditional estimate alone."""
    zeros = torch.zeros(1, denoiser.num_classes, device=denoiser.device)
    if labels is None or not denoiser.num_classes:
        return Guide([zeros])
    return Guide([one_hot(labels.to(denoiser.device), denoiser.num_classes)], uncond=zeros, scale=scale)


def ddpm_sample(
    denoiser,
    labels: torch.Tensor | None,
    n: int,
    scale: float = 5.0,
    stride: int = 1,
    generator: torch.Generator | None = None,
    callback: Callable | None = None,
) -> torch.Tensor:
    """DDPM ancestral sampling [1] with the lab's loop: timesteps T-1 .. 0 by stride, CFG for labels."""
    n = len(labels) if labels is not None else check_int("n", n, 1, None)
    x = randn_like(torch.empty(n, *denoiser.image_shape, dtype=denoiser.dtype, device=denoiser.device), generator)
    ts = strided_timesteps(denoiser.T, check_int("stride", stride, 1, denoiser.T))
    return denoise(
        denoiser,
        x,
        ts,
        _class_guide(denoiser, labels, scale),
        generator=generator,
        callback=callback,
        clip_x0=denoiser.clip_x0,
    )


def flow_sample(
    unet,
    labels: torch.Tensor | None,
    n: int,
    steps: int = 50,
    scale: float = 5.0,
    generator: torch.Generator | None = None,
    callback: Callable | None = None,
) -> torch.Tensor:
    """Euler integration of dx/dt = u(x_t, t) from noise (t = 0) to data (t = 1) in steps of 1/steps [2], with the
    lab's loop (the linear flow process). With labels, u = u_uncond + scale (u_cond - u_uncond) (CFG), both from one
    batched call."""
    steps = check_int("steps", steps, 1, None)
    scale = check_float("scale", scale, 0, None)
    n = len(labels) if labels is not None else check_int("n", n, 1, None)
    den = CourseDenoiser(unet, None)
    x = randn_like(torch.empty(n, *den.image_shape, device=den.device), generator)
    times = [i / steps for i in range(steps)]  # 0, 1/steps, ..., then the last step to 1
    return denoise(den, x, times, _class_guide(den, labels, scale), callback=callback)


@torch.no_grad()
def denoise_once(
    unet, x: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """The single-step denoiser of Part B 1.2: (z = x + sigma eps, unet(z))."""
    sigma = check_float("sigma", sigma, 0, None)
    z = x + sigma * randn_like(x, generator)
    return z, unet(z)


def sample_trained(
    model,
    train: Mapping,
    labels: torch.Tensor | None,
    n: int,
    scale: float,
    *,
    steps: int | None = None,
    stride: int | None = None,
    generator: torch.Generator | None = None,
    callback: Callable | None = None,
) -> torch.Tensor:
    """Samples in [0, 1] of a trained DDPM or flow-matching UNet, as it was trained (train: its TrainConfig as a dict).

    DDPM: timesteps T-1 .. 0 by stride (default T // steps), x0_hat clipped to [-1, 1] for a model of images in
    [-1, 1], the data set's class prompts; flow matching: `steps` Euler steps (default its T). labels: one class
    per sample (CFG with scale), None for n unconditional samples. callback gets each step's dict (its "x" in the
    model's own range).
    """
    low = -1.0 if train.get("signed") else 0.0
    classes = labels is not None and train.get("condition") == "class"
    if train["experiment"] == "ddpm":
        prompts = CLASSES[train.get("dataset", "mnist")].prompts if classes else ()
        den = CourseDenoiser(
            model, make_alphas_cumprod(train["schedule"], train["T"]), prompts, clip_x0=1.0 if low < 0 else None
        )
        stride = stride or max(1, train["T"] // check_int("steps", steps, 1, train["T"]))
        images = ddpm_sample(den, labels if classes else None, n, scale, stride, generator, callback)
    elif train["experiment"] == "flow":
        images = flow_sample(model, labels if classes else None, n, steps or train["T"], scale, generator, callback)
    else:
        raise ValueError(f"a {train['experiment']} model does not sample: give a ddpm or flow model")
    return ((images.float() - low) / (1 - low)).clamp(0, 1)
