"""1.2 Classical denoising: Gaussian blur of the noisy images, beside them."""

import streamlit as st
import torch

import lab
from lab.fall2024 import ONE_STEP_TS
from ui.controls import blur_sliders, equation
from ui.display import show
from ui.inputs import pick_test_image
from ui.state import current_backend, settings

st.title("1.2 · Classical denoising")
st.markdown("A Gaussian blur removes noise, and the edges with it. Try to find a kernel that helps.")
equation(
    r"\hat x_0 = G_{k,\sigma} * x_t,\qquad G_{k,\sigma}(u, v) \propto e^{-(u^2+v^2)/2\sigma^2},\ |u|, |v| \le \lfloor k/2 \rfloor",
    "k (the kernel size) and σ are the sliders below; x_t are the noisy images of 1.1.",
)
s, den = settings(), current_backend()
x0 = pick_test_image()
C, H, W = den.image_shape
kernel_size, sigma = blur_sliders("blur", H, W, 5, 1.0)
ts = list(ONE_STEP_TS)
noisy = lab.forward(x0.expand(3, -1, -1, -1), torch.tensor(ts), den, generator=s.seed)
show(noisy, [f"noisy, t = {t}" for t in ts])
show(lab.gaussian_blur(noisy, kernel_size, sigma), [f"blurred, t = {t}" for t in ts])
