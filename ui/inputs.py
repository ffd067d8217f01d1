"""What a user gives a page: a test image, a prompt (a class, or free text and the name it is read as), an upload
fitted to the backend, strokes drawn on a canvas."""

from __future__ import annotations

import numpy as np
import streamlit as st
import torch
from PIL import Image, ImageDraw

from lab.course import DEFAULT_PROMPT
from lab.images import ImageRejected, fit_image, load_image
from serving.requests import MAX_PROMPT_CHARS
from ui.display import enlarge, show
from ui.messages import page_waits
from ui.results import describe
from ui.state import current_backend, settings, test_images


def pick_test_image(label: str = "Test image") -> torch.Tensor:
    """A held-out image chosen with a slider, (1, C, H, W) in [-1, 1]."""
    s = settings()
    images = test_images(s.backend)
    i = st.slider(label, 0, len(images) - 1, 0, key=f"test_image_{label}")
    return images[i : i + 1]


def prompt_input(label: str, default: str, key: str, allow_null: bool = True) -> str:
    """A prompt: a choice among the backend's classes (and "a high quality photo", no class), or free text."""
    den = current_backend()
    if not den.prompts:
        prompt = st.text_input(label, default, key=key, max_chars=MAX_PROMPT_CHARS)
        if den.names:  # the emoji backend: which name the words were read as
            read_as(den, prompt)
    else:
        options = ([DEFAULT_PROMPT] if allow_null else []) + list(den.prompts)
        index = options.index(default) if default in options else 0
        prompt = st.selectbox(label, options, index=index, key=key, help=f'"{DEFAULT_PROMPT}" is the null class: no class at all')
    describe(**{label.lower(): prompt})
    return prompt


def read_as(den, prompt: str) -> None:
    """Under a prompt box of a backend whose prompts are names: the name the prompt was read as, and every name."""
    with st.popover("Names it knows"):
        st.caption(", ".join(den.names))
    try:
        name = den.name_of(prompt)
    except ValueError as e:  # the page stops here with what to write instead (nothing is computed for it)
        st.error(str(e))
        page_waits()
    st.caption(f"read as **{name}**" if name else "read as **no name** (the null class: what CFG guides away from)")


def uploaded_image(label: str, key: str, invert_default: bool = True) -> torch.Tensor | None:
    """An uploaded image fitted to the backend, (1, C, H, W) in [-1, 1]; shows the crop; None until there is one.

    A file that is not a usable image gets a message on the page and None.
    """
    den = current_backend()
    file = st.file_uploader(label, key=key, help="any image PIL reads: PNG, JPEG, WebP, BMP, TIFF, GIF; any size")
    if file is None:
        return None
    try:
        im = load_image(file.getvalue(), file.name)
    except ImageRejected as e:
        st.error(str(e))
        return None
    x, box = fit_image(im, den.image_shape)
    if den.image_shape[0] == 1 and st.checkbox("Invert (dark strokes on light paper -> light on dark, like MNIST)", invert_default, key=f"{key}_invert"):
        x = -x
    preview = im.convert("RGB")
    ImageDraw.Draw(preview).rectangle(box, outline=(255, 0, 0), width=max(2, preview.width // 100))
    c1, c2 = st.columns(2)
    c1.image(preview, caption=f"upload, {im.width}x{im.height}: the red square is what is used", width=settings().large)
    with c2:
        show(x, [f"fitted to {den.image_shape[1]}x{den.image_shape[2]}"], settings().large)
    return x


def canvas_strokes(key: str, background: torch.Tensor | None = None, size: int = 280, stroke: int = 22) -> np.ndarray | None:
    """Strokes drawn on a square canvas, as coverage in [0, 1] at the backend's (H, W); None while it is empty.

    The canvas is transparent, so its alpha channel is exactly the strokes (a background image is not sent back).
    """
    from streamlit_drawable_canvas import st_canvas  # it imports only under a running Streamlit (SPEC)

    den = current_backend()
    _, H, W = den.image_shape
    bg = None if background is None else Image.fromarray(enlarge(background, size)[0]).convert("RGB")
    result = st_canvas(stroke_width=stroke, stroke_color="#000000" if bg is None else "#ff3030", background_color="",
                       background_image=bg, height=size, width=size, drawing_mode="freedraw", return_image_data=True, key=key)  # fmt: skip
    data = result.image_data
    if data is None or data.ndim != 3 or data.shape[-1] != 4 or not data[..., 3].any():
        return None
    alpha = Image.fromarray(data[..., 3]).resize((W, H), Image.BOX)  # coverage of each backend pixel
    return np.asarray(alpha, dtype=np.float32) / 255


def drawing_to_image(strokes: np.ndarray) -> torch.Tensor:
    """Pen strokes as an input image (1, C, H, W) in [-1, 1]: light on dark for one channel (as MNIST), ink on paper for RGB."""
    C = current_backend().image_shape[0]
    x = torch.from_numpy(strokes)[None, None] * 2 - 1  # strokes +1, background -1
    return x if C == 1 else (-x).expand(1, C, -1, -1)
