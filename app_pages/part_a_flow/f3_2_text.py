"""3.2 Text-guided editing: the edit of 3.1 under a prompt of your own, a prompt per image; a logo made this way
(the course's bells and whistles) downloads at the model's full size."""

import streamlit as st

from serving.defaults import flow_prompts
from ui.controls import equation
from ui.editing_view import EDIT_EQUATION, editing_view
from ui.inputs import image_choice, image_tag
from ui.messages import page_waits
from ui.state import current_backend

st.title("3.2 · Text-guided editing")
st.markdown(
    "The edit of 3.1 guided by a prompt: the image drifts towards it as the start time gets earlier. The course "
    "asks for its test image and two of your own, each with its prompt: the test image, your upload and your "
    "drawing each keep theirs here."
)
equation(EDIT_EQUATION, "the prompt conditions v_c; the start time t_s and w are the sliders below.")
x1, source = image_choice("text")
if x1 is None:
    page_waits()
key = "flow_text" if source == "test image" else f"flow_text_{source}"  # a prompt per image
editing_view("2026", x1, image_tag(source), key, flow_prompts("text", current_backend())[0], full_size=True)
st.caption(
    "Bells and whistles (CS280A), a course logo: draw it (or upload a sketch), describe the logo you want in the "
    "prompt, pick the start time that keeps your layout, and download the edit at the model's full size."
)
