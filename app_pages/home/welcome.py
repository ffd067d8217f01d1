"""Welcome page: what the lab is, how to use it, and what each section of the chosen edition makes."""

import streamlit as st

from ui.catalog import EDITIONS
from ui.display import show_thumbnails
from ui.state import settings

st.title("Diffusion Lab")
s = settings()
edition = EDITIONS[s.edition]
st.markdown(
    f"""
An interactive lab for Berkeley CS180/280A *Fun with Diffusion Models*, in both of the course's editions (the sidebar's
**Edition**, or a link ending in `?edition=2026`): **Fall 2024** runs Part A on DDPM (alpha schedule, strided
timesteps, i_start; DeepFloyd IF), **Fall 2026** on a pixel flow model (t from noise 0 to image 1, velocity, Euler
steps; PixNerd). This browser follows **{edition.name}**: {edition.method}.

- **Part A** runs the sampling loops of a pretrained pixel model: the noisy inputs, blur, one-step and iterative
  denoising, sampling, classifier-free guidance, image-to-image edits of photos, uploads and drawings, visual anagrams
  and hybrid images. Pick a section on the left.
- The model is chosen in the sidebar: small class-conditional models that ship with the lab (**MNIST digits**, prompts
  "0" to "9"; **Fashion-MNIST**, prompts such as "a sneaker"; **Emoji (colour)**, 32 px colour pictures of 58 named
  emoji whose prompt box takes the course's own prompts, "an oil painting of an old man" read as *old man*), each
  edition's own, work offline on a CPU; the course's models (**DeepFloyd IF**, PixNerd) plug in where a GPU is there;
  a **Part A backend** you train on *Train live* joins the list when it finishes.
- **Part B** trains the course's UNet on MNIST: the single-step denoiser, DDPM and flow matching, time- and
  class-conditioned, from bundled weights at once or live in the browser.
- Every page uses the one seed of the sidebar (now **{s.seed}**), so a result can be reproduced and discussed.
  **Lecture mode** (or a link ending in `?lecture=1`) sizes the pictures for a 1280x720 projector.
  **Export my results** in the sidebar downloads what this browser was shown, as an offline web page.
"""
)
st.subheader(f"What each section of {edition.name} makes")
show_thumbnails({page.url: page.title for page in edition.pages})
