"""What a user gives a page: a test image, a prompt (a class, or free text and the name it is read as), an upload
fitted to the backend, strokes drawn on a canvas."""

from __future__ import annotations

import hashlib
import io

import numpy as np
import streamlit as st
import torch
from PIL import Image, ImageDraw

from lab.course import DEFAULT_PROMPT
from lab.images import ImageRejected, fit_image, load_image
from serving.requests import MAX_PROMPT_CHARS
from ui.display import enlarge, show
from ui.messages import page_waits, plain
from ui.results import describe
from ui.state import COURSE_MODELS, current_backend, settings, test_image_labels, test_images

SMALL_MODEL_PHOTO = (
    "A photo: this small model has only seen its own pictures (digits, clothes, emoji). It reads a photo "
    "as the nearest thing it knows, so its estimates drift towards those, and a plain blur can score better "
    "here; the course's models have seen photos."
)


def pick_test_image(label: str = "Test image", key: str | None = None) -> torch.Tensor:
    """A held-out image chosen with a slider, (1, C, H, W) in [-1, 1]; what it is said under it."""
    s = settings()
    images, labels = test_images(s.backend), test_image_labels(s.backend)
    i = st.slider(label, 0, len(images) - 1, 0, key=key or f"test_image_{label}")
    st.caption(labels[i])
    if labels[i].startswith("photo") and s.backend not in COURSE_MODELS:
        st.caption(SMALL_MODEL_PHOTO)
    return images[i : i + 1]


SOURCES = ("test image", "upload", "drawing")


def image_choice(group: str, label: str = "Image") -> tuple[torch.Tensor | None, str]:
    """(the image a page works on, its source: "test image", "upload" or "drawing"); yours is kept for the other pages
    of its group (1.1 to 1.5 share one: the course asks for an image of your own there). None until there is one (the
    page has said what to do). image_tag(source) captions it."""
    mine = st.session_state.setdefault("own_images", {}).setdefault(
        group, {}
    )  # source -> (1, C, H, W), this backend's size
    key = f"{group}_source"
    if (
        st.session_state.get(key) not in SOURCES
    ):  # a page of the group opened before: its choice (a widget's state is not)
        st.session_state[key] = mine.get("source", SOURCES[0])
    source = mine["source"] = st.radio(label, SOURCES, horizontal=True, key=key)
    if source == "test image":
        return pick_test_image(key=f"{group}_test_image"), source
    if source == "upload":
        x = uploaded_image("Upload an image (a photo of yours, a web image)", key=f"{group}_upload")
    else:
        strokes = canvas_strokes(f"{group}_canvas")
        x = None if strokes is None else drawing_to_image(strokes)
    if x is not None:
        mine[source] = x
        return x, source
    kept = mine.get(source)
    if kept is not None and tuple(kept.shape[1:]) == tuple(current_backend().image_shape):
        st.caption(f"Your {source} from before ({'upload another' if source == 'upload' else 'draw'} to replace it).")
        show(kept, [image_tag(source)], settings().large)
        return kept, source
    st.info(
        "Upload an image above: it is centre-cropped to the model's size."
        if source == "upload"
        else "Draw on the canvas, like a pen on paper; the page works on your drawing."
    )
    return None, source


def image_tag(source: str) -> str:
    """The caption of image_choice's image: "original" (a test image), "your upload", "your drawing"."""
    return "original" if source == "test image" else f"your {source}"


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
        prompt = st.selectbox(
            label, options, index=index, key=key, help=f'"{DEFAULT_PROMPT}" is the null class: no class at all'
        )
    describe(**{label.lower(): prompt})
    return prompt


