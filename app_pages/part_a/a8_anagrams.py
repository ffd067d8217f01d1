"""1.8 Visual anagrams: eps = mean_k V_k^-1(UNet(V_k(x_t), p_k)), two or three views."""

import streamlit as st
import torch

import lab
from lab.course import CFG_SCALE
from serving.defaults import default_prompts, why_defaults
from serving.requests import Anagram
from ui.controls import equation, gamma_slider, pair_buttons
from ui.display import show, trajectory_viewer
from ui.inputs import prompt_input
from ui.progress import result
from ui.results import describe
from ui.state import current_backend, settings

VIEWS = {"flip (upside down)": "flip", "rotate 180": "rotate_180", "rotate 90 clockwise": "rotate_cw",
         "rotate 90 counter-clockwise": "rotate_ccw", "negate": "negate", "mirror": "hflip", "skew": "skew",
         "patch permutation (4 x 4)": "patch_permute", "pixel permutation": "pixel_permute", "jigsaw": "jigsaw",
         "inner circle (turned 180)": "inner_circle", "square hinge": "square_hinge",
         "blur (fails on purpose)": "blur_failure", "white balance (fails on purpose)": "white_balance_failure"}  # fmt: skip

st.title("1.8 · Visual anagrams")
s, den = settings(), current_backend()
C, H, W = den.image_shape
choices = [label for label, v in VIEWS.items() if C == 3 or v != "white_balance_failure"]  # white balance needs colour
defaults = default_prompts("anagram", den)
st.markdown("One image, several readings: as it is it shows prompt 1; through each view it shows that view's prompt.")
if why := why_defaults("anagram", den):
    st.caption(why)
pair_buttons("anagram", den, lambda first, second: {"anagram_n": 2, "anagram_p1": first, "anagram_p2": second,
                                                    "anagram_view": "flip (upside down)", "anagram_gamma": CFG_SCALE})
equation(r"\epsilon_k = V_k^{-1}\big(\mathrm{UNet}(V_k(x_t), t, p_k)\big),\quad \epsilon = \tfrac{1}{N}\textstyle\sum_k \epsilon_k,\quad V_1 = \mathrm{identity}",
         "N views (2, as the course, or 3, as visual_anagrams does), V_k and p_k below, each UNet estimate with CFG scale γ.")
n_views = st.radio("Views", [2, 3], horizontal=True, key="anagram_n", help="three prompts seen three ways, as Geng et al.'s visual_anagrams does")
columns = st.columns(2 * n_views - 1)
with columns[0]:
    prompts = [prompt_input("Prompt 1 (as is)", defaults[0], key="anagram_p1", allow_null=False)]
labels = []
for k in range(1, n_views):
    with columns[2 * k - 1]:
        prompts.append(prompt_input(f"Prompt {k + 1} (through view {k + 1})", defaults[k], key=f"anagram_p{k + 1}", allow_null=False))
    labels.append(columns[2 * k].selectbox(f"View {k + 1}", choices, index=k - 1, key="anagram_view" if k == 1 else f"anagram_view{k + 1}"))
describe(views=["identity", *(VIEWS[v] for v in labels)])
gamma = gamma_slider("anagram_gamma")
views = [lab.get_view(VIEWS[v], H, W) for v in labels]
for v, label in zip(views, labels):
    if v.fails:
        st.warning(f"**{label}** cannot make an anagram: {v.fails} A view must keep the noise Gaussian: a permutation "
                   "of the pixels (flip, rotations, skew, the permutations, jigsaw, inner circle, square hinge) or a negation.")
if len({v.name for v in views}) < len(views):
    st.warning("Two prompts share a view: the image cannot read as both through it. Pick different views.")
if any(v.name == "negate" for v in views) and den.prompts:
    st.warning("Negate on a 28 px bundled model: the negated image has a white background, which no training image has, so "
               "no picture reads as both prompts and the result is noise. A view must keep the noise Gaussian and the "
               "image one the model knows: try flip or a rotation.")  # fmt: skip
res = result(Anagram(s.backend, s.device, s.seed, prompts=tuple(prompts), views=("identity", *(v.name for v in views)), scale=gamma), st.progress(0.0))
show(torch.cat([res.images, *(v.view(res.images) for v in views)]),
     [f"as is: {prompts[0]}", *(f"{label}: {p}" for label, p in zip(labels, prompts[1:]))], s.large)  # fmt: skip
with st.expander("Trajectory"):
    trajectory_viewer(res.frames, res.frame_labels, key="anagram")
