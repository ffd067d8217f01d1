"""1.9 Hybrid images: eps = lowpass(eps_far) + highpass(eps_near) (factorized diffusion)."""

import streamlit as st

from lab.filters import max_kernel_size
from ui.common import current_backend, prompt_input, settings, show
from ui.runs import Run, default_prompts, run

st.title("1.9 · Hybrid images")
s, den = settings(), current_backend()
_, H, W = den.image_shape
defaults = default_prompts("hybrid", den)
st.markdown("Low frequencies from one prompt (seen from far), high frequencies from another (seen up close).")
c1, c2 = st.columns(2)
with c1:
    far = prompt_input("Far (low frequencies)", defaults[0], key="hybrid_far", allow_null=False)
with c2:
    near = prompt_input("Near (high frequencies)", defaults[1], key="hybrid_near", allow_null=False)
if s.lecture:
    kernel_size, sigma = 33, 2.0
else:
    c3, c4 = st.columns(2)
    kernel_size = c3.slider("Blur kernel size", 1, max_kernel_size(H, W), min(33, max_kernel_size(H, W)), step=2, key="hybrid_kernel")
    sigma = c4.slider("Blur sigma", 0.5, 8.0, 2.0, 0.5, key="hybrid_sigma")
res = run(Run("hybrid", s.backend, s.device, s.seed, (far, near), 7.0, kernel_size=kernel_size, sigmas=(sigma,)), st.progress(0.0))
st.markdown("The same image at several sizes: the small one reads as the far prompt, the large one as the near prompt.")
cols = st.columns([1, 2, 4])
for col, size in zip(cols, (40, 120, 360)):
    with col:
        show(res.images, [f"{size} px"], size)
