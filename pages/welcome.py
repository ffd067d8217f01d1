"""Welcome page: what the lab is, and a first live look at the forward process (1.1) beside blur (1.2)."""

import numpy as np
import streamlit as st
import torch
from PIL import Image, ImageDraw

from lab.diffusion import forward
from lab.filters import gaussian_blur, max_kernel_size
from lab.schedules import make_alphas_cumprod

st.title("Diffusion Lab")
st.markdown(
    "An interactive lab for Berkeley CS180/280A *Fun with Diffusion Models*: the sampling loops of Part A "
    "and the from-scratch UNets of Part B. The Part A and Part B pages arrive with the bundled models; "
    "until then, here is the forward process of DeepFloyd IF's noise schedule on a test card."
)


@st.cache_data
def test_card(size: int = 64) -> np.ndarray:
    """A drawn 64x64 RGB test image in [-1, 1], (3, H, W)."""
    im = Image.new("RGB", (size, size), (40, 70, 140))
    draw = ImageDraw.Draw(im)
    draw.rectangle([8, 36, 56, 60], fill=(60, 140, 60))
    draw.ellipse([34, 6, 54, 26], fill=(250, 210, 60))
    draw.polygon([(10, 40), (24, 14), (38, 40)], fill=(200, 200, 210))
    return np.asarray(im, dtype=np.float32).transpose(2, 0, 1) / 127.5 - 1


@st.cache_data
def noisy_and_blurred(t: int, kernel_size: int, sigma: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    x0 = torch.from_numpy(test_card())[None]
    x_t = forward(x0, t, make_alphas_cumprod("squaredcos_cap_v2", 1000), torch.Generator().manual_seed(seed))
    return to_image(x_t), to_image(gaussian_blur(x_t, kernel_size, sigma))


def to_image(x: torch.Tensor) -> np.ndarray:
    return ((x[0].clamp(-1, 1) + 1) * 127.5).round().byte().permute(1, 2, 0).numpy()


cols = st.columns(3)
t = cols[0].slider("timestep t", 0, 999, 500)
kernel_size = cols[1].slider("blur kernel size", 1, max_kernel_size(64, 64), 5, step=2)
sigma = cols[2].slider("blur sigma", 0.1, 10.0, 2.0)
noisy, blurred = noisy_and_blurred(t, kernel_size, sigma, seed=180)
st.image([to_image(torch.from_numpy(test_card())[None]), noisy, blurred], caption=["original", f"x_t at t={t}", "Gaussian blur of x_t"], width=256)
