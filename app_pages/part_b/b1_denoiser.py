"""Part B 1: the single-step denoiser (sigma 0.5): noising, results after epochs 1 and 5, out of distribution, pure noise."""

import streamlit as st
import torch

from lab.generate import denoise_once
from models.bundled import DENOISER_SNAPSHOTS, WEIGHTS
from ui.partb import heldout, loss_curve, show01
from ui.state import bundled_model, settings

SIGMAS = [0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0]
# The course's epochs 1 and 5 are passes 13 and 65 over the bundled digits (models/weights/denoiser.md); the last
# snapshot is the model's final weights
LAST = max(DENOISER_SNAPSHOTS.values())
SNAPSHOTS = {
    f"epoch {epoch}": "denoiser" if passes == LAST else f"denoiser_epoch_{passes:03d}"
    for epoch, passes in DENOISER_SNAPSHOTS.items()
}

st.title("Part B 1 · A single-step denoiser")
st.markdown(
    r"A UNet trained to map $z = x + \sigma\epsilon$ back to $x$ at $\sigma = 0.5$: L2 loss, Adam 1e-4, batch 256. "
    "Both snapshots are bundled weights, run live on held-out digits."
)
s = settings()
x = heldout()[:8]
i = st.slider("Digit", 0, 7, 0, key="b1_digit")
digit = x[i : i + 1]
st.subheader("The noising process")
g = torch.Generator().manual_seed(s.seed)
eps = torch.randn(digit.shape, generator=g)
show01(torch.cat([(digit + sg * eps).clamp(0, 1) for sg in SIGMAS]), [f"sigma = {sg}" for sg in SIGMAS])
models = {label: bundled_model(stem) for label, stem in SNAPSHOTS.items()}
for label, (model, _) in models.items():
    st.subheader(f"Results after {label}")
    z, out = denoise_once(model, x, 0.5, torch.Generator().manual_seed(s.seed))
    show01(torch.cat([x, z.clamp(0, 1), out.clamp(0, 1)]), None, nrow=8)
st.caption(
    "rows: clean held-out digits, noisy (sigma 0.5), denoised. The course's epochs are passes over 60,000 digits; "
    "the bundled snapshots are passes 13 and 65 over 4,500 digits, as many images seen."
)
st.subheader("Training loss")
loss_curve("denoiser", st.toggle("Log scale", True, key="b1_log"))
st.subheader("Out of distribution: other noise levels")
for label, (model, _) in models.items():
    with torch.no_grad():
        outs = [model(digit + sg * eps).clamp(0, 1) for sg in SIGMAS]
    st.caption(f"denoised after {label}, trained at sigma 0.5 only")
    show01(torch.cat(outs), [f"sigma = {sg}" for sg in SIGMAS])
st.subheader("Denoising pure noise (1.2.3)")
for epoch, passes in DENOISER_SNAPSHOTS.items():
    path = WEIGHTS / f"pure_noise_epoch_{passes:03d}.png"
    if path.exists():
        st.image(
            str(path),
            caption=f"after epoch {epoch}: ten outputs from pure noise, then the training set's mean",
            width=560,
        )
st.markdown("Trained on pure noise, the best the model can do under an L2 loss is the mean of the training digits.")
st.caption(
    "Its training loss: it falls to the spread of the digits around their mean and stays there (the one-step "
    "denoiser's, above, goes on falling)."
)
loss_curve("pure_noise", st.toggle("Log scale", True, key="b1_noise_log"))
