"""The shell every page runs in: the shared sidebar (the course's edition and its pages, backend, device, seed, lecture
mode; the status of DeepFloyd IF or PixNerd) and ``run_page``, which draws it, then the page, and turns any error into a message on the
page. Home.py routes to the pages."""

from __future__ import annotations

import copy
import logging
from pathlib import Path

import streamlit as st
import torch

from lab.checkpoint import CheckpointError
from lab.images import ImageRejected
from models.bundled import BACKENDS, FLOW_BACKENDS
from models.deepfloyd.settings import if_status
from models.failures import BackendUnavailable
from models.pixnerd.settings import pixnerd_status
from serving.settings import deepfloyd_settings, pixnerd_settings
from ui.catalog import EDITION_OF, EDITIONS, PART_B, TWINS
from ui.controls import BACKEND_DEFAULTS
from ui.display import LECTURE_CSS
from ui.messages import PageWaits, for_browser, plain
from ui.results import export_button, start_page
from ui.state import (
    DEFAULT_SEED,
    IF_NAME,
    PIXNERD_NAME,
    TRAINED_PREFIX,
    Settings,
    backend,
    default_edition,
    if_backend,
    pixnerd_backend,
    singleton,
    trained_backends,
)

log = logging.getLogger("diffusion_lab")
BACKEND_KEY = {"2024": "backend", "2026": "flow_backend"}  # each edition remembers its own backend


def router_pages(root: Path) -> dict:
    """The router's pages in the app at root, address -> st.Page: the Welcome page, both editions' Part A and Part B.
    Streamlit resolves a page's path (realpath, a stat) when one is made, ~2.8 ms of every run for thirty pages: they
    are made once per server, and each run gets its own copies (st.navigation marks the page it runs on them)."""
    return {url: copy.copy(page) for url, page in _made_pages(root.resolve()).items()}


@singleton()
def _made_pages(root: Path) -> dict:
    pages = {"": st.Page(root / "app_pages/home/welcome.py", title="Welcome", icon="🏠", default=True)}
    for folder, entries in [*((e.folder, e.pages) for e in EDITIONS.values()), ("part_b", PART_B)]:
        pages |= {p.url: st.Page(root / "app_pages" / folder / p.file, title=p.title, url_path=p.url) for p in entries}
    return pages


def menu(pages: dict, edition: str) -> None:
    """The sidebar's pages: Welcome, the edition's Part A in its numbering, Part B."""
    st.page_link(pages[""], label="Welcome", icon="🏠")
    e = EDITIONS[edition]
    st.caption(f"**Part A · {e.name}**: {e.method}")
    for p in e.pages:
        st.page_link(pages[p.url], label=p.title)
    st.caption("**Part B**: diffusion and flow matching from scratch")
    for p in PART_B:
        st.page_link(pages[p.url], label=p.title)


def _new_backend() -> None:
    """Another backend: the γ, w and blur sliders open on its defaults again (serving.defaults), not on the last one's."""
    for key in BACKEND_DEFAULTS:
        st.session_state.pop(key, None)


def pick_edition(url: str | None) -> str:
    """The course's edition: a Part A page's own; else this browser's choice, a link's ?edition=, the server's default."""
    if url in EDITION_OF and st.session_state.get("shown_url") != url:  # opening a page of an edition opens the edition
        st.session_state["edition"] = EDITION_OF[url]  # (a link, the menu; not a rerun of the page it is on)
    elif "edition" not in st.session_state:
        st.session_state["edition"] = (
            st.query_params.get("edition") if st.query_params.get("edition") in EDITIONS else default_edition()
        )
    labels = {k: f"{e.name} · {e.method}" for k, e in EDITIONS.items()}
    edition = st.selectbox(
        "Edition",
        list(EDITIONS),
        format_func=labels.get,
        key="edition",
        on_change=_new_backend,
        help="the course's edition Part A follows: its sections, equations and models; ?edition=2026 "
        "in a link opens the lab on it",
    )
    if st.query_params.get("edition") != edition:
        st.query_params["edition"] = edition
    st.session_state["shown_url"] = url
    return edition


