"""Part B 2: time- and class-conditioned DDPM and flow matching: samples after the course's epochs, CFG, GIFs."""

import streamlit as st

from lab.images import gif_bytes, grid
from models.bundled import WEIGHTS
from models.classes import PROMPTS
from serving.defaults import GENERATOR_FIRST, GENERATOR_GAMMA, GENERATOR_STEP_CHOICES, GENERATORS, generator_steps
from ui.partb import (
    better_unet,
    class_columns,
    generator_choices,
    generator_samples,
    labelled_grid,
    loss_curve,
    show01,
    without_scheduler,
)
from ui.results import describe, download_row
from ui.state import bundled_model, settings

st.title("Part B 2 · Diffusion and flow matching from scratch")
st.markdown(
    "The course's UNet with time conditioning (and class conditioning, with CFG), trained on MNIST: "
    "DDPM (Fall 2024, T = 300) or flow matching (Fall 2025 and Fall 2026, Euler steps from noise at t = 0 to "
    "a digit at t = 1)."
)
s = settings()
choices = generator_choices()
first = GENERATORS[GENERATOR_FIRST[s.edition]]  # the sidebar's edition's model (Fall 2026: flow matching)
name = st.selectbox("Model", list(choices), list(choices).index(first), key="b2_model")
source, config = choices[name]
classes = config["condition"] == "class"
c = st.columns(3)
gamma = c[0].slider(
    "CFG scale γ",
    0.0,
    10.0,
    GENERATOR_GAMMA,
    0.5,
    key="b2_gamma",
    disabled=not classes,
    help="as the course's Part B: u = u_uncond + γ (u_cond - u_uncond), so γ = 1 is the class alone. Part A "
    "of Fall 2026 writes w = γ - 1 (u = u_cond + w (u_cond - u_uncond)); its w 7 is γ 8.",
)
kind = f"{config['experiment']}_{config['condition']}"  # a model chosen opens on the course's steps for its kind
steps = c[1].select_slider(
    "Sampling steps",
    GENERATOR_STEP_CHOICES[config["experiment"]],
    generator_steps(config),
    key=f"b2_steps_{kind}",
    help="the course's: 300 Euler steps for the class-conditioned flow model, 50 for the "
    "time-conditioned one; DDPM 30 strided timesteps (300 is every one)",
)
describe(model=name, gamma=gamma, steps=steps)
result = generator_samples(source, gamma, steps, s.seed)
images, frames = result.images, list(result.frames)
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
    trained = bundled_model(source)[1]
    per_epoch = -(-(trained.get("epoch_images") or 0) // trained["batch_size"])  # steps in a course epoch (0: a pass)
    for path in sorted(WEIGHTS.glob(f"{source}_epoch_*.png")):
        epoch = int(path.stem.split("_")[-1])
        st.image(
            str(path),
            caption=f"after epoch {epoch}" + (f" of 60,000 images ({epoch * per_epoch:,} steps)" if per_epoch else ""),
            width=360,
        )
    if per_epoch:
        st.caption(
            "An epoch here is the course's: 60,000 images (938 steps at batch 64), drawn from shuffled passes over "
            "the 4,500 bundled digits."
        )
if source == "flow_class":
    without_scheduler()
if source == "flow_time_better":
    better_unet()
