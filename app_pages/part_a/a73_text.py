"""1.7.3 Text-conditional image-to-image: SDEdit under a real prompt."""

import streamlit as st
import torch

from ui.common import current_backend, pick_test_image, prompt_input, settings, show
from ui.runs import SDEDIT_ROW, default_prompts, run_all, sdedit_row

st.title("1.7.3 · Text-conditional image-to-image")
s, den = settings(), current_backend()
st.markdown("SDEdit guided by a prompt: the image drifts towards the prompt as i_start gets smaller.")
x0 = pick_test_image()
prompt = prompt_input("Prompt", default_prompts("text", den)[0], key="text_prompt", allow_null=False)
edits = [r.images for r in run_all(sdedit_row(s.backend, s.device, s.seed, x0, prompt, 7.0), st.progress(0.0))]
show(torch.cat([*edits, x0]), [f"i_start = {i}" for i in SDEDIT_ROW] + ["original"])
