"""1.6 Classifier-free guidance: eps = eps_u + gamma (eps_c - eps_u) (A.4)."""

import streamlit as st

from ui.common import current_backend, prompt_input, settings, show
from ui.runs import Run, run

st.title("1.6 · Classifier-free guidance")
st.markdown(r"$\epsilon = \epsilon_u + \gamma(\epsilon_c - \epsilon_u)$, $\epsilon_u$ under the empty prompt. $\gamma = 1$ is no guidance.")
s = settings()
den_prompts = list(getattr(current_backend(), "prompts", ()) or [])
prompt = prompt_input("Prompt", den_prompts[3] if den_prompts else "a high quality photo", key="cfg_prompt", allow_null=not den_prompts)
gamma = st.slider("CFG scale gamma", 0.0, 15.0, 7.0, 0.5, key="cfg_gamma")
n = 5
bar = st.progress(0.0)
guided = run(Run("sample", s.backend, s.device, s.seed, (prompt,), gamma, n=n), bar)
plain = run(Run("sample", s.backend, s.device, s.seed, (prompt,), None, n=n), bar)
st.subheader(f"With CFG, gamma = {gamma:g}")
show(guided.images)
st.subheader("Without CFG (same seed)")
show(plain.images)
