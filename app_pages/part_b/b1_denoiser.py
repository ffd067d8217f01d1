"""Part B 1: the single-step denoiser (sigma 0.5): noising, results after epochs 1 and 5, out of distribution, pure noise."""

import streamlit as st
import torch

from lab.generate import denoise_once
from models.bundled import WEIGHTS
from ui.common import settings
from ui.partb import bundled_model, heldout, show01

SIGMAS = [0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0]

st.title("Part B 1 · A single-step denoiser")
st.markdown(r"A UNet (D = 128) trained to map $z = x + \sigma\epsilon$ back to $x$ at $\sigma = 0.5$: L2 loss, Adam 1e-4, 5 epochs.")
s = settings()
x = heldout()[:8]
i = st.slider("Digit", 0, 7, 0, key="b1_digit")
digit = x[i : i + 1]
st.subheader("The noising process")
g = torch.Generator().manual_seed(s.seed)
eps = torch.randn(digit.shape, generator=g)
show01(torch.cat([(digit + sg * eps).clamp(0, 1) for sg in SIGMAS]), [f"sigma = {sg}" for sg in SIGMAS])
model, _ = bundled_model("denoiser")
st.subheader("Results after epoch 5 (live, bundled weights)")
z, out = denoise_once(model, x, 0.5, torch.Generator().manual_seed(s.seed))
show01(torch.cat([x, z.clamp(0, 1), out.clamp(0, 1)]), None, nrow=8)
st.caption("rows: clean held-out digits, noisy (sigma 0.5), denoised")
st.subheader("Out of distribution: other noise levels, epoch 5")
with torch.no_grad():
    outs = [model((digit + sg * eps)).clamp(0, 1) for sg in SIGMAS]
show01(torch.cat(outs), [f"sigma = {sg}" for sg in SIGMAS])
st.subheader("The course's figures, after epochs 1 and 5")
st.caption("rows: clean; then for sigma 0.2, 0.4, 0.5, 0.6, 0.8, 1.0 the noisy input and the output (epoch 1 is a figure: "
           "only the last epoch's weights ship, to keep the repository small)")  # fmt: skip
for epoch in (1, 5):
    path = WEIGHTS / f"denoiser_epoch_{epoch:03d}.png"
    if path.exists():
        st.image(str(path), caption=f"after epoch {epoch}", width=560)
st.subheader("Denoising pure noise (1.2.3)")
for epoch in (1, 5):
    path = WEIGHTS / f"pure_noise_epoch_{epoch:03d}.png"
    if path.exists():
        st.image(str(path), caption=f"after epoch {epoch}: ten outputs from pure noise, then the training set's mean", width=560)
st.markdown("Trained on pure noise, the best the model can do under an L2 loss is the mean of the training digits.")
