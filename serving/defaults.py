"""What each Part A page opens with: its prompts, CFG scale and other settings per backend, and so the requests a page
makes when opened (``default_requests``: both editions'), which the room warms at start and the Welcome page shows.

The pages read their defaults from here and the room's warm-up asks for the same requests, so that a room opening a
page together is served from the cache.
"""

from __future__ import annotations

import numpy as np
import torch

import lab
import lab.flow as flow
from lab.fall2024 import (
    CFG_SCALE,
    COURSE_PROMPTS,
    HYBRID_KERNEL,
    HYBRID_SIGMA,
    ITERATIVE_I_START,
    ONE_STEP_TS,
    SAMPLES,
    SDEDIT_ROW,
)
from lab.fall2026 import ANAGRAM_VIEWS, CFG_W, EDIT_STARTS, EULER_T, NOISY_TS
from lab.fall2026 import COURSE_PROMPTS as FLOW_COURSE_PROMPTS
from lab.fall2026 import SAMPLES as FLOW_SAMPLES
from lab.filters import max_kernel_size
from lab.flow import hybrid_blur, noisy_row
from models.classes import PROMPTS
from serving.requests import Request, editing_row, per_image

SDEDIT_I_START = 10  # the single large SDEdit result starts here (one of the course's row, so it costs nothing more)
FORWARD_T = ONE_STEP_TS[1]  # the t slider's start on 1.1 and 1.3: the course's middle t
SAMPLING_STEPS = (10, 34)  # page 0's two numbers of inference steps
INPAINT_MASK = "top half"  # 1.7.2's mask as the page opens

CLASS_PICKS = {
    "sampling": (3, 7, 0),
    "cfg": (3,),
    "sdedit": (0,),
    "inpaint": (0,),
    "text": (7,),
    "anagram": (2, 7, 4),
    "hybrid": (1, 7, 0),
    "colour": (0, 1),
}  # class indices
WHY_PICKS = {  # what the digit backend's defaults show, measured with the bundled classifier (README, "Every page")
    "anagram": "On the digit model the default is 2 ↔ 7 through the flip: the classifier reads both in 16 of 16 seeds, "
    "and a plain 2 flipped reads as 7 in none, so the flip alone does not give it (with three views, 4 "
    "through the rotation: all three read in 7 of 8 seeds).",
    "hybrid": "On the digit model the default is 1 far, 7 near: the classifier reads the 7 as it is and a 1 once blurred "
    "(σ 3) in 15 of 16 seeds; a plain 7 blurred reads as 1 in 1 of 16. At 28 px the far digit is a faint "
    "stroke: the course's 64 px colour pictures teach this better.",
}
# (sdedit, inpaint: the class of the first test image, which gamma then sharpens: on a class backend the null class
# would make gamma do nothing)

# On a backend whose prompts are words that name classes (the emoji backend), "a high quality photo" is the null class,
# so the pages where the course uses it (and a page must guide for gamma to matter) start on a name instead
NAMED_PICKS = {
    "cfg": COURSE_PROMPTS["text"],
    "sdedit": ("a castle",),
    "inpaint": ("a castle",),
}  # the course's rocket ship

