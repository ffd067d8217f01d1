"""1.3 One-step denoising: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)."""

import streamlit as st
import torch

import lab
from ui.common import current_backend, pick_test_image, prompt_input, settings, show
from ui.runs import FORWARD_T, ONE_STEP_TS, one_step_run, run

st.title("1.3 · One-step denoising")
st.markdown(r"One call of the model estimates the noise; $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$.")
s, den = settings(), current_backend()
x0 = pick_test_image()
prompt = prompt_input("Prompt", "a high quality photo", key="one_step_prompt")
t = st.slider("Timestep t", 1, den.T - 1, FORWARD_T, key="one_step_t")
ts = [*ONE_STEP_TS, t]
noisy = lab.forward(x0.expand(len(ts), -1, -1, -1), torch.tensor(ts), den, generator=s.seed)
estimates = run(one_step_run(s.backend, s.device, s.seed, noisy, ts, prompt), st.progress(0.0)).images
for i, v in enumerate(ts):
    show(torch.cat([x0, noisy[i : i + 1], estimates[i : i + 1]]), ["original", f"noisy, t = {v}", "one-step estimate"])
