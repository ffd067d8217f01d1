"""1.6 Classifier-free guidance: eps = eps_u + gamma (eps_c - eps_u) (A.4)."""

import streamlit as st

from lab.fall2024 import SAMPLES
from serving.defaults import default_prompts
from serving.requests import Sample
from ui.controls import equation, gamma_slider
from ui.display import show
from ui.inputs import prompt_input
from ui.progress import results
from ui.state import current_backend, settings

st.title("1.6 · Classifier-free guidance")
equation(
    r"\epsilon = \epsilon_u + \gamma\,(\epsilon_c - \epsilon_u)",
    "ε_c under the prompt, ε_u under the empty prompt; γ is the slider below: 1 is no guidance, 0 ignores the prompt.",
)
s = settings()
den = current_backend()
prompt = prompt_input("Prompt", default_prompts("cfg", den)[0], key="cfg_prompt", allow_null=not den.prompts)
gamma = gamma_slider("cfg_gamma")
guided, plain = results(
    [
        Sample(s.backend, s.device, s.seed, prompt=prompt, scale=gamma, n=SAMPLES),
        Sample(s.backend, s.device, s.seed, prompt=prompt, scale=None, n=SAMPLES),
    ],
    st.progress(0.0),
)
st.subheader(f"With CFG, gamma = {gamma:g}")
show(guided.images)
st.subheader("Without CFG (same seed)")
show(plain.images)
