"""Welcome page: what the lab is, how to use it, and what each section makes."""

import streamlit as st

from ui.catalog import PART_A
from ui.display import show_thumbnails
from ui.state import settings

st.title("Diffusion Lab")
s = settings()
st.markdown(
    f"""
An interactive lab for Berkeley CS180/280A *Fun with Diffusion Models*.

- **Part A** runs the sampling loops of a pretrained pixel diffusion model: the forward process, blur, one-step and
  iterative denoising, sampling, classifier-free guidance, SDEdit, inpainting, visual anagrams and hybrid images.
  Pick a section on the left.
- The model is chosen in the sidebar: small class-conditional models that ship with the lab (**MNIST digits**, prompts
  "0" to "9"; **Fashion-MNIST**, prompts such as "a sneaker"; **Emoji (colour)**, 32 px colour pictures of 58 named
  emoji whose prompt box takes the course's own prompts, "an oil painting of an old man" read as *old man*) work
  offline on a CPU; **DeepFloyd IF**, the course's
  model, plugs in where a GPU and its licence are there; a **Part A backend** you train on *Train live* joins the
  list when it finishes.
- **Part B** trains the course's UNet on MNIST: the single-step denoiser, DDPM and flow matching, time- and
  class-conditioned, from bundled weights at once or live in the browser.
- Every page uses the one seed of the sidebar (now **{s.seed}**), so a result can be reproduced and discussed.
  **Lecture mode** (or a link ending in `?lecture=1`) sizes the pictures for a 1280x720 projector.
  **Export my results** in the sidebar downloads what this browser was shown, as an offline web page.
"""
)
st.subheader("What each section makes")
show_thumbnails({page.url: page.title for page in PART_A})
