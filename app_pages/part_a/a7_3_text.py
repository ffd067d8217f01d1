"""1.7.3 Text-conditional image-to-image: SDEdit under a real prompt."""

import streamlit as st

from serving.defaults import default_prompts
from ui.controls import equation
from ui.editing_view import SDEDIT_EQUATION, editing_view
from ui.inputs import pick_test_image
from ui.state import current_backend

st.title("1.7.3 · Text-conditional image-to-image")
st.markdown("SDEdit guided by a prompt: the image drifts towards the prompt as i_start gets smaller.")
equation(SDEDIT_EQUATION, "the prompt conditions ε_c; i_start and γ are the sliders below.")
x0 = pick_test_image()
editing_view("2024", x0, "original", "text", default_prompts("text", current_backend())[0])
