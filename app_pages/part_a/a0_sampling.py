"""0 Sampling: prompts at two numbers of inference steps, with the seed reported."""

import streamlit as st
import torch

import lab
from serving.defaults import SAMPLING_STEPS, default_prompts, sampling_timesteps
from serving.requests import Packed
from serving.settings import deepfloyd_settings
from ui.controls import equation, gamma_slider
from ui.display import show
from ui.inputs import prompt_input
from ui.messages import plain
from ui.progress import ask, results
from ui.state import IF_NAME, current_backend, settings, upsampled

st.title("0 · Sampling")
s, den = settings(), current_backend()
st.markdown(
    f"Three prompts, each sampled with CFG at two numbers of steps. Seed **{s.seed}** (sidebar), reused by every page."
)
equation(
    r"\epsilon = \epsilon_u + \gamma\,(\epsilon_c - \epsilon_u)",
    "ε_c under each prompt, ε_u under the empty one; γ is the slider below.",
)
defaults = default_prompts("sampling", den)
prompts = [prompt_input(f"Prompt {i + 1}", defaults[i], key=f"sampling_prompt_{i}", allow_null=False) for i in range(3)]
gamma = gamma_slider("sampling_gamma")
steps = st.select_slider(
    "Numbers of inference steps", options=[5, 10, 20, 34, 50, 100], value=SAMPLING_STEPS, key="sampling_steps"
)
requests = [
    ask(lab.sample, 1, prompt, gamma, sampling_timesteps(den, n), generator=s.seed) for prompt in prompts for n in steps
]
out = iter(results(requests, st.progress(0.0)))
stage2 = (
    s.backend == IF_NAME
    and deepfloyd_settings().stage2 is not None
    and st.toggle(
        "Upsample with stage II (64 -> 256 px)",
        key="sampling_stage2",
        help="the course's optional part: DeepFloyd IF's "
        "super-resolution stage, conditioned on the same prompt (DIFFUSION_LAB_IF_STAGE2)",
    )
)
for prompt in prompts:
    st.markdown(f"**{plain(prompt)}**")  # what the user typed, drawn as it is
    row = torch.cat([next(out).images for _ in steps])
    show(row, [f"{n} steps" for n in steps], name=prompt)
    if stage2:
        show(
            upsampled(Packed.of(row), prompt, s.seed),
            [f"{n} steps, stage II" for n in steps],
            s.large,
            name=f"{prompt}, stage II",
        )
