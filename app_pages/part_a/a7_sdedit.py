"""1.7 SDEdit: noise a real image to strided_timesteps[i_start], then denoise it with CFG."""

import streamlit as st
import torch

from ui.common import current_backend, pick_test_image, prompt_input, settings, show
from ui.runs import SDEDIT_ROW, run_all, sdedit_row

st.title("1.7 · Image-to-image translation (SDEdit)")
st.markdown("The more noise (smaller i_start), the more the model invents; the less, the closer to the original.")
s = settings()
x0 = pick_test_image()
prompt = prompt_input("Prompt", "a high quality photo", key="sdedit_prompt")
gamma = 7.0 if s.lecture else st.slider("CFG scale", 0.0, 15.0, 7.0, 0.5, key="sdedit_gamma")
if prompt == "a high quality photo" and getattr(current_backend(), "prompts", None):
    st.caption("With the null prompt the conditional and unconditional estimates coincide: CFG changes nothing. Pick a class to guide.")
edits = [r.images for r in run_all(sdedit_row(s.backend, s.device, s.seed, x0, prompt, gamma), st.progress(0.0))]
show(torch.cat([*edits, x0]), [f"i_start = {i}" for i in SDEDIT_ROW] + ["original"])
