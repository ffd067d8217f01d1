"""3.1 Image-to-image editing: the image noised to a start time, then Euler with CFG; a test image, an upload, a drawing."""

import streamlit as st

from lab.course import DEFAULT_PROMPT
from serving.defaults import flow_prompts
from ui.controls import equation
from ui.edit_view import EDIT_EQUATION, edit_view
from ui.inputs import canvas_strokes, drawing_to_image, pick_test_image, uploaded_image
from ui.messages import page_waits
from ui.state import current_backend

st.title("3.1 · Image-to-image editing")
st.markdown("The earlier the start time (more noise), the more the model invents; the later, the closer to the original. "
            "Try the test image, a web image or a photo of your own, or a drawing.")  # fmt: skip
equation(EDIT_EQUATION, "t_s is the start time below, ε fresh noise from the sidebar's seed; prompt and w are set below.")
source = st.radio("Image", ["test image", "upload", "drawing"], horizontal=True, key="edit_source")
if source == "test image":
    x1 = pick_test_image()
elif source == "upload":
    x1 = uploaded_image("Upload an image", key="edit_upload")
else:
    strokes = canvas_strokes("edit_canvas")
    x1 = None if strokes is None else drawing_to_image(strokes)
    if x1 is None:
        st.info("Draw on the canvas, like a pen on paper; the edits appear here.")
if x1 is None:
    page_waits()
# the test image: its class (a class backend's null prompt would make w do nothing); yours: cleaned up, not made a class
edit_view(x1, source, f"edit_{source.split()[0]}", flow_prompts("edit", current_backend())[0] if source == "test image" else DEFAULT_PROMPT)
