"""1.6 Sampling from noise: Euler from t = 0, no guidance."""

import streamlit as st

import lab.flow as flow
from lab.course import DEFAULT_PROMPT
from lab.fall2026 import SAMPLES as FLOW_SAMPLES
from ui.controls import equation, step_size_slider
from ui.display import show, trajectory_viewer
from ui.inputs import prompt_input
from ui.progress import ask, result
from ui.state import settings

st.title("1.6 · Sampling from noise")
st.markdown('Euler\'s method from pure noise at t = 0 to the image at t = 1, under "a high quality photo", no CFG.')
equation(
    r"x_0 \sim \mathcal N(0, I),\qquad x_{t+h} = x_t + h\,v_\theta(x_t, t, c),\quad t = 0, h, 2h, \dots \to 1",
    "sample i starts from noise(seed + i), the sidebar's seed the first; h is the step size below (0.02: 50 updates).",
)
s = settings()
prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="flow_sample_prompt")
n = FLOW_SAMPLES if s.lecture else st.slider("Samples", 1, 16, FLOW_SAMPLES, key="flow_sample_n")
h = step_size_slider("flow_sample_h")
res = result(ask(flow.sample, n, prompt, None, h, seeds=range(s.seed, s.seed + n)), st.progress(0.0))
show(res.images, [f"seed {s.seed + i}" for i in range(n)])
st.caption(
    f"Sample i starts from the notebook's noise(seed + i): the sidebar's seed {s.seed} is the first (the course's 180 "
    "to 184 by default), so each picture is the one the notebook draws from that seed on this model."
)
with st.expander(f"Trajectory of seed {s.seed}"):
    trajectory_viewer(res.frames, res.frame_labels, key="flow_sample")
