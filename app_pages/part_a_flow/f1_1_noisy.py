"""1.1 Noisy training inputs: x_t = (1 - t) eps + t x1 (A.1), one eps for every t."""

import streamlit as st
import torch

import lab.fall2026 as fall2026
import lab.flow as flow
from serving.defaults import FLOW_T
from ui.controls import equation, time_slider
from ui.display import show
from ui.inputs import image_choice, image_tag
from ui.messages import page_waits
from ui.state import settings

st.title("1.1 · Noisy training inputs")
equation(
    r"x_t = (1 - t)\,\epsilon + t\,x_1,\quad \epsilon \sim \mathcal N(0, I),\quad t \in [0, 1]",
    "t = 0 is pure noise, t = 1 the image; t is the slider below, ε (one for every t) comes from the sidebar's seed.",
)
s = settings()
x1, source = image_choice("part1")  # the course: one image of your own on 1.1 to 1.5
if x1 is None:
    page_waits()
tag = image_tag(source)
t = time_slider("noisy_t", FLOW_T)
ts = list(fall2026.NOISY_TS)
x_t = flow.noisy_row(x1, [t, *ts], s.seed)  # one eps for every t
show(torch.cat([x1, x_t[:1]]), [tag, f"t = {t:.2f}"], s.large)
st.subheader("The course's row")
show(torch.cat([x1, x_t[1:]]), [tag, *[f"t = {v:.2f}" for v in ts]])
st.caption(
    f"At t = {t:.2f} the image is weighted {t:.2f} and the noise {1 - t:.2f}: the signal-to-noise ratio is "
    f"{t / max(1 - t, 1e-9):.2f}."
)
