"""1.7 SDEdit: noise a real image to strided_timesteps[i_start], then denoise it with CFG."""

import streamlit as st

from serving.defaults import default_prompts
from ui.controls import equation
from ui.editing_view import SDEDIT_EQUATION, editing_view
from ui.inputs import pick_test_image
from ui.state import current_backend

st.title("1.7 · Image-to-image translation (SDEdit)")
st.markdown("The more noise (smaller i_start), the more the model invents; the less, the closer to the original.")
equation(SDEDIT_EQUATION, "i_start and γ are the sliders below; ε is fresh noise from the sidebar's seed.")
x0 = pick_test_image()
editing_view("2024", x0, "original", "sdedit", default_prompts("sdedit", current_backend())[0])
