"""Pictures on a page: rows of images at the sidebar's sizes (each with its download), crisp enlargements encoded once
for the room, trajectories to play back, mask overlays, lecture mode's layout, and the Welcome page's thumbnails."""

from __future__ import annotations

import functools
from io import BytesIO

import numpy as np
import plotly.graph_objects as go
import streamlit as st
import torch
from PIL import Image

from lab.images import gif_bytes, to_uint8
from serving.defaults import default_requests
from ui.results import download_row
from ui.state import LECTURE_WIDTH, current_backend, room, settings, test_images

# In lecture mode the page's result sits above a 720 px fold: less padding above the title, a smaller title
LECTURE_CSS = (
    "<style>.block-container{padding-top:1.2rem!important} h1{font-size:1.9rem!important;padding-bottom:0!important}"
    ".katex-display{margin:.3em 0!important}</style>"
)
MAGENTA = torch.tensor([1.0, -1.0, 1.0]).view(1, 3, 1, 1)  # in [-1, 1]: reads on a white page and on grey digits


def crisp(frame: np.ndarray, size: int) -> np.ndarray:
    """A uint8 image enlarged to size pixels wide with nearest neighbour."""
    pil = Image.fromarray(frame)
    return np.asarray(pil.resize((size, size * pil.height // pil.width), Image.NEAREST))


def crisp_png(frame: np.ndarray, size: int) -> bytes:
    """crisp(frame, size) as PNG bytes, remembered: the browsers of a room that show one picture encode it once."""
    return _png(frame.tobytes(), frame.shape, size)


@functools.lru_cache(maxsize=4096)  # a few KB each
def _png(raw: bytes, shape: tuple, size: int) -> bytes:
    out = BytesIO()
    Image.fromarray(crisp(np.frombuffer(raw, np.uint8).reshape(shape), size)).save(out, format="PNG")
    return out.getvalue()


def enlarge(x: torch.Tensor, size: int) -> list[np.ndarray]:
    """(B, C, H, W) in [-1, 1] -> B uint8 images enlarged to size pixels with nearest neighbour (crisp pixels)."""
    return [crisp(im, size) for im in to_uint8(x, -1, 1)]


def show(
    images: torch.Tensor, captions: list[str] | None = None, size: int | None = None, name: str | None = None
) -> None:
    """A row of images, at the lecture or normal size, with its download (and kept for "Export my results" as name)."""
    frames = list(to_uint8(images, -1, 1))
    size = min(size, LECTURE_WIDTH // len(frames) - 12) if size else settings().row_size(len(frames))
    st.image([crisp_png(im, size) for im in frames], caption=captions, width=size, output_format="PNG")
    download_row(frames, captions, name)


def rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 1 or 3, H, W) -> (B, 3, H, W)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def mask_overlay(x: torch.Tensor, mask: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """RGB images x with the mask (1, 1, H, W; 1 = masked) painted magenta over them at alpha."""
    return x * (1 - alpha * mask) + alpha * mask * MAGENTA


def signed_images(*updates: torch.Tensor) -> list[torch.Tensor]:
    """Signed images (updates, differences) on one symmetric scale for all, 0 at mid-grey: each divided by the largest
    magnitude among them, in [-1, 1] as show() takes images."""
    top = max(float(u.abs().max()) for u in updates) or 1.0
    return [u / top for u in updates]


def error_maps(errors: torch.Tensor, titles: list[str], key: str) -> None:
    """Per-pixel error maps (K, 1, H, W) as Plotly heatmaps side by side, on one linear scale from 0 to the largest
    error of them all (hover reads the value)."""
    top = float(errors.max()) or 1.0
    K = errors.shape[0]
    traces = [
        dict(
            type="heatmap",
            z=errors[i, 0].tolist(),
            coloraxis="coloraxis",
            xaxis=f"x{i + 1}",
            yaxis=f"y{i + 1}",
            hovertemplate="x %{x}, y %{y}: E = %{z:.3f}<extra></extra>",
        )
        for i in range(K)
    ]
    gap = 0.04
    width = (1 - gap * (K - 1)) / K
    layout = dict(
        height=300,
        margin=dict(l=10, r=10, t=30, b=10),
        coloraxis=dict(cmin=0, cmax=top, colorscale="Viridis", colorbar=dict(title=dict(text="E"))),
        annotations=[
            dict(
                text=title,
                x=i * (width + gap) + width / 2,
                y=1.0,
                xref="paper",
                yref="paper",
                showarrow=False,
                yanchor="bottom",
            )
            for i, title in enumerate(titles)
        ],
    )
    for i in range(K):
        layout[f"xaxis{i + 1}"] = dict(
            domain=[i * (width + gap), i * (width + gap) + width], showticklabels=False, constrain="domain"
        )
        layout[f"yaxis{i + 1}"] = dict(
            autorange="reversed", showticklabels=False, scaleanchor=f"x{i + 1}", anchor=f"x{i + 1}"
        )
    st.plotly_chart(go.Figure(data=traces, layout=layout, _validate=False), key=key)


def frames_row(frames: list[np.ndarray], labels: list[str]) -> None:
    """Several trajectory frames in a row."""
    size = settings().row_size(len(frames))
    st.image([crisp_png(f, size) for f in frames], caption=labels, width=size, output_format="PNG")
    download_row(frames, labels, "trajectory")


def trajectory_viewer(frames: list[np.ndarray], labels: list[str], key: str) -> None:
    """Play back a denoising trajectory: a step slider, and PNG / GIF downloads (the GIF is made on click)."""
    if not frames:
        return
    size = settings().large
    i = st.slider("Step", 0, len(frames) - 1, len(frames) - 1, key=f"{key}_step")
    frame = crisp_png(frames[i], size)
    st.image(frame, caption=labels[i], width=size, output_format="PNG")
    c1, c2 = st.columns(2)
    c1.download_button("Download this step (PNG)", frame, f"{key}_step_{i}.png", "image/png", key=f"{key}_png")
    gif = lambda: gif_bytes([crisp(f, size) for f in frames], 80)  # noqa: E731
    c2.download_button("Download the trajectory (GIF)", gif, f"{key}.gif", "image/gif", key=f"{key}_gif")


THUMBNAIL = {
    "a0_sampling": 1,
    "a7_sdedit": 4,
    "a73_text": 2,
    "f3_1_edit": 5,
    "f3_2_text": 5,
}  # which default request pictures a page (else its first)


def show_thumbnails(titles: dict[str, str]) -> None:
    """A picture of each Part A page with its defaults (titles: page address -> title), from the room's results (the
    warm-up computes them at start; this page never computes). While some are missing the section redraws itself
    every 2 s until they are there."""
    results = thumbnail_results()
    if all(r is not None for r in results.values()):
        draw_thumbnails(results, titles)
    else:
        live_thumbnails(titles)


@st.fragment(run_every=2.0)
def live_thumbnails(titles: dict[str, str]) -> None:
    results = thumbnail_results()
    draw_thumbnails(results, titles)
    if all(r is not None for r in results.values()):
        st.rerun()  # all there: the page draws them once more, without the timer


def thumbnail_results() -> dict:
    """Page address -> the room's cached result that pictures it (None: not computed yet)."""
    s = settings()
    requests = default_requests(s.backend, s.device, s.seed, current_backend(), test_images(s.backend)[:1])
    return {
        page: room().queue.cached(page_requests[THUMBNAIL.get(page, 0)]) for page, page_requests in requests.items()
    }


def draw_thumbnails(results: dict, titles: dict[str, str]) -> None:
    ready = {page: result for page, result in results.items() if result is not None}
    if ready:
        images = torch.cat([result.images[:1] for result in ready.values()])
        st.image(
            [crisp_png(im, 112) for im in to_uint8(images, -1, 1)],
            caption=[titles.get(p, p) for p in ready],
            width=112,
            output_format="PNG",
        )
    if len(ready) < len(results):
        st.caption(
            "Computing: "
            + ", ".join(titles.get(p, p) for p in results if p not in ready)
            + " (they appear here as the "
            "server makes them; every page computes its own pictures when opened)."
        )
