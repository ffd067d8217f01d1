"""The course UNet as a lab ``Denoiser``: classes as prompts, "" as the null class; DDPM's noise prediction, or flow
matching's velocity.

Used for Part B's models (DDPM: T = 300, linear betas; flow matching; images in [0, 1]) and for the bundled Part A
backends: the Fall 2024 edition's DDPM (T = 1000, DeepFloyd IF's squaredcos_cap_v2 schedule, images in [-1, 1], fixed
variance) and the Fall 2026 edition's flow (t = 0 noise to 1 the image, images in [-1, 1]).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch

from models.backend import NULL_PROMPTS, Denoiser
from models.unet import CourseUNet, inference_copy, memory_format_of


class CourseDenoiser(Denoiser):
    """``eps = unet(x_t, t / T, one_hot(class))`` (DDPM, t an integer timestep), or, given no alphas_cumprod,
    ``v = unet(x_t, t, one_hot(class))`` (flow matching, t in [0, 1]); prompts name classes (``prompts[k]`` is class k)."""

    variance_type = "fixed_small"
    row_timesteps = True  # t may be a (B,) tensor: one time per row (a server batches calls at different t)

    def __init__(
        self,
        unet: CourseUNet,
        alphas_cumprod: torch.Tensor | None,
        prompts: Sequence[str] = (),
        clip_x0: float | None = None,
        aliases: Mapping[str, int] | None = None,
    ):
        self.unet = unet.eval()
        self.alphas_cumprod = alphas_cumprod
        self.prediction = "epsilon" if alphas_cumprod is not None else "velocity"
        self.T = 0 if alphas_cumprod is None else len(alphas_cumprod)
        self.prompts = tuple(prompts)  # class k's prompt; empty for a time-only model
        self.num_classes = unet.config.num_classes
        if self.prompts and len(self.prompts) != self.num_classes:
            raise ValueError(f"prompts must name each of the {self.num_classes} classes, got {len(self.prompts)}")
        self.aliases = {p.lower(): k for k, p in enumerate(self.prompts)} | {
            k.lower(): v for k, v in (aliases or {}).items()
        }
        self.clip_x0 = clip_x0
        self.image_shape = (unet.config.in_channels, 28, 28)
        param = next(unet.parameters())
        self.device, self.dtype = param.device, param.dtype
        self.memory_format = memory_format_of(
            unet
        )  # of the model's input: its weights' (inference_copy: channels_last)

    def __call__(
        self, x_t: torch.Tensor, t: int | float | torch.Tensor, cond: torch.Tensor
    ) -> tuple[torch.Tensor, None]:
        """eps (B, C, 28, 28) of x_t at timestep t (an int, or (B,) integers), or its velocity at t in [0, 1] (a number
        or (B,) of them), under one-hot cond (B, num_classes)."""
        scale = 1 if self.prediction == "velocity" else self.T
        if isinstance(t, torch.Tensor):
            t_in = (t.to(x_t.device, torch.float64) / scale).float()  # as an int t: t / T in double, then float32
        else:
            t_in = torch.full((x_t.shape[0],), t / scale, device=x_t.device)
        with torch.no_grad():
            eps = self.unet(x_t.contiguous(memory_format=self.memory_format), t_in, cond if self.num_classes else None)
        return eps.contiguous(), None

    def for_inference(self) -> CourseDenoiser:
        """This backend for a server: BatchNorm folded into the convolutions, channels_last (oneDNN's fast layout).

        1.2-1.5x fewer ms per image on a CPU; equal to this one up to fp32 rounding, not bit for bit (the exact path
        stays this one; tests/test_batching.py judges samples of both).
        """
        return CourseDenoiser(inference_copy(self.unet), self.alphas_cumprod, self.prompts, self.clip_x0, self.aliases)

    def class_index(self, prompt: str) -> int | None:
        """The class a prompt names (None for the null prompts); ValueError lists the prompts there are."""
        key = prompt.strip().lower()
        if key in NULL_PROMPTS:
            return None
        if key not in self.aliases:
            choices = (
                ", ".join(repr(p) for p in (*self.prompts, "")) if self.prompts else "'' (this model has no classes)"
            )
            raise ValueError(f"unknown prompt {prompt!r}: this backend knows {choices}")
        return self.aliases[key]

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """One-hot rows (len(prompts), num_classes); the null prompts give all zeros."""
        out = torch.zeros(len(prompts), self.num_classes, device=self.device)
        for row, prompt in enumerate(prompts):
            k = self.class_index(prompt)
            if k is not None:
                out[row, k] = 1
        return out
