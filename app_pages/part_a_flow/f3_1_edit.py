"""3.1 Image-to-image editing: the image noised to a start time, then Euler with CFG; a test image, an upload, a drawing."""

import streamlit as st

from lab.course import DEFAULT_PROMPT
from serving.defaults import flow_prompts
from ui.controls import equation
from ui.editing_view import EDIT_EQUATION, editing_view
from ui.inputs import image_choice, image_tag
from ui.messages import page_waits
from ui.state import current_backend

st.title("3.1 · Image-to-image editing")
st.markdown(
    "The earlier the start time (more noise), the more the model invents; the later, the closer to the original. "
    "Try the test image, a web image or a photo of your own, or a drawing."
)
equation(
    EDIT_EQUATION, "t_s is the start time below, ε fresh noise from the sidebar's seed; prompt and w are set below."
)
x1, source = image_choice("edit")
if x1 is None:
    page_waits()
# the test image: its class (a class backend's null prompt would make w do nothing); yours: cleaned up, not made a class
default = flow_prompts("edit", current_backend())[0] if source == "test image" else DEFAULT_PROMPT
editing_view("2026", x1, image_tag(source), f"edit_{source.split()[0]}", default)
