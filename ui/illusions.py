"""The controls and pictures of the illusion pages, the same in both editions (1.8 / 3.3 anagrams, 1.9 / 3.4 hybrids):
prompts paired with views, prompts split by frequency bands, and the picture seen through each view or at each size.
The pages add their edition's equation, guidance control and request."""

from __future__ import annotations

import streamlit as st
import torch

import lab
from ui.controls import blur_sliders
from ui.display import show
from ui.inputs import prompt_input
from ui.results import describe

VIEWS = {
    "flip (upside down)": "flip",
    "rotate 180": "rotate_180",
    "rotate 90 clockwise": "rotate_cw",
    "rotate 90 counter-clockwise": "rotate_ccw",
    "negate": "negate",
    "mirror": "hflip",
    "skew": "skew",
    "patch permutation (4 x 4)": "patch_permute",
    "pixel permutation": "pixel_permute",
    "jigsaw": "jigsaw",
    "inner circle (turned 180)": "inner_circle",
    "square hinge": "square_hinge",
    "blur (fails on purpose)": "blur_failure",
    "white balance (fails on purpose)": "white_balance_failure",
}
LABEL = {view: label for label, view in VIEWS.items()}


def anagram_controls(key: str, den, defaults: tuple[str, ...], first_view: str) -> tuple[list[str], list[str], list]:
    """Two or three views, each with its prompt (the first as is), and what makes a view fail said under them;
    (prompts, view labels, views). Widget keys: key_n, key_p1.., key_view, key_view3."""
    C, H, W = den.image_shape
    choices = [
        label for label, v in VIEWS.items() if C == 3 or v != "white_balance_failure"
    ]  # white balance needs colour
    n_views = st.radio(
        "Views",
        [2, 3],
        horizontal=True,
        key=f"{key}_n",
        help="three prompts seen three ways, as Geng et al.'s visual_anagrams does",
    )
    columns = st.columns(2 * n_views - 1)
    with columns[0]:
        prompts = [prompt_input("Prompt 1 (as is)", defaults[0], key=f"{key}_p1", allow_null=False)]
    labels, first = [], choices.index(LABEL[first_view])
    for k in range(1, n_views):
        with columns[2 * k - 1]:
            prompts.append(
                prompt_input(
                    f"Prompt {k + 1} (through view {k + 1})", defaults[k], key=f"{key}_p{k + 1}", allow_null=False
                )
            )
        index = first if k == 1 else next(i for i, c in enumerate(choices) if i != first)
        labels.append(
            columns[2 * k].selectbox(
                f"View {k + 1}", choices, index=index, key=f"{key}_view" if k == 1 else f"{key}_view{k + 1}"
            )
        )
    describe(views=["identity", *(VIEWS[v] for v in labels)])
    views = [lab.get_view(VIEWS[v], H, W) for v in labels]
    for v, label in zip(views, labels):
        if v.fails:
            st.warning(
                f"**{label}** cannot make an anagram: {v.fails} A view must keep the noise Gaussian: a permutation "
                "of the pixels (flip, rotations, skew, the permutations, jigsaw, inner circle, square hinge) or a negation."
            )
    if len({v.name for v in views}) < len(views):
        st.warning("Two prompts share a view: the image cannot read as both through it. Pick different views.")
    if any(v.name == "negate" for v in views) and den.prompts:
        st.warning(
            "Negate on a 28 px bundled model: the negated image has a white background, which no training image has, so "
            "no picture reads as both prompts and the result is noise. A view must keep the noise Gaussian and the "
            "image one the model knows: try flip or a rotation."
        )
    return prompts, labels, views


def show_anagram(images: torch.Tensor, prompts: list[str], labels: list[str], views: list, size: int) -> None:
    """The picture as it is and through each view, each captioned with the prompt it should read as."""
    show(
        torch.cat([images, *(v.view(images) for v in views)]),
        [f"as is: {prompts[0]}", *(f"{label}: {p}" for label, p in zip(labels, prompts[1:]))],
        size,
    )


def hybrid_controls(
    key: str, den, defaults: tuple[str, ...], kernel: int, sigma: float
) -> tuple[list[str], int, tuple[float, ...]]:
    """Two or three bands, a prompt each (far, [middle,] near), and the blur that splits them; (prompts, kernel, sigmas).
    Widget keys: key_bands, key_far, key_middle, key_near, key_kernel, key_sigma, key_sigma2."""
    _, H, W = den.image_shape
    bands = st.radio(
        "Bands", [2, 3], horizontal=True, key=f"{key}_bands", help="three prompts: low, middle and high frequencies"
    )
    c = st.columns(bands)
    names = ["Far (low frequencies)", *(["Middle frequencies"] if bands == 3 else []), "Near (high frequencies)"]
    keys = [f"{key}_far", *([f"{key}_middle"] if bands == 3 else []), f"{key}_near"]
    picks = [defaults[0], *([defaults[2]] if bands == 3 else []), defaults[1]]
    prompts = []
    for col, name, k, default in zip(c, names, keys, picks):
        with col:
            prompts.append(prompt_input(name, default, key=k, allow_null=False))
    kernel_size, sigma = blur_sliders(key, H, W, kernel, sigma)
    sigmas = (sigma,)
    if bands == 3:
        sigma2 = st.slider(
            "Blur sigma σ₂ (middle | near)", 0.1, 10.0, max(0.1, round(sigma / 2, 1)), 0.1, key=f"{key}_sigma2"
        )
        describe(sigma2=sigma2)
        if sigma2 >= sigma:
            st.warning(
                f"σ₂ must be smaller than σ ({sigma:g}): the middle band is what lies between the two blurs. Using σ / 2."
            )
            sigma2 = sigma / 2
        sigmas = (sigma, sigma2)
    return prompts, kernel_size, sigmas


def show_sizes(images: torch.Tensor) -> None:
    """A hybrid at three sizes: the small one reads as the far prompt, the large one as the near prompt."""
    st.markdown(
        "The same image at several sizes: the small one reads as the far prompt, the large one as the near prompt."
    )
    cols = st.columns([1, 2, 4])
    for col, size in zip(cols, (40, 120, 360)):
        with col:
            show(images, [f"{size} px"], size)
