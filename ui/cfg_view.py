"""Classifier-free guidance's page in either edition (Fall 2024 1.6, Fall 2026 2.1): the prompt, the edition's CFG
scale (γ or w), the course's five samples with CFG beside the same ones without."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import streamlit as st

import lab
import lab.flow as flow
from lab import fall2024, fall2026
from serving.defaults import default_prompts, flow_prompts
from serving.requests import Request
from ui.controls import CFG_SCALES, cfg_slider
from ui.display import show
from ui.inputs import prompt_input
from ui.progress import ask, results
from ui.state import Settings, current_backend, settings


class CFGPage(NamedTuple):
    key: str  # its widgets' key prefix
    prompts: Callable  # (page, backend) -> the prompts it opens with
    request: Callable[[Settings, str, float | None, int], Request]  # (settings, prompt, scale or None, n)
    samples: int  # the course's
    seeded: bool  # sample i from the notebook's noise(seed + i): captioned with its seed
    same: str  # what the two rows share


CFG_PAGES = {
    "2024": CFGPage(
        "cfg",
        default_prompts,
        lambda s, prompt, scale, n: ask(lab.sample, n, prompt, scale, generator=s.seed),
        fall2024.SAMPLES,
        False,
        "same seed",
    ),
    "2026": CFGPage(
        "flow_cfg",
        flow_prompts,
        lambda s, prompt, w, n: ask(flow.sample, n, prompt, w, seeds=range(s.seed, s.seed + n)),
        fall2026.SAMPLES,
        True,
        "the same noises",
    ),
}


def cfg_view(edition: str) -> None:
    """The page's controls and its two rows, in the edition's names."""
    page, (_, name, _, _) = CFG_PAGES[edition], CFG_SCALES[edition]
    s, den = settings(), current_backend()
    prompt = prompt_input("Prompt", page.prompts("cfg", den)[0], key=f"{page.key}_prompt", allow_null=not den.prompts)
    scale = cfg_slider(edition, f"{page.key}_{name}")
    n = page.samples
    guided, plain = results([page.request(s, prompt, scale, n), page.request(s, prompt, None, n)], st.progress(0.0))
    seeds = [f"seed {s.seed + i}" for i in range(n)] if page.seeded else None
    st.subheader(f"With CFG, {name} = {scale:g}")
    show(guided.images, seeds)
    st.subheader(f"Without CFG ({page.same})")
    show(plain.images, seeds)
