"""0 Sampling: prompts at two numbers of inference steps, with the seed reported."""

import streamlit as st
import torch

from ui.common import current_backend, prompt_input, settings, show
from ui.controls import equation, gamma_slider
from ui.runs import Run, default_prompts, run_all

st.title("0 · Sampling")
s, den = settings(), current_backend()
st.markdown(f"Three prompts, each sampled with CFG at two numbers of steps. Seed **{s.seed}** (sidebar), reused by every page.")
equation(r"\epsilon = \epsilon_u + \gamma\,(\epsilon_c - \epsilon_u)", "ε_c under each prompt, ε_u under the empty one; γ is the slider below.")
defaults = default_prompts("sampling", den)
prompts = [prompt_input(f"Prompt {i + 1}", defaults[i], key=f"sampling_prompt_{i}", allow_null=False) for i in range(3)]
gamma = gamma_slider("sampling_gamma")
steps = st.select_slider("Numbers of inference steps", options=[5, 10, 20, 34, 50, 100], value=(10, 34), key="sampling_steps")
cfgs = [Run("sample", s.backend, s.device, s.seed, (prompt,), gamma, stride=max(1, den.T // n)) for prompt in prompts for n in steps]
results = iter(run_all(cfgs, st.progress(0.0)))
for prompt in prompts:
    st.markdown(f"**{prompt}**")
    show(torch.cat([next(results).images for _ in steps]), [f"{n} steps" for n in steps], name=prompt)
