"""Image-to-image editing in either edition, drawn by five pages (Fall 2024: 1.7 SDEdit, 1.7.1, 1.7.3; Fall 2026:
3.1, 3.2): the image noised to a start (i_start, or the start time t_s) and denoised with CFG; the edit from the
chosen start, large, beside the original, then the course's row of starts."""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import streamlit as st
import torch

import lab
import lab.flow as flow
from lab import fall2024, fall2026
from lab.images import png_bytes, to_uint8
from serving.defaults import FLOW_EDIT_START, SDEDIT_I_START
from serving.requests import editing_row
from ui.controls import CFG_SCALES, cfg_slider, i_start_slider, null_prompt_note, start_slider
from ui.display import show
from ui.inputs import prompt_input
from ui.progress import results
from ui.state import current_backend, settings

SDEDIT_EQUATION = (
    r"x_t = \sqrt{\bar\alpha_t}\,x_{orig} + \sqrt{1-\bar\alpha_t}\,\epsilon,\quad t = \mathrm{strided\_timesteps}[i_{start}],"
    r"\quad x_{orig}' = \mathrm{iterative\_denoise\_cfg}(x_t, i_{start}, \gamma)"
)
EDIT_EQUATION = (
    r"x_{t_s} = (1 - t_s)\,\epsilon + t_s\,x_1,\quad x_{t+h} = x_t + h\,\big(v_c + w\,(v_c - v_u)\big),"
    r"\quad t = t_s, t_s + h, \dots \to 1"
)


def _i_start(key: str, den) -> tuple[int, str, str]:
    i_start, t = i_start_slider(f"{key}_i_start", den.T, SDEDIT_I_START)
    return i_start, f"i_start = {i_start} (t = {t})", f"from i_start {i_start}"


def _t_start(key: str, den) -> tuple[float, str, str]:
    t_start = start_slider(f"{key}_start", FLOW_EDIT_START)
    return t_start, f"from t = {t_start:g}", f"from t {t_start:g}"


class Editing(NamedTuple):
    start: Callable  # (key, backend) -> the chosen start, its caption, its name in the export
    row: tuple  # the course's row of starts
    row_label: Callable  # a start -> its caption in the row
    edit: Callable  # the course function of an edit from a start (lab.sdedit, lab.flow.edit_image)
    no_guidance: float  # the CFG scale at which guidance does nothing (γ 1; w 0)
    estimates: str  # what CFG combines, in the edition's words


EDITINGS = {
    "2024": Editing(
        _i_start,
        fall2024.SDEDIT_ROW,
        lambda i: f"i_start = {i}",
        lab.sdedit,
        1.0,
        "estimates",
    ),
    "2026": Editing(
        _t_start,
        fall2026.EDIT_STARTS,
        lambda t: f"t = {t:g}",
        flow.edit_image,
        0.0,
        "velocities",
    ),
}


def editing_view(
    edition: str, x: torch.Tensor, tag: str, key: str, default_prompt: str, full_size: bool = False
) -> None:
    """Prompt, the CFG scale and the start; the edit from the start, large, beside the original (full_size: with a
    download of it at the model's own size); then the course's row (the chosen start one of it: computed once)."""
    e, (symbol, name, _, _) = EDITINGS[edition], CFG_SCALES[edition]
    s, den = settings(), current_backend()
    c1, c2, c3 = st.columns(3)
    with c1:
        prompt = prompt_input("Prompt", default_prompt, key=f"{key}_prompt")
    with c2:
        scale = cfg_slider(edition, f"{key}_{name}")
    with c3:
        start, caption, export_name = e.start(key, den)
    null_prompt_note(prompt, scale == e.no_guidance, e.estimates, symbol)
    starts = tuple(dict.fromkeys((*e.row, start)))
    requests = editing_row(e.edit, s.backend, s.device, x, prompt, scale, starts, s.seed)
    row = [r.images for r in results(requests, st.progress(0.0))]
    single = row[starts.index(start)]
    show(torch.cat([x, single]), [tag, caption], s.large, name=f"{tag}, {export_name}")
    if full_size:
        _, H, W = single.shape[1:]
        st.download_button(
            f"Download the edit at full size ({W}x{H} PNG)",
            lambda: png_bytes(to_uint8(single, -1, 1)[0]),
            f"edit_t{start:g}.png",
            "image/png",
            key=f"{key}_full_size",
        )
    st.subheader("The course's row")
    show(
        torch.cat([*row[: len(e.row)], x]),
        [e.row_label(v) for v in e.row] + [tag],
        name=f"{tag}, the course's row",
    )
