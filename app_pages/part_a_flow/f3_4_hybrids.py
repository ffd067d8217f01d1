"""3.4 Hybrid images: v = lowpass(v_1) + highpass(v_2), highpass = v_2 - lowpass(v_2)."""

import streamlit as st

import lab.fall2026 as fall2026
import lab.flow as flow
from serving.defaults import flow_prompts
from ui.controls import course_pair_buttons, equation, pair_buttons, w_slider
from ui.illusions import hybrid_controls, show_sizes
from ui.progress import ask, result
from ui.state import current_backend, settings

st.title("3.4 · Hybrid images")
s, den = settings(), current_backend()
_, H, W = den.image_shape
kernel, sigma = flow.hybrid_blur(H)
st.markdown(
    f"Low frequencies from one prompt (seen from far), high frequencies from another (seen up close). The blur is "
    f"the course's kernel 265 and σ 16 at 512 px, scaled to these {H} px: kernel {kernel}, σ {sigma:.2g}."
)


def hybrid_pair(far: str, near: str) -> dict:
    """The page's settings for a hybrid of far (its low frequencies) and near (its high ones)."""
    return {
        "flow_hybrid_bands": 2,
        "flow_hybrid_far": far,
        "flow_hybrid_near": near,
        "flow_hybrid_kernel": kernel,
        "flow_hybrid_sigma": round(sigma, 1),
        "flow_hybrid_w": fall2026.CFG_W,
    }


course_pair_buttons("hybrid", den, hybrid_pair, "flow_")
pair_buttons("hybrid", den, hybrid_pair, "flow_")
equation(
    r"v = f_{\text{lowpass}}(v_1) + f_{\text{highpass}}(v_2),\quad f_{\text{lowpass}} = G_{k,\sigma} *,\ f_{\text{highpass}}(v) = v - G_{k,\sigma} * v",
    "v_1 under the far prompt, v_2 under the near one, each with CFG scale w; k and σ are the blur sliders below. "
    "Three bands: G_σ₁ v_1 + (G_σ₂ − G_σ₁) v_2 + (1 − G_σ₂) v_3, σ₁ > σ₂.",
)
prompts, kernel_size, sigmas = hybrid_controls("flow_hybrid", den, flow_prompts("hybrid", den), kernel, round(sigma, 1))
w = w_slider("flow_hybrid_w")
res = result(
    ask(flow.hybrid_images, prompts, kernel_size, sigmas, 1, w, generator=s.seed),
    st.progress(0.0),
)
show_sizes(res.images)
