"""1.5 Euler sampling: x_{t+h} = x_t + h v(x_t, t, c) (A.3) from the t = 0.5 input, against one-step and blur."""

import streamlit as st
import torch

import lab
import lab.fall2026 as fall2026
import lab.flow as flow
from lab.course import DEFAULT_PROMPT
from serving.requests import per_image
from ui.controls import blur_sliders, equation, step_size_slider
from ui.display import frames_row, show, trajectory_viewer
from ui.inputs import image_choice, image_tag, prompt_input
from ui.messages import page_waits
from ui.progress import ask, results
from ui.state import current_backend, settings

STAFF_MSE = {"blur": 0.0242, "one_step": 0.00849, "euler": 0.00997}  # the course's VALIDATION.md: Campanile, t = 0.5

st.title("1.5 · Euler sampling")
equation(
    r"x_{t+h} = x_t + h\,v_\theta(x_t, t, c),\quad t = 0.5, 0.5 + h, \dots \to 1",
    "from the noisy image of 1.1 at t = 0.5; h is the step size below (the last step is shortened to end at t = 1). "
    "A large h shows Euler's error: each step follows the velocity where it starts, and the path bends.",
)
s, den = settings(), current_backend()
x1, source = image_choice("part1")  # the course: one image of your own on 1.1 to 1.5
if x1 is None:
    page_waits()
tag = image_tag(source)
c1, c2 = st.columns([1, 2])
with c1:
    prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="euler_prompt")
    h = step_size_slider("euler_h")
with c2:
    kernel_size, sigma = blur_sliders("euler_blur", *den.image_shape[1:], 5, 2.0)
x_t = flow.noisy_row(x1, [fall2026.EULER_T], s.seed)
euler, one_step = results(
    [
        ask(flow.sample_from, x_t, fall2026.EULER_T, prompt, step_size=h),
        *per_image(flow.one_step, s.backend, s.device, x_t, [fall2026.EULER_T], prompt=prompt),
    ],
    st.progress(0.0),
)
best_blur, best_sigma, _, _ = flow.blur_sweep(x_t, fall2026.EULER_T, x1)
mine = lab.gaussian_blur(x_t / fall2026.EULER_T, kernel_size, sigma)
methods = {"Euler": euler.images, "one-step": one_step.images, "best blur": best_blur, "your blur": mine}
mse = {
    name: float((x.clamp(-1, 1) - x1).pow(2).mean()) for name, x in methods.items()
}  # in [-1, 1], as the course's notebook
captions = {
    "best blur": f"best blur of the sweep (σ {best_sigma:.2g})",
    "your blur": f"your blur ({kernel_size}, {sigma:g})",
}
updates = len(euler.frames)
st.subheader(f"From t = {fall2026.EULER_T}: {updates} updates of h = {h:g}")
show(
    torch.cat([x1, x_t, *(x.clamp(-1, 1) for x in methods.values())]),
    [tag, f"noisy, t = {fall2026.EULER_T}", *(f"{captions.get(n, n)}: MSE {m:.4f}" for n, m in mse.items())],
)
st.markdown(
    "| MSE against the image, pixels in [-1, 1] as the course's notebook measures | Euler | one-step | best blur of the sweep |\n"
    f"|---|---|---|---|\n| here: {tag}, this model | {mse['Euler']:.4f} | {mse['one-step']:.4f} | {mse['best blur']:.4f} |\n"
    f"| the course's staff: the Campanile, PixNerd | {STAFF_MSE['euler']:.4f} | {STAFF_MSE['one_step']:.4f} | {STAFF_MSE['blur']:.4f} |"
)
st.caption(
    "Euler restores detail; it need not win on MSE (on the staff's Campanile one-step scored lower). Both should "
    "beat the blur on an image the model knows."
)
st.subheader("The start, every 5th update and the end")
keep = sorted({0, *range(4, updates, 5), updates - 1})
start = lab.images.to_uint8(x_t, -1, 1)[0]
frames_row(
    [start, *(euler.frames[i] for i in keep)], [f"t = {fall2026.EULER_T}", *(euler.frame_labels[i] for i in keep)]
)
st.subheader("Play the trajectory")
trajectory_viewer(euler.frames, euler.frame_labels, key="euler")
