"""The ``Denoiser`` protocol: what the sampling loop needs from a backend, and nothing more.

A backend (the bundled class-conditional UNets, DeepFloyd IF, a test double) predicts the noise in a
batch of x_t at one timestep t, under one condition per image. Conditions come from ``encode``: a prompt
(or a class name) per row, with "" the unconditional condition that CFG uses.
"""

from __future__ import annotations

from typing import Protocol, Sequence, runtime_checkable

import torch


@runtime_checkable
class Denoiser(Protocol):
    alphas_cumprod: torch.Tensor  # (T,) float32: alpha_bar_t for t in [0, T-1]
    T: int  # number of training timesteps, len(alphas_cumprod)
    image_shape: tuple[int, int, int]  # (C, H, W) of x_t; C is the number of channels
    variance_type: str  # "fixed_small" (no variance output) or "learned_range" (DeepFloyd IF)
    clip_x0: float | None  # clip x0_hat to [-clip_x0, clip_x0] during sampling as trained, None: no clip
    device: torch.device  # where x_t and conditions must live
    dtype: torch.dtype  # the dtype x_t is given in

    def __call__(self, x_t: torch.Tensor, t: int, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Noise estimate eps (B, C, H, W) of x_t (B, C, H, W) at timestep t, under cond (B, ...).

        Second output: the variance output v (B, C, H, W) in [-1, 1] when variance_type is "learned_range",
        else None.
        """
        ...

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Conditions (len(prompts), ...) for the prompts; "" is the unconditional one. ValueError if unknown."""
        ...
