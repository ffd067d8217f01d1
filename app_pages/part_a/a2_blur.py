"""1.2 Classical denoising: Gaussian blur of the noisy images, beside them."""

import streamlit as st
import torch

import lab
from lab.filters import max_kernel_size
from ui.common import current_backend, pick_test_image, settings, show

st.title("1.2 · Classical denoising")
st.markdown("A Gaussian blur removes noise, and the edges with it. Try to find a kernel that helps.")
s, den = settings(), current_backend()
x0 = pick_test_image()
C, H, W = den.image_shape
c1, c2 = st.columns(2)
kernel_size = c1.slider("Kernel size", 1, max_kernel_size(H, W), 5, step=2, key="blur_kernel")
sigma = c2.slider("Sigma", 0.1, 10.0, 1.0, 0.1, key="blur_sigma")
ts = [250, 500, 750]
noisy = lab.forward(x0.expand(3, -1, -1, -1), torch.tensor(ts), den, generator=s.seed)
show(noisy, [f"noisy, t = {t}" for t in ts])
show(lab.gaussian_blur(noisy, kernel_size, sigma), [f"blurred, t = {t}" for t in ts])
