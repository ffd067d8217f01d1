"""1.6 Classifier-free guidance: eps = eps_u + gamma (eps_c - eps_u) (A.4)."""

import streamlit as st

from ui.cfg_view import cfg_view
from ui.controls import equation

st.title("1.6 · Classifier-free guidance")
equation(
    r"\epsilon = \epsilon_u + \gamma\,(\epsilon_c - \epsilon_u)",
    "ε_c under the prompt, ε_u under the empty prompt; γ is the slider below: 1 is no guidance, 0 ignores the prompt.",
)
cfg_view("2024")
