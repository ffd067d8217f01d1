"""3.2 Text-guided editing: the edit of 3.1 under a prompt."""

import streamlit as st

from serving.defaults import flow_prompts
from ui.controls import equation
from ui.edit_view import EDIT_EQUATION, edit_view
from ui.inputs import pick_test_image
from ui.state import current_backend

st.title("3.2 · Text-guided editing")
st.markdown("The edit of 3.1 guided by a prompt: the image drifts towards it as the start time gets earlier.")
equation(EDIT_EQUATION, "the prompt conditions v_c; the start time t_s and w are the sliders below.")
edit_view(pick_test_image(), "original", "flow_text", flow_prompts("text", current_backend())[0])
