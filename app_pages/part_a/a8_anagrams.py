"""1.8 Visual anagrams: eps = mean_k V_k^-1(UNet(V_k(x_t), p_k)), two or three views."""

import streamlit as st

import lab
from lab.course import CFG_SCALE
from serving.defaults import default_prompts, why_defaults
from ui.controls import equation, gamma_slider, pair_buttons
from ui.display import trajectory_viewer
from ui.illusions import LABEL, anagram_controls, show_anagram
from ui.progress import ask, result
from ui.state import current_backend, settings

st.title("1.8 · Visual anagrams")
s, den = settings(), current_backend()
st.markdown("One image, several readings: as it is it shows prompt 1; through each view it shows that view's prompt.")
if why := why_defaults("anagram", den):
    st.caption(why)
pair_buttons(
    "anagram",
    den,
    lambda first, second: {
        "anagram_n": 2,
        "anagram_p1": first,
        "anagram_p2": second,
        "anagram_view": LABEL["flip"],
        "anagram_gamma": CFG_SCALE,
    },
)
equation(
    r"\epsilon_k = V_k^{-1}\big(\mathrm{UNet}(V_k(x_t), t, p_k)\big),\quad \epsilon = \tfrac{1}{N}\textstyle\sum_k \epsilon_k,\quad V_1 = \mathrm{identity}",
    "N views (2, as the course, or 3, as visual_anagrams does), V_k and p_k below, each UNet estimate with CFG scale γ.",
)
prompts, labels, views = anagram_controls("anagram", den, default_prompts("anagram", den), "flip")
gamma = gamma_slider("anagram_gamma")
res = result(
    ask(lab.visual_anagrams, prompts, ("identity", *(v.name for v in views)), 1, gamma, generator=s.seed),
    st.progress(0.0),
)
show_anagram(res.images, prompts, labels, views, s.large)
with st.expander("Trajectory"):
    trajectory_viewer(res.frames, res.frame_labels, key="anagram")
