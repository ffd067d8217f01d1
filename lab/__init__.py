"""Diffusion Lab's algorithms: pure torch, no Streamlit (a test enforces it).

Course names of Part A, Fall 2024 (DDPM): ``forward``, ``one_step_denoise``, ``iterative_denoise``,
``iterative_denoise_cfg``, ``sample``, ``sdedit``, ``inpaint``, ``visual_anagrams``, ``make_hybrids`` (and
``colour_hybrids``); Fall 2026 (flow) in ``lab.flow``: ``interpolate``, ``one_step_denoise``, ``euler_sample``,
``cfg_velocity``, ``sample``, ``edit``, ``visual_anagrams``, ``make_hybrids``. All run the one loop
``lab.sampling.denoise`` over the backend's process (``lab.processes``: DDPM or LinearFlow); each one's ``steps``
(``lab.sdedit.steps(...)``) returns that loop unrun, a generator of its model calls, for a server.
"""

from lab.course import (
    colour_hybrids,
    forward,
    inpaint,
    iterative_denoise,
    iterative_denoise_cfg,
    make_hybrids,
    one_step_denoise,
    sample,
    sdedit,
    visual_anagrams,
)
from lab.denoiser import Denoiser
from lab.diffusion import CLEAN, DynamicThreshold, estimate_x0, step
from lab.filters import frequency_bands, gaussian_blur
from lab.guidance import Guide, anagram, cfg, factorized, plain
from lab.processes import DDPM, LINEAR_FLOW, LinearFlow, euler_times
from lab.sampling import InpaintConstraint, Loop, denoise, denoise_steps, run_steps, with_steps
from lab.schedules import make_alphas_cumprod, strided_timesteps
from lab.views import VIEWS, get_view

__all__ = [
    "CLEAN",
    "DDPM",
    "Denoiser",
    "DynamicThreshold",
    "Guide",
    "InpaintConstraint",
    "LINEAR_FLOW",
    "Loop",
    "LinearFlow",
    "euler_times",
    "VIEWS",
    "anagram",
    "cfg",
    "colour_hybrids",
    "denoise",
    "denoise_steps",
    "estimate_x0",
    "factorized",
    "forward",
    "frequency_bands",
    "gaussian_blur",
    "get_view",
    "inpaint",
    "iterative_denoise",
    "iterative_denoise_cfg",
    "make_alphas_cumprod",
    "make_hybrids",
    "one_step_denoise",
    "plain",
    "run_steps",
    "sample",
    "sdedit",
    "step",
    "with_steps",
    "strided_timesteps",
    "visual_anagrams",
]
