"""1.3 One-step denoising: x1_hat = x_t + (1 - t) v(x_t, t, c) (A.2)."""

import streamlit as st
import torch

import lab.fall2026 as fall2026
import lab.flow as flow
from lab.course import DEFAULT_PROMPT
from serving.defaults import FLOW_T
from serving.requests import per_image
from ui.controls import equation, time_slider
from ui.display import show
from ui.inputs import image_choice, image_tag, prompt_input
from ui.messages import page_waits
from ui.progress import results
from ui.state import settings

st.title("1.3 · One-step denoising")
equation(
    r"\hat x_1 = x_t + (1 - t)\,v_\theta(x_t, t, c)",
    "one call of the model predicts the velocity v = x_1 − ε; one step of length 1 − t along it lands on the estimate.",
)
s = settings()
x1, source = image_choice("part1")  # the course: one image of your own on 1.1 to 1.5
if x1 is None:
    page_waits()
tag = image_tag(source)
prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="flow_one_step_prompt")
t = time_slider("flow_one_step_t", FLOW_T)
ts = [*fall2026.NOISY_TS, t]
x_t = flow.noisy_row(x1, ts, s.seed)
requests = per_image(flow.one_step, s.backend, s.device, x_t, ts, prompt=prompt)
estimates = torch.cat([r.images for r in results(requests, st.progress(0.0))])
for i, v in enumerate(ts):
    show(torch.cat([x1, x_t[i : i + 1], estimates[i : i + 1]]), [tag, f"noisy, t = {v:.2f}", "one-step estimate"])
