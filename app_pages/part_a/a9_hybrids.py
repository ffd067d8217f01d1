"""1.9 Hybrid images: eps = lowpass(eps_far) + highpass(eps_near) (factorized diffusion); or three bands; or grey and colour."""

import streamlit as st
import torch

import lab
from lab.course import CFG_SCALE, HYBRID_SIGMA
from lab.filters import grey
from serving.defaults import default_prompts, hybrid_kernel, why_defaults
from ui.controls import equation, gamma_slider, pair_buttons
from ui.display import show
from ui.illusions import hybrid_controls, show_sizes
from ui.inputs import prompt_input
from ui.messages import page_waits
from ui.progress import ask, result
from ui.state import current_backend, settings


def colour_hybrid(s, den) -> None:
    """Grey from one prompt, colour from another: the image in grey reads as the first, in colour as the second."""
    equation(
        r"\epsilon = \mathrm{grey}(\epsilon_1) + \big(\epsilon_2 - \mathrm{grey}(\epsilon_2)\big),\quad \mathrm{grey}(x) = \tfrac{1}{3}\textstyle\sum_c x_c",
        "ε_1 under the grey prompt, ε_2 under the colour prompt, each with CFG scale γ: grey and colour sum to the "
        "whole, as low and high pass do (Geng et al., Factorized Diffusion, 2024).",
    )
    if den.image_shape[0] != 3:
        st.info("A colour hybrid needs a colour backend: pick Emoji (colour) (or DeepFloyd IF) in the sidebar.")
        return
    defaults = default_prompts("colour", den)
    c1, c2 = st.columns(2)
    with c1:
        p1 = prompt_input("Grey prompt", defaults[0], key="colour_grey", allow_null=False)
    with c2:
        p2 = prompt_input("Colour prompt", defaults[1], key="colour_colour", allow_null=False)
    gamma = gamma_slider("colour_gamma")
    res = result(ask(lab.colour_hybrids, (p1, p2), 1, gamma, generator=s.seed), st.progress(0.0))
    show(torch.cat([res.images, grey(res.images)]), [f"in colour: {p2}", f"in grey: {p1}"], s.large)


st.title("1.9 · Hybrid images")
s, den = settings(), current_backend()
_, H, W = den.image_shape
defaults = default_prompts("hybrid", den)
st.markdown("Low frequencies from one prompt (seen from far), high frequencies from another (seen up close).")
if why := why_defaults("hybrid", den):
    st.caption(why)
pair_buttons(
    "hybrid",
    den,
    lambda far, near: {
        "hybrid_split": "frequency",
        "hybrid_bands": 2,
        "hybrid_far": far,
        "hybrid_near": near,
        "hybrid_kernel": hybrid_kernel(den),
        "hybrid_sigma": HYBRID_SIGMA,
        "hybrid_gamma": CFG_SCALE,
    },
)
equation(
    r"\epsilon = f_{\text{lowpass}}(\epsilon_1) + f_{\text{highpass}}(\epsilon_2),\quad f_{\text{lowpass}} = "
    r"G_{k,\sigma} *,\ f_{\text{highpass}} = 1 - G_{k,\sigma} *",
    "ε_1 under the far prompt, ε_2 under the near one, each with CFG scale γ; k and σ are the blur sliders below. "
    "Three bands: G_σ₁ ε_1 + (G_σ₂ − G_σ₁) ε_2 + (1 − G_σ₂) ε_3, σ₁ > σ₂.",
)
split = st.radio(
    "Split",
    ["frequency", "colour"],
    horizontal=True,
    key="hybrid_split",
    help="frequency: far and near, "
    "the course's 1.9; colour: one prompt in the grey part, another in the colour (Factorized Diffusion)",
)
if split == "colour":
    colour_hybrid(s, den)
    page_waits()
prompts, kernel_size, sigmas = hybrid_controls("hybrid", den, defaults, hybrid_kernel(den), HYBRID_SIGMA)
gamma = gamma_slider("hybrid_gamma")
res = result(
    ask(lab.make_hybrids, prompts, kernel_size, sigmas, 1, gamma, generator=s.seed),
    st.progress(0.0),
)
show_sizes(res.images)
