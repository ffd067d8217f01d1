"""1.8 Visual anagrams: eps = (UNet(x_t, p1) + V^-1(UNet(V(x_t), p2))) / 2."""

import streamlit as st

import lab
from ui.common import current_backend, prompt_input, settings, show, trajectory_viewer
from ui.runs import Run, default_prompts, run

VIEWS = {"flip (upside down)": "flip", "rotate 180": "rotate_180", "rotate 90 clockwise": "rotate_cw",
         "rotate 90 counter-clockwise": "rotate_ccw", "negate": "negate", "mirror": "hflip"}  # fmt: skip

st.title("1.8 · Visual anagrams")
s, den = settings(), current_backend()
defaults = default_prompts("anagram", den)
st.markdown("One image, two readings: as it is it shows prompt 1; through the view it shows prompt 2.")
c1, c2, c3 = st.columns(3)
with c1:
    p1 = prompt_input("Prompt 1 (as is)", defaults[0], key="anagram_p1", allow_null=False)
with c2:
    p2 = prompt_input("Prompt 2 (through the view)", defaults[1], key="anagram_p2", allow_null=False)
view_label = c3.selectbox("View", list(VIEWS), key="anagram_view")
view = lab.get_view(VIEWS[view_label])
res = run(Run("anagram", s.backend, s.device, s.seed, (p1, p2), 7.0, views=("identity", view.name)), st.progress(0.0))
show(res.images, [p1], s.size * 2)
show(view.view(res.images), [f"{view_label}: {p2}"], s.size * 2)
with st.expander("Trajectory"):
    trajectory_viewer(res.frames, res.frame_labels, key="anagram")
