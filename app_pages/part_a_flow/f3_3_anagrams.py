"""3.3 Visual anagrams: v = (v_1 + R^-1 v_2(R x_t)) / 2, each a CFG velocity; R the rotation by 180 degrees."""

import streamlit as st

import lab.fall2026 as fall2026
import lab.flow as flow
from serving.defaults import flow_prompts
from ui.controls import course_pair_buttons, equation, pair_buttons, w_slider
from ui.display import trajectory_viewer
from ui.illusions import LABEL, anagram_controls, show_anagram
from ui.progress import ask, result
from ui.state import current_backend, settings

st.title("3.3 · Visual anagrams")
s, den = settings(), current_backend()
st.markdown("One image, two readings: as it is it shows prompt 1; turned upside down (rotated by 180°) prompt 2.")


def anagram_pair(first: str, second: str) -> dict:
    """The page's settings for an anagram of first (as it is) and second (rotated)."""
    return {
        "flow_anagram_n": 2,
        "flow_anagram_p1": first,
        "flow_anagram_p2": second,
        "flow_anagram_view": LABEL["rotate_180"],
        "flow_anagram_w": fall2026.CFG_W,
    }


course_pair_buttons("anagram", den, anagram_pair, "flow_")
pair_buttons("anagram", den, anagram_pair, "flow_")
equation(
    r"v = \tfrac{1}{N}\textstyle\sum_k V_k^{-1}\big(v_k(V_k(x_t), t)\big),\quad v_k = v_{c,k} + w\,(v_{c,k} - v_u),\quad V_1 = \mathrm{identity},\ V_2 = R",
    "N views (2, the course's rotation R by 180°, or 3: its bells and whistles), V_k and p_k below, each velocity with "
    "CFG scale w; then Euler steps of 0.02 from noise.",
)
prompts, labels, views = anagram_controls("flow_anagram", den, flow_prompts("anagram", den), fall2026.ANAGRAM_VIEWS[1])
w = w_slider("flow_anagram_w")
request = ask(flow.anagram_images, prompts, ("identity", *(v.name for v in views)), 1, w, generator=s.seed)
res = result(request, st.progress(0.0))
show_anagram(res.images, prompts, labels, views, s.large)
with st.expander("Trajectory"):
    trajectory_viewer(res.frames, res.frame_labels, key="flow_anagram")
