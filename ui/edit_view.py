"""Image-to-image editing's controls and results, drawn by two Fall 2026 pages (3.1, 3.2): the image noised to a start
time, then Euler steps with CFG to t = 1; the large edit from the chosen start beside the original, then the
course's row of start times."""

from __future__ import annotations

import streamlit as st
import torch

import lab.fall2026 as fall2026
from lab.images import png_bytes, to_uint8
from serving.defaults import FLOW_EDIT_START
from serving.requests import edit_row
from ui.controls import null_prompt_note, start_slider, w_slider
from ui.display import show
from ui.inputs import prompt_input
from ui.progress import results
from ui.state import settings

EDIT_EQUATION = r"x_{t_s} = (1 - t_s)\,\epsilon + t_s\,x_1,\quad x_{t+h} = x_t + h\,\big(v_c + w\,(v_c - v_u)\big),\quad t = t_s, t_s + h, \dots \to 1"


def edit_view(x1: torch.Tensor, tag: str, key: str, default_prompt: str, full_size: bool = False) -> None:
    """Prompt, w and the start time t_s; the edit from t_s, large, beside the original (full_size: with a download of it
    at the model's own size); then the course's row."""
    s = settings()
    c1, c2, c3 = st.columns(3)
    with c1:
        prompt = prompt_input("Prompt", default_prompt, key=f"{key}_prompt")
    with c2:
        w = w_slider(f"{key}_w")
    with c3:
        t_start = start_slider(f"{key}_start", FLOW_EDIT_START)
    null_prompt_note(prompt, w == 0, "velocities", "w")
    starts = tuple(dict.fromkeys((*fall2026.EDIT_STARTS, t_start)))  # the chosen start in the row: computed once
    row = [r.images for r in results(edit_row(s.backend, s.device, s.seed, x1, prompt, w, starts), st.progress(0.0))]
    single = row[starts.index(t_start)]
    show(torch.cat([x1, single]), [tag, f"from t = {t_start:g}"], s.large, name=f"{tag}, from t {t_start:g}")
    if full_size:
        _, H, W = single.shape[1:]
        st.download_button(
            f"Download the edit at full size ({W}x{H} PNG)",
            lambda: png_bytes(to_uint8(single, -1, 1)[0]),
            f"edit_t{t_start:g}.png",
            "image/png",
            key=f"{key}_full_size",
        )
    st.subheader("The course's row")
    show(
        torch.cat([*row[: len(fall2026.EDIT_STARTS)], x1]),
        [f"t = {t:g}" for t in fall2026.EDIT_STARTS] + [tag],
        name=f"{tag}, the course's row",
    )
