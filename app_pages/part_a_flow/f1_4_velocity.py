"""1.4 Visualizing velocity: the predicted update (1 - t) v_hat, the true update x1 - x_t, and their per-pixel error."""

import streamlit as st
import torch

import lab.fall2026 as fall2026
import lab.flow as flow
from lab.course import DEFAULT_PROMPT
from serving.requests import per_image
from ui.controls import equation
from ui.display import error_maps, show, signed_images
from ui.inputs import image_choice, image_tag, prompt_input
from ui.messages import page_waits
from ui.progress import results
from ui.state import settings

st.title("1.4 · Visualizing velocity")
equation(
    r"\Delta\hat x = (1 - t)\,\hat v,\quad \Delta x = (1 - t)\,v_{gt} = x_1 - x_t,\quad E_t = "
    r"\sqrt{\tfrac{1}{C}\textstyle\sum_c \big[(1 - t)(\hat v - v_{gt})\big]_c^2}",
    "per t: x_t, the update the model predicts, the update that would land on the image, and where they differ. "
    "Updates share one scale, 0 at mid-grey; the error maps share one scale across the three t (hover to read it).",
)
s = settings()
x1, source = image_choice("part1")  # the course: one image of your own on 1.1 to 1.5
if x1 is None:
    page_waits()
tag = image_tag(source)
prompt = prompt_input("Prompt", DEFAULT_PROMPT, key="velocity_prompt")
ts = list(fall2026.NOISY_TS)
x_t = flow.noisy_row(x1, ts, s.seed)
requests = per_image(flow.one_step, s.backend, s.device, x_t, ts, prompt=prompt)
x1_hat = torch.cat([r.images for r in results(requests, st.progress(0.0))])
t = torch.tensor(ts)
predicted, true, error = flow.velocity_updates(
    x1, x_t, t, (x1_hat - x_t) / (1 - t).view(-1, 1, 1, 1)
)  # v_hat from the estimate
show(x1, [tag])
shown_pred, shown_true = signed_images(predicted, true)  # one symmetric scale for both
for i, v in enumerate(ts):
    show(
        torch.cat([x_t[i : i + 1], shown_pred[i : i + 1], shown_true[i : i + 1]]),
        [f"x_t, t = {v:.2f}", "predicted update (1 − t) v̂", "true update x₁ − x_t"],
        name=f"t = {v:.2f}",
    )
st.subheader("Error maps E_t, one scale")
error_maps(error, [f"t = {v:.2f}" for v in ts], key="velocity_errors")
st.caption(" · ".join(f"t = {v:.2f}: mean E {error[i].mean():.3f}, max {error[i].max():.3f}" for i, v in enumerate(ts)))
