"""1.7.2 Inpainting: after every step keep the original outside the mask, x_t <- m x_t + (1 - m) forward(x_orig, t) (A.5)."""

import numpy as np
import streamlit as st
import torch

import lab
from serving.defaults import INPAINT_MASK, MASKS, default_prompts, preset_mask
from ui.controls import equation, gamma_slider
from ui.display import mask_overlay, rgb, show
from ui.inputs import canvas_strokes, pick_test_image, prompt_input, uploaded_image
from ui.messages import page_waits
from ui.progress import ask, result
from ui.state import current_backend, settings

st.title("1.7.2 · Inpainting")
st.markdown(
    "The mask (magenta) is where new content goes; everywhere else the original is kept, noised to each step's level."
)
equation(
    r"x_t \leftarrow m\,x_t + (1 - m)\,\mathrm{forward}(x_{orig}, t)\quad \text{after every step}",
    "m is 1 inside the mask (below) and 0 outside; the steps are CFG steps with γ (below).",
)
s, den = settings(), current_backend()
_, H, W = den.image_shape
c1, c2 = st.columns(2)
source = c1.radio("Image", ["test image", "upload"], horizontal=True, key="inpaint_source")
kind = c2.radio("Mask", [*MASKS, "draw"], index=list(MASKS).index(INPAINT_MASK), horizontal=True, key="inpaint_mask")
x0 = pick_test_image() if source == "test image" else uploaded_image("Upload an image", key="inpaint_upload")
if x0 is None:
    page_waits()
if kind == "draw":
    strokes = canvas_strokes("inpaint_canvas", background=x0)
    if strokes is None:
        st.info("Paint over the part of the image to replace.")
        page_waits()
    mask = (strokes > 0.25).astype(np.float32)
else:
    mask = preset_mask(kind, H, W)
if not mask.any() or mask.all():
    st.warning(
        "The mask is "
        + (
            "empty: paint where new content should go."
            if not mask.any()
            else "the whole image: that is plain sampling. Leave some of the original."
        )
    )
    page_waits()
c3, c4 = st.columns(2)
with c3:
    prompt = prompt_input("Prompt", default_prompts("inpaint", den)[0], key="inpaint_prompt")
with c4:
    gamma = gamma_slider("inpaint_gamma")
res = result(ask(lab.inpaint, x0, mask, prompt, gamma, generator=s.seed), st.progress(0.0))
m = torch.from_numpy(mask)[None, None]  # (1, 1, H, W)
show(
    torch.cat(
        [rgb(x0), mask_overlay(torch.full_like(rgb(x0), -0.6), m, 1.0), mask_overlay(rgb(x0), m), rgb(res.images)]
    ),
    ["original", "mask (magenta)", "to replace", "inpainted"],
)
