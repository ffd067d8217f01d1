"""2.1 Classifier-free guidance: v = v_c + w (v_c - v_u) (A.4)."""

import streamlit as st

from lab.fall2026 import SAMPLES as FLOW_SAMPLES
from serving.defaults import flow_prompts
from serving.requests import FlowSample
from ui.controls import equation, w_slider
from ui.display import show
from ui.inputs import prompt_input
from ui.progress import results
from ui.state import current_backend, settings

st.title("2.1 · Classifier-free guidance")
equation(
    r"v = v_c + w\,(v_c - v_u)",
    "v_c under the prompt, v_u under the empty prompt; w is the slider below: 0 is the conditional velocity, larger "
    "follows the prompt harder (the same noises as 1.6).",
)
s, den = settings(), current_backend()
prompt = prompt_input("Prompt", flow_prompts("cfg", den)[0], key="flow_cfg_prompt", allow_null=not den.prompts)
w = w_slider("flow_cfg_w")
guided, plain = results(
    [
        FlowSample(s.backend, s.device, s.seed, prompt=prompt, w=w, n=FLOW_SAMPLES),
        FlowSample(s.backend, s.device, s.seed, prompt=prompt, w=None, n=FLOW_SAMPLES),
    ],
    st.progress(0.0),
)
seeds = [f"seed {s.seed + i}" for i in range(FLOW_SAMPLES)]  # sample i from noise(seed + i), as the notebook's
st.subheader(f"With CFG, w = {w:g}")
show(guided.images, seeds)
st.subheader("Without CFG (the same noises)")
show(plain.images, seeds)