def read_as(den, prompt: str) -> None:
    """Under a prompt box of a backend whose prompts are names: the name the prompt was read as, and every name."""
    with st.popover("Names it knows"):
        st.caption(", ".join(den.names))
    try:
        name = den.name_of(prompt)
    except ValueError as e:  # the page stops here with what to write instead (nothing is computed for it)
        st.error(plain(str(e)))  # it quotes what the user typed or named
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
    decoded = st.session_state.get(f"{key}_decoded")  # decoded once per file: a rerun (a slider moved) reuses it
    if decoded is None or decoded[0] != file.file_id:
        try:
            decoded = (file.file_id, load_image(file.getvalue(), file.name))
        except ImageRejected as e:
            st.error(plain(str(e)))  # it quotes what the user typed or named
            return None
        st.session_state[f"{key}_decoded"] = decoded
    im = decoded[1]
    x, box = fit_image(im, den.image_shape)
    if den.image_shape[0] == 1 and st.checkbox(
        "Invert (dark strokes on light paper -> light on dark, like MNIST)", invert_default, key=f"{key}_invert"
    ):
        x = -x
    preview = im.convert("RGB")
    ImageDraw.Draw(preview).rectangle(box, outline=(255, 0, 0), width=max(2, preview.width // 100))
    c1, c2 = st.columns(2)
    c1.image(preview, caption=f"upload, {im.width}x{im.height}: the red square is what is used", width=settings().large)
    with c2:
        show(x, [f"fitted to {den.image_shape[1]}x{den.image_shape[2]}"], settings().large)
    return x


def canvas_strokes(
    key: str, background: torch.Tensor | None = None, size: int = 280, stroke: int = 22
) -> np.ndarray | None:
    """Strokes drawn on a square canvas, as coverage in [0, 1] at the backend's (H, W); None while it is empty.

    The canvas is transparent, so its alpha channel is exactly the strokes (a background image is not sent back).
    """
    from streamlit_drawable_canvas import st_canvas  # it imports only under a running Streamlit (SPEC)

    den = current_backend()
    _, H, W = den.image_shape
    bg = None if background is None else Image.fromarray(enlarge(background, size)[0]).convert("RGB")
    result = st_canvas(
        stroke_width=stroke,
        stroke_color="#000000" if bg is None else "#ff3030",
        background_color="",
        background_image=bg,
        height=size,
        width=size,
        drawing_mode="freedraw",
        return_image_data=True,
        key=key,
    )
    raw = result.image_bytes  # the PNG the browser sent, not decoded yet: a browser's script may send any PNG at all
    if not raw:
        return None
    done = st.session_state.get(f"{key}_strokes")  # decoded once per drawing: a rerun (a slider moved) reuses it
    digest = hashlib.sha256(raw).digest()
    if done is None or done[0] != digest:
        try:
            done = (digest, strokes_from_png(raw, size, H, W))
        except ImageRejected as e:
            st.error(plain(str(e)))
            return None
        st.session_state[f"{key}_strokes"] = done
    return done[1]


MAX_CANVAS_BYTES = (
    4 << 20
)  # a drawn 280 px canvas is a few KB; a screen's pixel ratio makes it at most 4x larger a side
CANVAS_SCALES = (1, 1.5, 2, 2.5, 3, 4)  # the device pixel ratios a canvas may be sent back at


def strokes_from_png(raw: bytes, size: int, H: int, W: int) -> np.ndarray | None:
    """The canvas's alpha channel (its strokes) as coverage in [0, 1] at (H, W); None for an empty canvas. A PNG that
    is not the canvas's (another size, too many bytes, not a PNG) is refused before its pixels are decoded."""
    from PIL import UnidentifiedImageError

    if len(raw) > MAX_CANVAS_BYTES:
        raise ImageRejected(
            f"The drawing sent is {len(raw) >> 20} MB, more than a drawing on this canvas can be: draw again."
        )
    try:
        im = Image.open(io.BytesIO(raw))
    except (UnidentifiedImageError, OSError) as e:
        raise ImageRejected("The drawing sent is not a picture the canvas makes: draw again.") from e
    if im.format != "PNG" or im.width != im.height or not any(abs(im.width - size * k) <= 2 for k in CANVAS_SCALES):
        raise ImageRejected(
            f"The drawing sent is {im.width}x{im.height} pixels, not this {size}x{size} canvas: draw again."
        )
    try:
        alpha = im.convert("RGBA").getchannel("A")
    except (OSError, ValueError) as e:
        raise ImageRejected("The drawing sent could not be decoded: draw again.") from e
    if not alpha.getbbox():
        return None
    return np.asarray(alpha.resize((W, H), Image.BOX), dtype=np.float32) / 255  # coverage of each backend pixel


def drawing_to_image(strokes: np.ndarray) -> torch.Tensor:
    """Pen strokes as an input image (1, C, H, W) in [-1, 1]: light on dark for one channel (as MNIST), ink on paper for RGB."""
    C = current_backend().image_shape[0]
    x = torch.from_numpy(strokes)[None, None] * 2 - 1  # strokes +1, background -1
    return x if C == 1 else (-x).expand(1, C, -1, -1)
