"""The ``Denoiser`` protocol: what the sampling loop needs from a backend, and what a backend can do.

A backend (the bundled class-conditional UNets, the colour emoji UNet, DeepFloyd IF, a test double) predicts, for a
batch of x_t at one time t under one condition per image, what its process needs: the noise eps (the Fall 2024
edition's DDPM: t an integer timestep, its schedule ``alphas_cumprod``) or the velocity v = x1 - eps (the Fall 2026
edition's linear flow: t in [0, 1], 0 noise and 1 the image). Conditions come from ``encode``: a prompt (or a class
name) per row, with "" the unconditional condition that CFG uses.

The protocol lives here, beside the backends that implement it, so that models/ never imports lab/ (which
re-exports it as ``lab.Denoiser``). A backend subclasses it: the declared capabilities below then have their
defaults, and callers read them directly instead of probing for attributes.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Protocol, runtime_checkable

import torch

DEFAULT_PROMPT = "a high quality photo"  # the course's "null" prompt: a picture of nothing in particular
UNCONDITIONAL = ""  # the course's negative prompt, CFG's unconditional estimate
NULL_PROMPTS = (UNCONDITIONAL, DEFAULT_PROMPT)  # a class backend reads both as no class (the one-hot vector all zeros)


@runtime_checkable
class Denoiser(Protocol):
    image_shape: tuple[int, int, int]  # (C, H, W) of x_t; C is the number of channels
    device: torch.device  # where x_t and conditions must live
    dtype: torch.dtype  # the dtype x_t is given in
    prediction: str = "epsilon"  # "epsilon": DDPM's noise (Fall 2024); "velocity": the linear flow's (Fall 2026)

    # DDPM's schedule and options (prediction "epsilon")
    alphas_cumprod: torch.Tensor | None = None  # (T,) float32: alpha_bar_t for t in [0, T-1]
    T: int = 0  # number of training timesteps, len(alphas_cumprod)
    variance_type: str = "fixed_small"  # "fixed_small" (no variance output) or "learned_range" (DeepFloyd IF)
    clip_x0: float | None = None  # clip x0_hat to [-clip_x0, clip_x0] during sampling as trained, None: no clip

    # What a backend can do, declared (a backend that subclasses Denoiser inherits these defaults)
    prompts: tuple[str, ...] = ()  # a class backend's prompts, class k's at index k; (): it takes free text
    names: tuple[str, ...] = ()  # free text read as the nearest of these names (name_of); (): as text (T5)
    cfg_scale: float | None = None  # the CFG scale its pages open with (DDPM: gamma; flow: w); None: the course's
    illusions: Mapping[str, tuple[tuple[str, str, int], ...]] = MappingProxyType({})  # "anagram" / "hybrid" ->
    # pairs of prompts its illusions work with: (first, second, seeds of 20 judged to read as both)
    row_timesteps: bool = False  # t may be a (B,) tensor, one time per row (a server batches rows at several t)
    batch_rows: int | None = None  # most rows per model call when a server batches loops; None: the server's

    def __call__(self, x_t: torch.Tensor, t, cond: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The prediction (B, C, H, W) for x_t (B, C, H, W) at time t, under cond (B, ...): eps at an integer timestep
        (DDPM), or the velocity at t in [0, 1] (flow).

        Second output: the variance output v (B, C, H, W) in [-1, 1] when variance_type is "learned_range",
        else None.
        """
        ...

    def encode(self, prompts: Sequence[str]) -> torch.Tensor:
        """Conditions (len(prompts), ...) for the prompts; "" is the unconditional one. ValueError if unknown."""
        ...

    def name_of(self, prompt: str) -> str | None:
        """The name of ``names`` a prompt is read as (None: the null class); ValueError if it names none."""
        return None

    def for_inference(self) -> Denoiser:
        """This backend for a server: equal up to float rounding, faster (BatchNorm folded...); itself by default."""
        return self
