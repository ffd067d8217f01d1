"""The shell every page runs in: the shared sidebar (backend, device, seed, lecture mode; DeepFloyd IF's status) and
``run_page``, which draws it, then the page, and turns any error into a message on the page."""

from __future__ import annotations

import logging

import streamlit as st
import torch

from lab.checkpoint import CheckpointError
from lab.images import ImageRejected
from models.bundled import BACKENDS
from models.deepfloyd.errors import IFUnavailable
from models.deepfloyd.settings import if_status
from serving.settings import deepfloyd_settings
from ui.catalog import PART_A, PART_B
from ui.controls import GAMMA_KEYS
from ui.display import LECTURE_CSS
from ui.messages import PageWaits, for_browser
from ui.results import export_button, start_page
from ui.state import DEFAULT_SEED, IF_NAME, TRAINED_PREFIX, Settings, backend, if_backend, trained_backends

log = logging.getLogger("diffusion_lab")


def _new_backend() -> None:
    """Another backend: the γ sliders open on its default γ again (serving.defaults.default_gamma), not on the last one's."""
    for key in GAMMA_KEYS:
        st.session_state.pop(key, None)


def sidebar() -> Settings:
    """The shared sidebar (drawn before the page runs); its choices live in st.session_state."""
    with st.sidebar:
        st.header("Lab settings")
        options = [*BACKENDS, *(TRAINED_PREFIX + job_id for job_id in trained_backends()), IF_NAME]
        if "backend" not in st.session_state and st.query_params.get("backend") in options:  # a link: ?backend=...
            st.session_state["backend"] = st.query_params["backend"]
        name = st.selectbox("Backend", options, key="backend", on_change=_new_backend, help="the model every Part A "
                            "page uses; Part A backends you train on the Train live page are added when they finish")  # fmt: skip
        problem = run_problem(name) if name.startswith(TRAINED_PREFIX) else if_sidebar() if name == IF_NAME else None
        if problem is not None:
            st.error(f"{problem} Using MNIST digits meanwhile.")
            name = "MNIST digits"
        devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
        device = st.selectbox("Device", devices, key="device")
        seed = int(st.number_input("Seed", 0, 2**31 - 1, DEFAULT_SEED, key="seed", help="reused by every page"))
        if "lecture" not in st.session_state:  # a lecturer's link: ?lecture=1
            st.session_state["lecture"] = st.query_params.get("lecture") == "1"
        lecture = st.toggle("Lecture mode", key="lecture", help="for a 1280x720 projector: images as large as fit, rows "
                            "that do not wrap, fewer controls; ?lecture=1 in the link opens the lab this way, sidebar closed")  # fmt: skip
        if lecture != (st.query_params.get("lecture") == "1"):
            st.query_params["lecture"] = "1" if lecture else "0"
    if lecture:
        st.markdown(LECTURE_CSS, unsafe_allow_html=True)
    return Settings(name, device, seed, lecture)


def run_problem(name: str) -> str | None:
    """None if a trained backend loads, else what went wrong and what to do."""
    try:
        backend(name, "cpu")
    except (CheckpointError, ValueError, OSError) as e:
        return f"Your run could not be loaded: {for_browser(str(e))}. Train it again on the Train live page."
    return None


def if_sidebar() -> str | None:
    """Show DeepFloyd IF's settings; None if it loaded, else what is missing and the fix (nothing heavy is loaded twice)."""
    try:
        status = if_status(deepfloyd_settings())
    except IFUnavailable as e:  # a setting that cannot be read
        return f"DeepFloyd IF is not ready: {e}"
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


def run_page(render, title: str = "") -> None:
    """Draw the sidebar, then the page; an error becomes a message on the page, never a traceback."""
    st.session_state["settings"] = s = sidebar()
    start_page(title, {"backend": s.backend, "seed": str(s.seed)})
    try:
        render()
    except PageWaits:
        pass
    except (ValueError, ImageRejected, CheckpointError) as e:  # bad input: say what to do, keep the page usable
        st.error(for_browser(str(e)))
    except Exception:  # anything else: a short message here, the traceback in the server log
        log.exception("page %s failed", title)
        st.error("Something went wrong on this page; the details are in the server log. Other pages keep working.")
    finally:  # after the page, its rows counted (a page waiting for input ends early, with page_waits)
        with st.sidebar:
            export_button([page.title for page in PART_A + PART_B])
