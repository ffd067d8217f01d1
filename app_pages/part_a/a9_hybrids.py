"""1.9 Hybrid images: eps = lowpass(eps_far) + highpass(eps_near) (factorized diffusion)."""

import streamlit as st

from ui.common import current_backend, prompt_input, settings, show
from ui.controls import blur_sliders, equation, gamma_slider
from ui.runs import Run, default_prompts, run

st.title("1.9 · Hybrid images")
s, den = settings(), current_backend()
_, H, W = den.image_shape
defaults = default_prompts("hybrid", den)
st.markdown("Low frequencies from one prompt (seen from far), high frequencies from another (seen up close).")
equation(r"\epsilon = f_{\text{lowpass}}(\epsilon_1) + f_{\text{highpass}}(\epsilon_2),\quad f_{\text{lowpass}} = G_{k,\sigma} *,\ f_{\text{highpass}} = 1 - G_{k,\sigma} *",
         "ε_1 under the far prompt, ε_2 under the near one, each with CFG scale γ; k and σ are the blur sliders below.")
c1, c2 = st.columns(2)
with c1:
    far = prompt_input("Far (low frequencies)", defaults[0], key="hybrid_far", allow_null=False)
with c2:
    near = prompt_input("Near (high frequencies)", defaults[1], key="hybrid_near", allow_null=False)
kernel_size, sigma = blur_sliders("hybrid", H, W, 33, 2.0)
gamma = gamma_slider("hybrid_gamma")
res = run(Run("hybrid", s.backend, s.device, s.seed, (far, near), gamma, kernel_size=kernel_size, sigmas=(sigma,)), st.progress(0.0))
st.markdown("The same image at several sizes: the small one reads as the far prompt, the large one as the near prompt.")
cols = st.columns([1, 2, 4])
for col, size in zip(cols, (40, 120, 360)):
    with col:
        show(res.images, [f"{size} px"], size)
