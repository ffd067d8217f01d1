"""1.3 One-step denoising: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)."""

import streamlit as st
import torch

import lab
from lab.course import DEFAULT_PROMPT
from lab.fall2024 import ONE_STEP_TS
from serving.defaults import FORWARD_T
from serving.requests import per_image
from ui.display import show
from ui.inputs import pick_test_image, prompt_input
from ui.progress import results
from ui.state import current_backend, settings

st.title("1.3 · One-step denoising")
st.markdown(
    r"One call of the model estimates the noise; $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$."
)
s, den = settings(), current_backend()
x0 = pick_test_image()
prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="one_step_prompt")
t = st.slider("Timestep t", 1, den.T - 1, FORWARD_T, key="one_step_t")
ts = [*ONE_STEP_TS, t]
noisy = lab.forward(x0.expand(len(ts), -1, -1, -1), torch.tensor(ts), den, generator=s.seed)
requests = per_image(lab.one_step_denoise, s.backend, s.device, noisy, ts, prompt=prompt)
estimates = torch.cat([r.images for r in results(requests, st.progress(0.0))])
for i, v in enumerate(ts):
    show(torch.cat([x0, noisy[i : i + 1], estimates[i : i + 1]]), ["original", f"noisy, t = {v}", "one-step estimate"])
