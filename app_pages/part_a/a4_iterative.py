"""1.4 Iterative denoising: step A.3 down the strided timesteps, against one-step and blur."""

import streamlit as st
import torch

import lab
from lab.fall2024 import ITERATIVE_I_START
from serving.requests import per_image
from ui.controls import blur_sliders, equation, i_start_slider
from ui.display import frames_row, show, trajectory_viewer
from ui.inputs import pick_test_image
from ui.progress import ask, results
from ui.state import current_backend, settings

st.title("1.4 · Iterative denoising")
st.markdown("From $t$ = strided_timesteps[i_start], step A.3 walks down the strided timesteps (990, 960, ..., 0).")
equation(
    r"x_{t'} = \frac{\sqrt{\bar\alpha_{t'}}\,\beta_t}{1-\bar\alpha_t}\,\hat x_0 + "
    r"\frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t'})}{1-\bar\alpha_t}\,x_t + v_\sigma,\quad \alpha_t = \bar\alpha_t "
    r"/ \bar\alpha_{t'},\ \beta_t = 1 - \alpha_t",
    "t' is the next strided timestep after t; x̂_0 is the one-step estimate; i_start (below) sets the first t.",
)
s, den = settings(), current_backend()
x0 = pick_test_image()
stride = 30 if s.lecture else st.select_slider("Stride", [10, 20, 30, 50, 100], 30, key="iterative_stride")
timesteps = lab.strided_timesteps(den.T, stride)
c1, c2 = st.columns([1, 2])
with c1:
    i_start, t = i_start_slider("iterative_i_start", den.T, ITERATIVE_I_START, stride)
with c2:
    kernel_size, sigma = blur_sliders("iterative_blur", *den.image_shape[1:], 5, 2.0)
noisy = lab.forward(x0, t, den, generator=s.seed)
res, one_step = results(
    [
        ask(lab.iterative_denoise, noisy, i_start, timesteps=timesteps, generator=s.seed),
        *per_image(lab.one_step_denoise, s.backend, s.device, noisy, [t]),
    ],
    st.progress(0.0),
)
st.subheader(f"From t = {t}: iterative vs one-step vs blur")
show(
    torch.cat([x0, noisy, res.images, one_step.images, lab.gaussian_blur(noisy, kernel_size, sigma)]),
    ["original", f"noisy, t = {t}", "iteratively denoised", "one-step", f"Gaussian blur ({kernel_size}, {sigma:g})"],
)
st.subheader("Every 5th step")
frames_row(res.frames[::5], res.frame_labels[::5])
st.subheader("Play the trajectory")
trajectory_viewer(res.frames, res.frame_labels, key="iterative")
