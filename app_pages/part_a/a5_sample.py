"""1.5 Sampling from pure noise: i_start = 0, no guidance."""

import streamlit as st

import lab
from lab.course import DEFAULT_PROMPT
from lab.fall2024 import SAMPLES
from ui.controls import equation
from ui.display import show, trajectory_viewer
from ui.inputs import prompt_input
from ui.progress import ask, result
from ui.state import settings

st.title("1.5 · Sampling from pure noise")
st.markdown('`iterative_denoise` with i_start = 0 and x = pure noise, prompt "a high quality photo", no CFG.')
equation(
    r"x_{990} \sim \mathcal N(0, I),\qquad x_{t'} = \frac{\sqrt{\bar\alpha_{t'}}\,\beta_t}{1-\bar\alpha_t}\,\hat "
    r"x_0 + \frac{\sqrt{\alpha_t}\,(1-\bar\alpha_{t'})}{1-\bar\alpha_t}\,x_t + v_\sigma",
    "the step of 1.4 from i_start = 0; the noise comes from the sidebar's seed.",
)
s = settings()
prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="sample_prompt")
n = SAMPLES if s.lecture else st.slider("Samples", 1, 16, SAMPLES, key="sample_n")
res = result(ask(lab.sample, n, prompt, None, generator=s.seed), st.progress(0.0))
show(res.images, [f"sample {i + 1}" for i in range(n)])
with st.expander("Trajectory of sample 1"):
    trajectory_viewer(res.frames, res.frame_labels, key="sample")
