"""1.7.1 SDEdit on an uploaded image and on a drawing."""

import streamlit as st
import torch

from ui.common import canvas_strokes, drawing_to_image, settings, show, uploaded_image
from ui.runs import SDEDIT_ROW, run_all, sdedit_row


def edit_row(x: torch.Tensor, tag: str) -> None:
    s = settings()
    edits = [r.images for r in run_all(sdedit_row(s.backend, s.device, s.seed, x, "a high quality photo", 7.0), st.progress(0.0))]
    show(torch.cat([*edits, x]), [f"i_start = {i}" for i in SDEDIT_ROW] + [tag])


st.title("1.7.1 · Editing uploads and drawings")
st.markdown("SDEdit projects an image onto what the model knows: try a web image, a photo of your own digit, or a drawing.")
st.subheader("An uploaded image")
x = uploaded_image("Upload an image", key="inputs_upload")
if x is not None:
    edit_row(x, "upload")
st.subheader("A drawing")
strokes = canvas_strokes("inputs_canvas")
if strokes is None:
    st.info("Draw on the canvas, like a pen on paper; the edits appear here.")
else:
    edit_row(drawing_to_image(strokes), "drawing")
    st.success("Edited your drawing.")
