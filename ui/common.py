"""What every page shares: the sidebar's settings, the cached backend, test images, display and trajectories."""

from __future__ import annotations

import functools
from typing import NoReturn
from dataclasses import dataclass
from io import BytesIO

import numpy as np
import streamlit as st
import torch
from PIL import Image

from lab.data import load_dataset
from lab.images import gif_bytes, to_uint8
from models.bundled import BACKENDS, load_backend
from ui.catalog import PART_A, PART_B
from ui.results import describe, download_row, export_button, start_page

IF_NAME = "DeepFloyd IF"
RUN_PREFIX = "Your run "  # + a job id: a Part A backend this browser trained on the Train live page
DEFAULT_SEED = 180  # a seed the course's students used
LECTURE_WIDTH = 1180  # pixels a page's main column has on a 1280x720 projector with the sidebar closed


@dataclass(frozen=True)
class Settings:
    backend: str  # a name of models.bundled.BACKENDS, IF_NAME, or RUN_PREFIX + a finished run's id
    device: str  # "cpu" or "cuda"
    seed: int  # the one seed every page uses, as the course asks
    lecture: bool  # large images, fewer controls

    @property
    def size(self) -> int:
        """Display width of one image, in pixels."""
        return 224 if self.lecture else 128

    @property
    def large(self) -> int:
        """Display width of a page's main picture: large, and in lecture mode still above a 720 px projector's fold."""
        return 280 if self.lecture else 256

    def row_size(self, n: int) -> int:
        """Width of each of n images in a row: in lecture mode as large as fits a 1280 px projector without wrapping."""
        return min(self.size, LECTURE_WIDTH // max(1, n) - 12) if self.lecture else self.size


def _new_backend() -> None:
    """Another backend: the γ sliders open on its default γ again (ui.runs.default_gamma), not on the last one's."""
    from ui.controls import GAMMA_KEYS

    for key in GAMMA_KEYS:
        st.session_state.pop(key, None)


def sidebar() -> Settings:
    """The shared sidebar (called by Home.py before the page runs); its choices live in st.session_state."""
    with st.sidebar:
        st.header("Lab settings")
        options = [*BACKENDS, *(RUN_PREFIX + job_id for job_id in trained_backends()), IF_NAME]
        if "backend" not in st.session_state and st.query_params.get("backend") in options:  # a link: ?backend=...
            st.session_state["backend"] = st.query_params["backend"]
        backend = st.selectbox("Backend", options, key="backend", on_change=_new_backend, help="the model every Part A "
                               "page uses; Part A backends you train on the Train live page are added when they finish")  # fmt: skip
        if backend.startswith(RUN_PREFIX):
            problem = run_problem(backend)
            if problem is not None:
                st.error(f"{problem} Using MNIST digits meanwhile.")
                backend = "MNIST digits"
        elif backend == IF_NAME:
            problem = if_sidebar()
            if problem is not None:
                st.error(f"{problem} Using MNIST digits meanwhile.")
                backend = "MNIST digits"
        devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
        device = st.selectbox("Device", devices, key="device")
        seed = int(st.number_input("Seed", 0, 2**31 - 1, DEFAULT_SEED, key="seed", help="reused by every page"))
        if "lecture" not in st.session_state:  # a lecturer's link: ?lecture=1
            st.session_state["lecture"] = st.query_params.get("lecture") == "1"
        lecture = st.toggle("Lecture mode", key="lecture", help="for a 1280x720 projector: images as large as fit, rows "
                            "that do not wrap, fewer controls; ?lecture=1 in the link opens the lab this way, sidebar closed")  # fmt: skip
        if lecture != (st.query_params.get("lecture") == "1"):
            st.query_params["lecture"] = "1" if lecture else "0"
    if lecture:  # the page's result above a 720 px fold: less padding above the title, a smaller title
        st.markdown("<style>.block-container{padding-top:1.2rem!important} h1{font-size:1.9rem!important;padding-bottom:0!important}"
                    ".katex-display{margin:.3em 0!important}</style>", unsafe_allow_html=True)  # fmt: skip
    return Settings(backend, device, seed, lecture)


def trained_backends() -> list[str]:
    """Ids of this browser's finished runs that can drive the Part A pages (class DDPM, T = 1000), newest first."""
    from models.bundled import part_a_problem
    from ui.training import manager, owner_id

    try:
        jobs = manager().jobs(owner_id())
    except ValueError:  # the training cluster does not answer: the page says so when it needs it
        return []
    return [job.id for job in jobs if job.status == "done" and part_a_problem(job.config.to_dict()) is None]


def for_browser(message: str) -> str:
    """A message without the server's paths: a run's folder becomes "run <id>", the lab's own files relative paths."""
    import re

    from ui.training import ROOT, runs_root

    runs = re.escape(str(runs_root().resolve()))
    message = re.sub(rf"{runs}/([\w.-]+)/?", lambda m: f"run {m.group(1)}: ", message)
    return message.replace(str(ROOT) + "/", "")


def run_problem(name: str) -> str | None:
    """None if a trained backend loads, else what went wrong and what to do."""
    from lab.checkpoint import CheckpointError

    try:
        backend(name, "cpu")
    except (CheckpointError, ValueError, OSError) as e:
        return f"Your run could not be loaded: {for_browser(str(e))}. Train it again on the Train live page."
    return None


class PageWaits(Exception):
    """Raised by page_waits: the page stops here (an upload or a run to come), the sidebar is still drawn."""


def page_waits() -> NoReturn:
    """End the page here until the user gives what it waits for (it has said what). Unlike st.stop, the sidebar's
    "Export my results" after the page is still drawn (st.stop drops everything drawn after it)."""
    raise PageWaits


def run_page(render, title: str = "") -> None:
    """Draw the sidebar, then the page; an error becomes a message on the page, never a traceback."""
    import logging

    from lab.checkpoint import CheckpointError
    from lab.images import ImageRejected

    st.session_state["settings"] = s = sidebar()
    start_page(title, {"backend": s.backend, "seed": str(s.seed)})
    try:
        render()
    except PageWaits:
        pass
    except (ValueError, ImageRejected, CheckpointError) as e:  # bad input: say what to do, keep the page usable
        st.error(for_browser(str(e)))
    except Exception:  # anything else: a short message here, the traceback in the server log
        logging.getLogger("diffusion_lab").exception("page %s failed", title)
        st.error("Something went wrong on this page; the details are in the server log. Other pages keep working.")
    finally:  # after the page, its rows counted (a page waiting for input ends early, with page_waits)
        with st.sidebar:
            export_button([title for _, title in PART_A + PART_B])


def if_sidebar() -> str | None:
    """Show DeepFloyd IF's settings; None if it loaded, else what is missing and the fix (nothing heavy is loaded twice)."""
    from models.deepfloyd_errors import IFUnavailable
    from models.deepfloyd_settings import if_status

    status = if_status()
    with st.expander("DeepFloyd IF status", expanded=not status.ready):
        for label, value in status.items:
            st.caption(f"**{label}**: {value}")
    if not status.ready:
        return "DeepFloyd IF is not ready: " + " ".join(status.problems)
    try:
        if_backend()
    except IFUnavailable as e:
        return f"DeepFloyd IF could not be loaded: {e}"
    return None


@st.cache_resource(show_spinner="Loading DeepFloyd IF ...")
def if_backend():
    """DeepFloyd IF stage I as a lab Denoiser, loaded once per server from the settings (environment / TOML)."""
    from models.deepfloyd_loading import load_stage1

    return load_stage1()


def settings() -> Settings:
    """The sidebar's choices, for a page."""
    return st.session_state["settings"]


@st.cache_resource(show_spinner="Loading the model ...")
def backend(name: str, device: str):
    """One loaded backend per (name, device), shared by every session of this server (IF: its own settings)."""
    if name.startswith(RUN_PREFIX):
        from lab.checkpoint import load_trained
        from models.bundled import course_backend

        model, train = load_trained(trained_run(name).run_dir)
        return course_backend(model, train, device)
    return if_backend() if name == IF_NAME else load_backend(name, device)


def trained_run(name: str):
    """The job behind a "Your run <id>" backend name."""
    from ui.training import manager

    return manager().get(name.removeprefix(RUN_PREFIX))


def backend_dataset(name: str) -> str | None:
    """The dataset a backend was trained on (None for DeepFloyd IF: photos)."""
    if name == IF_NAME:
        return None
    return trained_run(name).config.dataset if name.startswith(RUN_PREFIX) else BACKENDS[name][1]


def current_backend():
    s = settings()
    return backend(s.backend, s.device)


@st.cache_data(show_spinner=False)
def test_images(name: str, count: int = 16) -> torch.Tensor:
    """Held-out images of the backend's dataset, (count, 1, 28, 28) in [-1, 1], never seen in training; photos for the
    colour backends (IF, emoji)."""
    return first_test_images(name, count)


def first_test_images(name: str, count: int = 16) -> torch.Tensor:
    """test_images, uncached: held-out images of the backend's dataset, photos for the colour backends."""
    dataset = backend_dataset(name)
    if dataset in (None, "emoji"):  # DeepFloyd IF, the emoji backend: photos, as the course's test image
        return photos(backend(name, "cpu").image_shape)[:count]
    return heldout_images(dataset, count)


@functools.lru_cache(maxsize=8)
def heldout_images(dataset: str, count: int = 16) -> torch.Tensor:
    """One held-out image of each class first, then the others: (count, 1, 28, 28) in [-1, 1] (copy before changing)."""
    heldout = load_dataset(dataset, "heldout")
    per_class = [int((heldout.labels == k).nonzero()[0]) for k in range(10)]
    rest = [i for i in range(len(heldout)) if i not in per_class]
    idx = torch.tensor((per_class + rest)[:count])
    return heldout.as_float(-1, 1)[idx]


def photos(shape: tuple[int, int, int]) -> torch.Tensor:
    """scikit-learn's sample photos (a temple in China, a flower), centre-cropped to the backend's shape."""
    from sklearn.datasets import load_sample_images

    from lab.images import fit_image

    return torch.cat([fit_image(Image.fromarray(im), shape)[0] for im in load_sample_images().images])


def pick_test_image(label: str = "Test image") -> torch.Tensor:
    """A held-out image chosen with a slider, (1, C, H, W) in [-1, 1]."""
    s = settings()
    images = test_images(s.backend)
    i = st.slider(label, 0, len(images) - 1, 0, key=f"test_image_{label}")
    return images[i : i + 1]


def enlarge(x: torch.Tensor, size: int) -> list[np.ndarray]:
    """(B, C, H, W) in [-1, 1] -> B uint8 images enlarged to size pixels with nearest neighbour (crisp pixels)."""
    return [crisp(im, size) for im in to_uint8(x, -1, 1)]


def show(images: torch.Tensor, captions: list[str] | None = None, size: int | None = None, name: str | None = None) -> None:
    """A row of images, at the lecture or normal size, with its download (and kept for "Export my results" as name)."""
    frames = list(to_uint8(images, -1, 1))
    size = min(size, LECTURE_WIDTH // len(frames) - 12) if size else settings().row_size(len(frames))
    st.image([crisp_png(im, size) for im in frames], caption=captions, width=size)
    download_row(frames, captions, name)


MAGENTA = torch.tensor([1.0, -1.0, 1.0]).view(1, 3, 1, 1)  # in [-1, 1]: reads on a white page and on grey digits


def rgb(x: torch.Tensor) -> torch.Tensor:
    """(B, 1 or 3, H, W) -> (B, 3, H, W)."""
    return x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x


def mask_overlay(x: torch.Tensor, mask: torch.Tensor, alpha: float = 0.6) -> torch.Tensor:
    """RGB images x with the mask (1, 1, H, W; 1 = masked) painted magenta over them at alpha."""
    return x * (1 - alpha * mask) + alpha * mask * MAGENTA


THUMBNAIL = {"a0_sampling.py": 1, "a7_sdedit.py": 4, "a73_text.py": 2}  # which default request shows a page (else its first)


def show_thumbnails(titles: dict[str, str]) -> None:
    """A picture of each Part A page with its defaults, from the room's results (the warm-up computes them at start;
    this page never computes). While some are missing the section redraws itself every 2 s until they are there."""
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
    """Page file -> the room's cached result that pictures it (None: not computed yet)."""
    from ui.room import default_requests, room

    s = settings()
    requests = default_requests(s.backend, s.device, s.seed, current_backend(), test_images(s.backend)[:1])
    return {page: room().queue.cached(runs[THUMBNAIL.get(page, 0)]) for page, runs in requests.items()}


def draw_thumbnails(results: dict, titles: dict[str, str]) -> None:
    ready = {page: result for page, result in results.items() if result is not None}
    if ready:
        images = torch.cat([result.images[:1] for result in ready.values()])
        st.image([crisp_png(im, 112) for im in to_uint8(images, -1, 1)], caption=[titles.get(p, p) for p in ready], width=112)
    if len(ready) < len(results):
        st.caption("Computing: " + ", ".join(titles.get(p, p) for p in results if p not in ready) + " (they appear here as the "
                   "server makes them; every page computes its own pictures when opened).")  # fmt: skip


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


def frames_row(frames: list[np.ndarray], labels: list[str]) -> None:
    """Several trajectory frames in a row."""
    size = settings().row_size(len(frames))
    st.image([crisp_png(f, size) for f in frames], caption=labels, width=size)
    download_row(frames, labels, "trajectory")


def trajectory_viewer(frames: list[np.ndarray], labels: list[str], key: str) -> None:
    """Play back a denoising trajectory: a step slider, and PNG / GIF downloads (the GIF is made on click)."""
    if not frames:
        return
    size = settings().large
    i = st.slider("Step", 0, len(frames) - 1, len(frames) - 1, key=f"{key}_step")
    frame = crisp_png(frames[i], size)
    st.image(frame, caption=labels[i], width=size)
    c1, c2 = st.columns(2)
    c1.download_button("Download this step (PNG)", frame, f"{key}_step_{i}.png", "image/png", key=f"{key}_png")
    gif = lambda: gif_bytes([crisp(f, size) for f in frames], 80)  # noqa: E731
    c2.download_button("Download the trajectory (GIF)", gif, f"{key}.gif", "image/gif", key=f"{key}_gif")


def prompt_input(label: str, default: str, key: str, allow_null: bool = True) -> str:
    """A prompt: a choice among the bundled backend's classes (and "a high quality photo", no class), or free text."""
    den = current_backend()
    prompts = list(getattr(den, "prompts", ()) or ())
    if not prompts:
        prompt = st.text_input(label, default, key=key)
        if getattr(den, "free_text", False):  # the emoji backend: which name the words were read as
            read_as(den, prompt)
    else:
        options = (["a high quality photo"] if allow_null else []) + prompts
        index = options.index(default) if default in options else 0
        prompt = st.selectbox(label, options, index=index, key=key, help='"a high quality photo" is the null class: no class at all')
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
    from PIL import ImageDraw

    from lab.images import ImageRejected, fit_image, load_image

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
    from streamlit_drawable_canvas import st_canvas

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
