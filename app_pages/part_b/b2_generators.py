"""Part B 2: time- and class-conditioned DDPM and flow matching: samples after the course's epochs, CFG, GIFs."""

import streamlit as st

from lab.images import gif_bytes, grid
from models.bundled import WEIGHTS
from models.classes import PROMPTS
from serving.defaults import GENERATOR_GAMMA, GENERATORS, generator_steps
from ui.partb import class_columns, generator_choices, labelled_grid, loss_curve, show01
from ui.results import describe, download_row
from ui.state import generator_samples, settings

st.title("Part B 2 · Diffusion and flow matching from scratch")
st.markdown("The course's UNet with time conditioning (and class conditioning, with CFG), trained on MNIST: "
            "DDPM (Fall 2024, T = 300) or flow matching (Fall 2025, Euler steps).")  # fmt: skip
s = settings()
choices = generator_choices()
name = st.selectbox("Model", list(choices), key="b2_model")
source, config = choices[name]
classes = config["condition"] == "class"
c = st.columns(3)
gamma = c[0].slider("CFG scale γ", 0.0, 10.0, GENERATOR_GAMMA, 0.5, key="b2_gamma", disabled=not classes)
steps = c[1].select_slider("Sampling steps", [10, 30, 50, 100, 300] if config["experiment"] == "ddpm" else [5, 10, 20, 50, 100],
                           generator_steps(config), key="b2_steps")  # fmt: skip
describe(model=name, gamma=gamma, steps=steps)
images, frames = generator_samples(source, gamma, steps, s.seed)
if classes:  # a column per class, headed by its name
    st.subheader(f"4 samples per class ({steps} steps)")
    names = list(PROMPTS[config.get("dataset", "mnist")])
    picture = labelled_grid(class_columns(images, 4), names)
    st.image(picture, width=min(900, picture.shape[1]), output_format="PNG")
    download_row([picture], [f"{name}, gamma {gamma:g}, {steps} steps"])
    frames = [class_columns(f, 4) for f in frames]
else:
    st.subheader(f"40 samples ({steps} steps)")
    show01(images, None, nrow=10)
st.subheader("The denoising, as a GIF")
gif = gif_bytes([grid(f, 10) for f in frames], 60, scale=3)
st.image(gif, width=360)
st.download_button("Download the GIF", gif, f"{name}.gif", "image/gif", key="b2_gif")
st.subheader("Training loss")
loss_curve(source, st.toggle("Log scale", True, key="b2_log"))
if source in GENERATORS:
    st.subheader("The course's figures: samples after the epochs the course shows")
    for path in sorted(WEIGHTS.glob(f"{source}_epoch_*.png")):
        st.image(str(path), caption=f"after epoch {int(path.stem.split('_')[-1])}", width=360)
