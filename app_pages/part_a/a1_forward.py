"""1.1 The forward process: x_t = sqrt(alpha_bar_t) x0 + sqrt(1 - alpha_bar_t) eps (A.1/A.2)."""

import streamlit as st
import torch

import lab
from lab.fall2024 import ONE_STEP_TS
from serving.defaults import FORWARD_T
from ui.controls import equation
from ui.display import show
from ui.inputs import pick_test_image
from ui.results import describe
from ui.state import current_backend, settings

st.title("1.1 · The forward process")
equation(
    r"x_t = \sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\quad \epsilon \sim \mathcal N(0, I)",
    "The image is scaled down and noise is added; t is the slider below, ε comes from the sidebar's seed.",
)
s, den = settings(), current_backend()
x0 = pick_test_image()
t = st.slider("Timestep t", 0, den.T - 1, FORWARD_T, key="forward_t")
describe(t=t)
ts = list(ONE_STEP_TS)
noisy = lab.forward(x0.expand(4, -1, -1, -1), torch.tensor([t, *ts]), den, generator=s.seed)
show(torch.cat([x0, noisy[:1]]), ["original", f"t = {t}"], s.large)
st.subheader("The course's row")
show(torch.cat([x0, noisy[1:]]), ["original", *[f"t = {v}" for v in ts]])
st.caption(
    f"alpha_bar at t = {t}: {float(den.alphas_cumprod[t]):.4f}; noise std {float((1 - den.alphas_cumprod[t]).sqrt()):.3f}"
)
