"""1.7.3 Text-conditional image-to-image: SDEdit under a real prompt."""

import streamlit as st
import torch

from ui.common import current_backend, pick_test_image, prompt_input, settings, show
from ui.runs import Run, run

ROW = [1, 3, 5, 7, 10, 20]

st.title("1.7.3 · Text-conditional image-to-image")
s, den = settings(), current_backend()
prompts = list(getattr(den, "prompts", ()) or [])
st.markdown("SDEdit guided by a prompt: the image drifts towards the prompt as i_start gets smaller.")
x0 = pick_test_image()
prompt = prompt_input("Prompt", prompts[7] if prompts else "a rocket ship", key="text_prompt", allow_null=False)
bar = st.progress(0.0)
edits = [run(Run("sdedit", s.backend, s.device, s.seed, (prompt,), 7.0, i_start=i, image=Run.pack(x0)), bar).images for i in ROW]
show(torch.cat([*edits, x0]), [f"i_start = {i}" for i in ROW] + ["original"])
