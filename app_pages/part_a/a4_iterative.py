"""1.4 Iterative denoising: step A.3 down the strided timesteps, against one-step and blur."""

import streamlit as st
import torch

import lab
from ui.common import current_backend, frames_row, pick_test_image, settings, show, trajectory_viewer
from ui.runs import ITERATIVE_I_START, Run, one_step_run, run_all

st.title("1.4 · Iterative denoising")
st.markdown("From $t$ = strided_timesteps[i_start], step A.3 walks down the strided timesteps (990, 960, ..., 0).")
s, den = settings(), current_backend()
x0 = pick_test_image()
stride = 30 if s.lecture else st.select_slider("Stride", [10, 20, 30, 50, 100], 30, key="iterative_stride")
timesteps = lab.strided_timesteps(den.T, stride)
i_start = st.slider("i_start", 0, len(timesteps) - 1, min(ITERATIVE_I_START, len(timesteps) - 1), key="iterative_i_start")
t = timesteps[i_start]
noisy = lab.forward(x0, t, den, generator=s.seed)
res, one_step = run_all([Run("iterative", s.backend, s.device, s.seed, scale=None, stride=stride, i_start=i_start, image=Run.pack(x0)),
                    one_step_run(s.backend, s.device, s.seed, noisy, [t])], st.progress(0.0))  # fmt: skip
st.subheader("Every 5th step")
frames_row(res.frames[::5], res.frame_labels[::5])
st.subheader(f"From t = {t}: iterative vs one-step vs blur")
show(torch.cat([x0, noisy, res.images, one_step.images, lab.gaussian_blur(noisy, 5, 2.0)]),
     ["original", f"noisy, t = {t}", "iteratively denoised", "one-step", "Gaussian blur (5, 2)"])  # fmt: skip
st.subheader("Play the trajectory")
trajectory_viewer(res.frames, res.frame_labels, key="iterative")
