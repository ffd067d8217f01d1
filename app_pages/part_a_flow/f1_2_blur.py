"""1.2 Classical denoising: a Gaussian blur of x_t / t (the division restores the image's amplitude); the course's sweep
of sigma keeps the best blur per t, beside a blur of your own."""

import streamlit as st
import torch

import lab
import lab.fall2026 as fall2026
import lab.flow as flow
from ui.controls import blur_sliders, equation
from ui.display import show
from ui.inputs import image_choice, image_tag
from ui.messages import page_waits
from ui.state import current_backend, settings

st.title("1.2 · Classical denoising")
st.markdown(
    "A Gaussian blur removes noise, and the edges with it. Dividing by t brings the image back to its own "
    "brightness; it removes no noise."
)
equation(
    r"\hat x_1 = G_{k,\sigma} * \frac{x_t}{t},\qquad G_{k,\sigma}(u, v) \propto e^{-(u^2+v^2)/2\sigma^2},\ |u|, |v| \le \lfloor k/2 \rfloor",
    "the course's sweep tries σ = 1, 2, 4, 8, 16 at 512 px (k = 6σ + 1), scaled to this model's size, and keeps the "
    "blur of least MSE to the image; k and σ of your own are the sliders below; x_t are the noisy images of 1.1.",
)
s, den = settings(), current_backend()
x1, source = image_choice("part1")  # the course: one image of your own on 1.1 to 1.5
if x1 is None:
    page_waits()
tag = image_tag(source)
C, H, W = den.image_shape
ts = torch.tensor(fall2026.NOISY_TS)
x_t = flow.noisy_row(x1, ts, s.seed)
show(x_t, [f"noisy, t = {t:.2f}" for t in ts.tolist()])
st.subheader("The course's sweep: the best blur per t")
sweep = flow.sweep_blurs(W)
best = [flow.blur_sweep(x_t[i : i + 1], t, x1) for i, t in enumerate(ts.tolist())]
show(
    torch.cat([b[0] for b in best]).clamp(-1, 1),
    [f"t = {t:.2f}: σ {b[1]:.2g}, k {b[2]}, MSE {b[3]:.4f}" for t, b in zip(ts.tolist(), best)],
)
st.caption(
    f"σ tried at {W} px: {', '.join(f'{sigma:.2g} (k {k})' for sigma, k in sweep)}, the course's 1, 2, 4, 8, 16 "
    "at 512 px scaled; MSE against the image, both in [-1, 1] as the course's notebook measures it."
)
st.subheader("A blur of your own")
top = sweep[-1][0]
kernel_size, sigma = blur_sliders("flow_blur", H, W, 5, 1.0, sigma_max=max(10.0, round(top + 0.05, 1)))
mine = lab.gaussian_blur(x_t / ts.view(-1, 1, 1, 1), kernel_size, sigma)
show(mine.clamp(-1, 1), [f"t = {t:.2f}: MSE {float((m - x1).pow(2).mean()):.4f}" for t, m in zip(ts.tolist(), mine)])
