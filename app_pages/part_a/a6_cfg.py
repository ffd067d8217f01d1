"""1.6 Classifier-free guidance: eps = eps_u + gamma (eps_c - eps_u) (A.4)."""

import streamlit as st

from ui.common import current_backend, prompt_input, settings, show
from ui.controls import equation, gamma_slider
from ui.runs import Run, default_prompts, run_all

st.title("1.6 · Classifier-free guidance")
equation(r"\epsilon = \epsilon_u + \gamma\,(\epsilon_c - \epsilon_u)", "ε_c under the prompt, ε_u under the empty prompt; γ is the slider below: 1 is no guidance, 0 ignores the prompt.")
s = settings()
den = current_backend()
prompt = prompt_input("Prompt", default_prompts("cfg", den)[0], key="cfg_prompt", allow_null=not getattr(den, "prompts", None))
gamma = gamma_slider("cfg_gamma")
n = 5
guided, plain = run_all([Run("sample", s.backend, s.device, s.seed, (prompt,), gamma, n=n),
                         Run("sample", s.backend, s.device, s.seed, (prompt,), None, n=n)], st.progress(0.0))  # fmt: skip
st.subheader(f"With CFG, gamma = {gamma:g}")
show(guided.images)
st.subheader("Without CFG (same seed)")
show(plain.images)
