"""SDEdit's controls and results, drawn by three pages (1.7, 1.7.1, 1.7.3)."""

from __future__ import annotations

import streamlit as st
import torch

from lab.fall2024 import SDEDIT_ROW
from serving.defaults import SDEDIT_I_START
from serving.requests import sdedit_row
from ui.controls import gamma_slider, i_start_slider, null_prompt_note
from ui.display import show
from ui.inputs import prompt_input
from ui.progress import results
from ui.state import current_backend, settings

SDEDIT_EQUATION = (
    r"x_t = \sqrt{\bar\alpha_t}\,x_{orig} + \sqrt{1-\bar\alpha_t}\,\epsilon,\quad t = \mathrm{strided\_timesteps}[i_{start}],"
    r"\quad x_{orig}' = \mathrm{iterative\_denoise\_cfg}(x_t, i_{start}, \gamma)"
)


def sdedit_view(x0: torch.Tensor, tag: str, key: str, default_prompt: str) -> None:
    """Prompt, γ and i_start; the edit from i_start, large, beside the original; then the course's row of i_start."""
    s, den = settings(), current_backend()
    c1, c2, c3 = st.columns(3)
    with c1:
        prompt = prompt_input("Prompt", default_prompt, key=f"{key}_prompt")
    with c2:
        gamma = gamma_slider(f"{key}_gamma")
    with c3:
        i_start, t = i_start_slider(f"{key}_i_start", den.T, SDEDIT_I_START)
    null_prompt_note(prompt, gamma == 1, "estimates", "γ")
    requests = sdedit_row(
        s.backend, s.device, s.seed, x0, prompt, gamma, (*SDEDIT_ROW, i_start)
    )  # i_start in the row: computed once
    *row, single = [r.images for r in results(requests, st.progress(0.0))]
    show(
        torch.cat([x0, single]), [tag, f"i_start = {i_start} (t = {t})"], s.large, name=f"{tag}, from i_start {i_start}"
    )
    st.subheader("The course's row")
    show(torch.cat([*row, x0]), [f"i_start = {i}" for i in SDEDIT_ROW] + [tag], name=f"{tag}, the course's row")
