"""1.2 Classical denoising: a Gaussian blur of x_t / t (the division restores the image's amplitude)."""

import streamlit as st
import torch

import lab
import lab.flow as flow
from ui.controls import blur_sliders, equation
from ui.display import show
from ui.inputs import pick_test_image
from ui.state import current_backend, settings

st.title("1.2 · Classical denoising")
st.markdown("A Gaussian blur removes noise, and the edges with it. Dividing by t brings the image back to its own "
            "brightness; it removes no noise.")  # fmt: skip
equation(r"\hat x_1 = G_{k,\sigma} * \frac{x_t}{t},\qquad G_{k,\sigma}(u, v) \propto e^{-(u^2+v^2)/2\sigma^2},\ |u|, |v| \le \lfloor k/2 \rfloor",
         "k (the kernel size) and σ are the sliders below; x_t are the noisy images of 1.1.")
s, den = settings(), current_backend()
x1 = pick_test_image()
C, H, W = den.image_shape
kernel_size, sigma = blur_sliders("flow_blur", H, W, 5, 1.0)
ts = torch.tensor(flow.NOISY_TS)
x_t = flow.noisy_row(x1, ts, s.seed)
show(x_t, [f"noisy, t = {t:.2f}" for t in ts.tolist()])
show(lab.gaussian_blur(x_t / ts.view(-1, 1, 1, 1), kernel_size, sigma), [f"blurred x_t / t, t = {t:.2f}" for t in ts.tolist()])
