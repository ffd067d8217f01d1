"""1.5 Euler sampling: x_{t+h} = x_t + h v(x_t, t, c) (A.3) from the t = 0.5 input, against one-step and blur."""

import streamlit as st
import torch

import lab
import lab.flow as flow
from lab.course import DEFAULT_PROMPT
from serving.requests import FlowEuler, FlowOneStep, pack
from ui.controls import blur_sliders, equation, step_size_slider
from ui.display import frames_row, show, trajectory_viewer
from ui.inputs import pick_test_image, prompt_input
from ui.progress import results
from ui.state import current_backend, settings

st.title("1.5 · Euler sampling")
equation(r"x_{t+h} = x_t + h\,v_\theta(x_t, t, c),\quad t = 0.5, 0.5 + h, \dots \to 1",
         "from the noisy image of 1.1 at t = 0.5; h is the step size below (the last step is shortened to end at t = 1). "
         "A large h shows Euler's error: each step follows the velocity where it starts, and the path bends.")
s, den = settings(), current_backend()
x1 = pick_test_image()
c1, c2 = st.columns([1, 2])
with c1:
    prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="euler_prompt")
    h = step_size_slider("euler_h")
with c2:
    kernel_size, sigma = blur_sliders("euler_blur", *den.image_shape[1:], 5, 2.0)
x_t = flow.noisy_row(x1, [flow.EULER_T], s.seed)
euler, one_step = results([FlowEuler(s.backend, s.device, s.seed, image=pack(x_t), t_start=flow.EULER_T, prompt=prompt, step_size=h),
                           FlowOneStep(s.backend, s.device, s.seed, image=pack(x_t), ts=[flow.EULER_T], prompt=prompt)], st.progress(0.0))  # fmt: skip
blurred = lab.gaussian_blur(x_t / flow.EULER_T, kernel_size, sigma)
methods = {"Euler": euler.images, "one-step": one_step.images.clamp(-1, 1), f"blur ({kernel_size}, {sigma:g})": blurred.clamp(-1, 1)}
mse = {name: float(((x - x1) / 2).pow(2).mean()) for name, x in methods.items()}  # images in [0, 1], as the course measures
updates = len(euler.frames)
st.subheader(f"From t = {flow.EULER_T}: {updates} updates of h = {h:g}")
show(torch.cat([x1, x_t, *methods.values()]), ["original", f"noisy, t = {flow.EULER_T}", *(f"{n}: MSE {m:.4f}" for n, m in mse.items())])
st.caption("MSE against the original, images in [0, 1]. Euler restores detail; it need not win on MSE (the course's "
           "figures on its test image: best blur 0.0242, one-step 0.0085, Euler 0.0100).")  # fmt: skip
st.subheader("The start, every 5th update and the end")
keep = sorted({0, *range(4, updates, 5), updates - 1})
start = lab.images.to_uint8(x_t, -1, 1)[0]
frames_row([start, *(euler.frames[i] for i in keep)], [f"t = {flow.EULER_T}", *(euler.frame_labels[i] for i in keep)])
st.subheader("Play the trajectory")
trajectory_viewer(euler.frames, euler.frame_labels, key="euler")