MASKS = {  # inpainting masks: 1 where new content goes
    "top half": lambda m: m[: m.shape[0] // 2].fill(1),
    "bottom half": lambda m: m[m.shape[0] // 2 :].fill(1),
    "left half": lambda m: m[:, : m.shape[1] // 2].fill(1),
    "right half": lambda m: m[:, m.shape[1] // 2 :].fill(1),
    "centre square": lambda m: m[m.shape[0] // 4 : 3 * m.shape[0] // 4, m.shape[1] // 4 : 3 * m.shape[1] // 4].fill(1),
}


def preset_mask(name: str, H: int, W: int) -> np.ndarray:
    mask = np.zeros((H, W), np.float32)
    MASKS[name](mask)
    return mask


def why_defaults(page: str, den) -> str | None:
    """What the page's default prompts show on the digit backend and how that was measured (None elsewhere)."""
    return WHY_PICKS.get(page) if den.prompts == PROMPTS["mnist"] else None


def default_gamma(den) -> float:
    """The CFG scale γ the pages open with on this backend: the course's 7, or the backend's own (den.cfg_scale: the
    emoji model's samples are judged 99.1 % right at 3, 97.0 % at 7; parta_emoji.md)."""
    return CFG_SCALE if den.cfg_scale is None else float(den.cfg_scale)


def default_prompts(page: str, den) -> tuple[str, ...]:
    """The prompts `page` (a key of COURSE_PROMPTS) opens with on this backend."""
    return _picks(page, den, COURSE_PROMPTS, CLASS_PICKS, NAMED_PICKS)


def _picks(page: str, den, course: dict, class_picks: dict, named: dict) -> tuple[str, ...]:
    """An edition's prompts for a page: the course's (free text), its named picks (a backend of names), or classes."""
    if den.names:
        return named.get(page, course[page])
    if not den.prompts:
        return course[page]
    return tuple(den.prompts[k % len(den.prompts)] for k in class_picks[page])


def hybrid_kernel(den) -> int:
    """1.9's kernel size on this backend: the course's 33, or the largest its images allow."""
    return min(HYBRID_KERNEL, max_kernel_size(*den.image_shape[1:]))


def sampling_timesteps(den, steps: int) -> list[int]:
    """Page 0's strided timesteps for a number of inference steps."""
    return lab.strided_timesteps(den.T, max(1, den.T // steps))


def default_requests(backend: str, device: str, seed: int, den, x0: torch.Tensor) -> dict[str, list[Request]]:
    """What each Part A page of the backend's edition asks for when opened with its defaults on this backend and seed
    (x0: the first test image), page (its URL name) -> its requests, in the course's order; tests/test_room.py opens
    each page after warming these and checks that it computes nothing new; the Welcome page shows their first pictures."""
    if den.prediction == "velocity":
        return flow_default_requests(backend, device, seed, den, x0)
    C, H, W = den.image_shape
    gamma = default_gamma(den)
    ts = [*ONE_STEP_TS, FORWARD_T]
    noisy = lab.forward(x0.expand(len(ts), -1, -1, -1), torch.tensor(ts), den, generator=seed)
    timesteps = lab.strided_timesteps(den.T, 30)
    t_iter = timesteps[ITERATIVE_I_START]
    noisy_iter = lab.forward(x0, t_iter, den, generator=seed)
    cfg_prompt, text_prompt = default_prompts("cfg", den)[0], default_prompts("text", den)[0]

    def ask(fn, **kwargs) -> Request:
        return Request.of(fn, backend, device, **kwargs)

    def samples(prompt: str, scale: float | None, n: int, **kwargs) -> Request:
        return ask(lab.sample, n=n, prompt=prompt, scale=scale, generator=seed, **kwargs)

    def row(prompt: str) -> list[Request]:
        return editing_row(lab.sdedit, backend, device, x0, prompt, gamma, SDEDIT_ROW, seed)

    return {
        "a0_sampling": [
            samples(p, gamma, 1, timesteps=sampling_timesteps(den, n))
            for p in default_prompts("sampling", den)
            for n in SAMPLING_STEPS
        ],
        "a3_one_step": per_image(lab.one_step_denoise, backend, device, noisy, ts),
        "a4_iterative": [
            ask(lab.iterative_denoise, x_t=noisy_iter, i_start=ITERATIVE_I_START, timesteps=timesteps, generator=seed),
            *per_image(lab.one_step_denoise, backend, device, noisy_iter, [t_iter]),
        ],
        "a5_sample": [samples(lab.course.DEFAULT_PROMPT, None, SAMPLES)],
        "a6_cfg": [samples(cfg_prompt, gamma, SAMPLES), samples(cfg_prompt, None, SAMPLES)],
        "a7_sdedit": row(default_prompts("sdedit", den)[0]),  # its i_start slider starts in the row
        "a72_inpaint": [
            ask(
                lab.inpaint,
                im=x0,
                mask=preset_mask(INPAINT_MASK, H, W),
                prompt=default_prompts("inpaint", den)[0],
                scale=gamma,
                generator=seed,
            )
        ],
        "a73_text": row(text_prompt),
        "a8_anagrams": [
            ask(
                lab.visual_anagrams,
                prompts=default_prompts("anagram", den)[:2],
                views=("identity", "flip"),
                scale=gamma,
                generator=seed,
            )
        ],
        "a9_hybrids": [
            ask(
                lab.make_hybrids,
                prompts=default_prompts("hybrid", den)[:2],
                kernel_size=hybrid_kernel(den),
                sigmas=(HYBRID_SIGMA,),
                scale=gamma,
                generator=seed,
            )
        ],
    }


# Part B's generators page: its models (bundled stem -> label) and defaults; it opens on the edition's (Fall 2024:
# DDPM; Fall 2026, whose Part B is Fall 2025's flow matching: the class-conditioned flow model)
GENERATORS = {
    "ddpm_class": "DDPM, class-conditioned",
    "ddpm_time": "DDPM, time-conditioned",
    "flow_class": "flow matching, class-conditioned",
    "flow_time": "flow matching, time-conditioned",
    "flow_time_better": "flow matching, time-conditioned, the better UNet (CS280A)",
}
GENERATOR_FIRST = {"2024": "ddpm_class", "2026": "flow_class"}  # the model the page opens on, per edition
GENERATOR_GAMMA = 5.0  # CFG scale
# Sampling steps: DDPM 30 strided timesteps; flow matching the course's num_ts (class_fm_sample 300, time_fm_sample 50)
GENERATOR_STEPS = {("ddpm", "class"): 30, ("ddpm", "time"): 30, ("flow", "class"): 300, ("flow", "time"): 50}
GENERATOR_STEP_CHOICES = {"ddpm": [10, 30, 50, 100, 300], "flow": [5, 10, 20, 50, 100, 300]}


def generator_steps(config: dict) -> int:
    """The generators page's sampling steps for a model (its training config as a dict): the course's."""
    return GENERATOR_STEPS[config["experiment"], config["condition"]]


# --- the Fall 2026 edition's pages (flow backends)

FLOW_T = NOISY_TS[1]  # the t slider's start on 1.1 and 1.3: the course's middle t
FLOW_EDIT_START = 0.25  # 3.1's single large edit starts here (one of the course's row, so it costs nothing more)
# the digits' anagram and hybrid picked by the judge over every pair (tools/search_illusions.py --backend "MNIST digits
# (flow)"): 2 / 7 through the rotation reads as both in 17 of 20 seeds (a plain 2 turned reads as 7 in none); 1 far /
# 2 near at the scaled blur in 14 of 20
FLOW_CLASS_PICKS = {"cfg": (3,), "edit": (0,), "text": (7,), "anagram": (2, 7, 4), "hybrid": (1, 2, 0)}
FLOW_NAMED_PICKS = {
    "cfg": COURSE_PROMPTS["text"],
    "edit": ("a castle",),
}  # names: the null prompt would make w do nothing


def flow_w(den) -> float:
    """The CFG scale w the Fall 2026 pages open with on this backend: the course's 7, or the backend's own."""
    return CFG_W if den.cfg_scale is None else float(den.cfg_scale)


def flow_prompts(page: str, den) -> tuple[str, ...]:
    """The prompts a Fall 2026 page (a key of FLOW_COURSE_PROMPTS) opens with on this backend."""
    return _picks(page, den, FLOW_COURSE_PROMPTS, FLOW_CLASS_PICKS, FLOW_NAMED_PICKS)


def flow_hybrid_blur(den) -> tuple[int, float]:
    """3.4's kernel and sigma on this backend: the course's at 512 px, scaled to its size (sigma to the slider's 0.1)."""
    kernel, sigma = hybrid_blur(den.image_shape[1])
    return min(kernel, max_kernel_size(*den.image_shape[1:])), max(0.1, round(sigma, 1))


def flow_default_requests(backend: str, device: str, seed: int, den, x1: torch.Tensor) -> dict[str, list[Request]]:
    """What each Fall 2026 page asks for when opened with its defaults (default_requests: a flow backend's)."""
    w = flow_w(den)
    noisy = noisy_row(x1, [*NOISY_TS, FLOW_T], seed)
    x_t = noisy_row(x1, [EULER_T], seed)
    kernel, sigma = flow_hybrid_blur(den)
    starts = tuple(dict.fromkeys((*EDIT_STARTS, FLOW_EDIT_START)))

    def ask(fn, **kwargs) -> Request:
        return Request.of(fn, backend, device, **kwargs)

    def samples(prompt: str, w: float | None) -> Request:
        return ask(flow.sample, n=FLOW_SAMPLES, prompt=prompt, w=w, seeds=range(seed, seed + FLOW_SAMPLES))

    def row(prompt: str) -> list[Request]:
        return editing_row(flow.edit_image, backend, device, x1, prompt, w, starts, seed)

    return {
        "f1_3_one_step": per_image(flow.one_step, backend, device, noisy, [*NOISY_TS, FLOW_T]),
        "f1_4_velocity": per_image(flow.one_step, backend, device, noisy_row(x1, NOISY_TS, seed), NOISY_TS),
        "f1_5_euler": [
            ask(flow.sample_from, x_t=x_t, t_start=EULER_T),
            *per_image(flow.one_step, backend, device, x_t, [EULER_T]),
        ],
        "f1_6_sample": [samples(lab.course.DEFAULT_PROMPT, None)],
        "f2_1_cfg": [samples(flow_prompts("cfg", den)[0], w), samples(flow_prompts("cfg", den)[0], None)],
        "f3_1_edit": row(flow_prompts("edit", den)[0]),
        "f3_2_text": row(flow_prompts("text", den)[0]),
        "f3_3_anagrams": [
            ask(flow.anagram_images, prompts=flow_prompts("anagram", den)[:2], views=ANAGRAM_VIEWS, w=w, generator=seed)
        ],
        "f3_4_hybrids": [
            ask(
                flow.hybrid_images,
                prompts=flow_prompts("hybrid", den)[:2],
                kernel_size=kernel,
                sigmas=(sigma,),
                w=w,
                generator=seed,
            )
        ],
    }
