"""1.7.1 SDEdit on an uploaded image and on a drawing."""

import streamlit as st

from lab.course import DEFAULT_PROMPT
from ui.controls import equation
from ui.editing_view import SDEDIT_EQUATION, editing_view
from ui.inputs import canvas_strokes, drawing_to_image, uploaded_image

st.title("1.7.1 · Editing uploads and drawings")
st.markdown(
    "SDEdit projects an image onto what the model knows: try a web image, a photo of your own digit, or a drawing."
)
equation(SDEDIT_EQUATION, "x_orig is your upload or drawing; prompt, γ and i_start are set under each.")
prompt = DEFAULT_PROMPT  # the course's: your image cleaned up, not turned into a class
st.subheader("An uploaded image")
x = uploaded_image("Upload an image", key="inputs_upload")
if x is not None:
    editing_view("2024", x, "upload", "inputs_upload", prompt)
st.subheader("A drawing")
strokes = canvas_strokes("inputs_canvas")
if strokes is None:
    st.info("Draw on the canvas, like a pen on paper; the edits appear here.")
else:
    editing_view("2024", drawing_to_image(strokes), "drawing", "inputs_drawing", prompt)
    st.success("Edited your drawing.")
