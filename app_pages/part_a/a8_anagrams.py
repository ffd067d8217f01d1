"""1.8 Visual anagrams: eps = (UNet(x_t, p1) + V^-1(UNet(V(x_t), p2))) / 2."""

import streamlit as st
import torch

import lab
from ui.common import current_backend, prompt_input, settings, show, trajectory_viewer
from ui.controls import equation, gamma_slider
from ui.runs import Run, default_prompts, run

VIEWS = {"flip (upside down)": "flip", "rotate 180": "rotate_180", "rotate 90 clockwise": "rotate_cw",
         "rotate 90 counter-clockwise": "rotate_ccw", "negate": "negate", "mirror": "hflip"}  # fmt: skip

st.title("1.8 · Visual anagrams")
s, den = settings(), current_backend()
defaults = default_prompts("anagram", den)
st.markdown("One image, two readings: as it is it shows prompt 1; through the view it shows prompt 2.")
equation(r"\epsilon_1 = \mathrm{UNet}(x_t, t, p_1),\quad \epsilon_2 = V^{-1}\big(\mathrm{UNet}(V(x_t), t, p_2)\big),\quad \epsilon = (\epsilon_1 + \epsilon_2)/2",
         "V is the view (below; the course's is flip), each UNet estimate with CFG scale γ (below).")
c1, c2, c3 = st.columns(3)
with c1:
    p1 = prompt_input("Prompt 1 (as is)", defaults[0], key="anagram_p1", allow_null=False)
with c2:
    p2 = prompt_input("Prompt 2 (through the view)", defaults[1], key="anagram_p2", allow_null=False)
view_label = c3.selectbox("View", list(VIEWS), key="anagram_view")
gamma = gamma_slider("anagram_gamma")
view = lab.get_view(VIEWS[view_label])
if view.name == "negate" and getattr(den, "prompts", None):
    st.warning("Negate on a 28 px bundled model: the negated image has a white background, which no training image has, so "
               "no picture reads as both prompts and the result is noise. A view must keep the noise Gaussian and the "
               "image one the model knows: try flip or a rotation.")  # fmt: skip
res = run(Run("anagram", s.backend, s.device, s.seed, (p1, p2), gamma, views=("identity", view.name)), st.progress(0.0))
show(torch.cat([res.images, view.view(res.images)]), [f"as is: {p1}", f"{view_label}: {p2}"], s.large)
with st.expander("Trajectory"):
    trajectory_viewer(res.frames, res.frame_labels, key="anagram")
