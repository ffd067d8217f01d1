"""1.3 One-step denoising: x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps_hat) / sqrt(alpha_bar_t)."""

import streamlit as st
import torch

import lab
from ui.common import current_backend, pick_test_image, prompt_input, settings, show

st.title("1.3 · One-step denoising")
st.markdown(r"One call of the model estimates the noise; $\hat x_0 = (x_t - \sqrt{1-\bar\alpha_t}\,\hat\epsilon)/\sqrt{\bar\alpha_t}$.")
s, den = settings(), current_backend()
x0 = pick_test_image()
prompt = prompt_input("Prompt", "a high quality photo", key="one_step_prompt")
t = st.slider("Timestep t", 1, den.T - 1, 500, key="one_step_t")
ts = [250, 500, 750, t]
noisy = lab.forward(x0.expand(4, -1, -1, -1), torch.tensor(ts), den, generator=s.seed)
estimates = torch.cat([lab.one_step_denoise(den, noisy[i : i + 1], ts[i], prompt) for i in range(4)])
for i, v in enumerate(ts):
    show(torch.cat([x0, noisy[i : i + 1], estimates[i : i + 1].clamp(-1, 1)]), ["original", f"noisy, t = {v}", "one-step estimate"])
