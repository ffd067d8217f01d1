"""2.1 Classifier-free guidance: v = v_c + w (v_c - v_u) (A.4)."""

import streamlit as st

from ui.cfg_view import cfg_view
from ui.controls import equation

st.title("2.1 · Classifier-free guidance")
equation(
    r"v = v_c + w\,(v_c - v_u)",
    "v_c under the prompt, v_u under the empty prompt; w is the slider below: 0 is the conditional velocity, larger "
    "follows the prompt harder (the same noises as 1.6; sample i from the notebook's noise(seed + i)).",
)
cfg_view("2026")