def sidebar(pages: dict | None = None, url: str | None = None) -> Settings:
    """The shared sidebar (drawn before the page runs); its choices live in st.session_state. pages: the router's, to
    draw the menu (the tests run a page without it)."""
    with st.sidebar:
        edition = pick_edition(url)
        if pages is not None:
            menu(pages, edition)
        st.header("Lab settings")
        bundled = FLOW_BACKENDS if edition == "2026" else BACKENDS
        course_model = IF_NAME if edition == "2024" else PIXNERD_NAME  # the edition's own model, on a GPU
        options = [*bundled, *(TRAINED_PREFIX + job_id for job_id in trained_backends(edition)), course_model]
        key = BACKEND_KEY[edition]
        if key not in st.session_state and st.query_params.get("backend") in options:  # a link: ?backend=...
            st.session_state[key] = st.query_params["backend"]
        name = st.selectbox(
            "Backend",
            options,
            key=key,
            on_change=_new_backend,
            help="the model every Part A page uses; "
            "Part A backends you train on the Train live page are added when they finish",
        )
        problem = (
            run_problem(name)
            if name.startswith(TRAINED_PREFIX)
            else course_model_sidebar(name)
            if name == course_model
            else None
        )
        if problem is not None:
            st.error(f"{problem} Using {options[0]} meanwhile.")
            name = options[0]
        devices = ["cpu", *(["cuda"] if torch.cuda.is_available() else [])]
        device = st.selectbox("Device", devices, key="device")
        seed = int(st.number_input("Seed", 0, 2**31 - 1, DEFAULT_SEED, key="seed", help="reused by every page"))
        if "lecture" not in st.session_state:  # a lecturer's link: ?lecture=1
            st.session_state["lecture"] = st.query_params.get("lecture") == "1"
        lecture = st.toggle(
            "Lecture mode",
            key="lecture",
            help="for a 1280x720 projector: images as large as fit, rows "
            "that do not wrap, fewer controls; ?lecture=1 in the link opens the lab this way, sidebar closed",
        )
        if lecture != (st.query_params.get("lecture") == "1"):
            st.query_params["lecture"] = "1" if lecture else "0"
    if lecture:
        st.markdown(LECTURE_CSS, unsafe_allow_html=True)
    return Settings(name, device, seed, lecture, edition)


def run_problem(name: str) -> str | None:
    """None if a trained backend loads, else what went wrong and what to do."""
    try:
        backend(name, "cpu")
    except (CheckpointError, ValueError, OSError) as e:
        return f"Your run could not be loaded: {for_browser(str(e))}. Train it again on the Train live page."
    return None


# a course model's sidebar: its settings, its status (files only), its loader
COURSE_MODEL_SIDEBAR = {
    IF_NAME: (deepfloyd_settings, if_status, if_backend),
    PIXNERD_NAME: (pixnerd_settings, pixnerd_status, pixnerd_backend),
}


def course_model_sidebar(name: str) -> str | None:
    """Show a course model's settings (DeepFloyd IF, PixNerd); None if it loaded, else what is missing and the fix
    (nothing heavy is loaded twice)."""
    read_settings, _, load = COURSE_MODEL_SIDEBAR[name]
    try:
        status = cached_status(name, read_settings())
    except BackendUnavailable as e:  # a setting that cannot be read
        return f"{name} is not ready: {e}"
    with st.expander(f"{name} status", expanded=not status.ready):
        for label, value in status.items:
            st.caption(f"**{label}**: {value}")
    if not status.ready:
        return f"{name} is not ready: " + " ".join(status.problems)
    try:
        load()
    except BackendUnavailable as e:
        return f"{name} could not be loaded: {e}"
    return None


@st.cache_resource(ttl=30, show_spinner=False)
def cached_status(name: str, settings):
    """A course model's status, once per server every 30 s (it looks at files and the hub's cache; the sidebar asks on
    every rerun)."""
    return COURSE_MODEL_SIDEBAR[name][1](settings)


def run_page(render, title: str = "", pages: dict | None = None, url: str | None = None) -> None:
    """Draw the sidebar, then the page; an error becomes a message on the page, never a traceback. A Part A page of
    the other edition than the sidebar's (the user just switched) gives way to its twin in the chosen edition."""
    st.session_state["settings"] = s = sidebar(pages, url)
    if pages is not None and url in EDITION_OF and EDITION_OF[url] != s.edition:
        st.switch_page(pages[TWINS[url]])
    start_page(
        export_name(title, url), {"edition": EDITIONS[s.edition].name, "backend": s.backend, "seed": str(s.seed)}
    )
    try:
        render()
    except PageWaits:
        pass
    except (ValueError, ImageRejected, CheckpointError, BackendUnavailable) as e:  # bad input, a course model's failure
        st.error(plain(for_browser(str(e))))  # (out of memory ...): say what to do, keep the page usable
    except Exception:  # anything else: a short message here, the traceback in the server log
        log.exception("page %s failed", title)
        st.error("Something went wrong on this page; the details are in the server log. Other pages keep working.")
    finally:  # after the page, its rows counted (a page waiting for input ends early, with page_waits)
        with st.sidebar:
            export_button(
                [export_name(p.title, p.url) for e in EDITIONS.values() for p in e.pages] + [p.title for p in PART_B]
            )


def export_name(title: str, url: str | None) -> str:
    """A page's name in "Export my results": its title, a Fall 2026 page's with its edition (both have a 1.2, a 1.3 ...)."""
    return f"{EDITIONS['2026'].name} · {title}" if EDITION_OF.get(url) == "2026" else title
