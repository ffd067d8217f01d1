"""The design card's controls, the same on every page that has their idea: timestep t, i_start, CFG scale gamma, blur
kernel size and sigma. Each is labelled with the symbol of the page's equation, stays in lecture mode (they are what a
lecturer moves), and is kept for "Export my results" with the page's other settings."""

from __future__ import annotations

import streamlit as st

import lab
from lab.course import CFG_SCALE, DEFAULT_PROMPT
from lab.fall2026 import COURSE_PAIRS as FLOW_COURSE_PAIRS
from lab.filters import max_kernel_size
from lab.flow import CFG_W, STEP_SIZE
from serving.defaults import default_gamma, flow_w
from ui.results import describe
from ui.state import current_backend

# keys of widgets whose default is the backend's (γ, w, the blur): a new backend resets them
BACKEND_DEFAULTS: set[str] = set()


# Each edition's CFG scale: its symbol, its name in the export, its equation and what its values mean, its opening
# value on a backend (the course's 7, or the backend's own: serving.defaults)
CFG_SCALES = {
    "2024": (
        "γ",
        "gamma",
        "ε = ε_u + γ (ε_c − ε_u): γ = 0 ignores the prompt, 1 is no guidance, larger follows it harder",
        default_gamma,
    ),
    "2026": (
        "w",
        "w",
        "v = v_c + w (v_c − v_u): w = 0 is the conditional velocity (no guidance), larger follows the prompt harder",
        flow_w,
    ),
}


def cfg_slider(edition: str, key: str, default: float | None = None) -> float:
    """The edition's CFG scale (γ or w), opening on the backend's default."""
    symbol, name, help_text, backend_default = CFG_SCALES[edition]
    BACKEND_DEFAULTS.add(key)
    default = backend_default(current_backend()) if default is None else default
    value = st.slider(f"CFG scale {symbol}", 0.0, 15.0, default, 0.5, key=key, help=help_text)
    describe(**{name: value})
    return value


def gamma_slider(key: str, default: float | None = None) -> float:
    """γ, opening on the backend's default (serving.defaults.default_gamma: the course's 7 but where a backend has its own)."""
    return cfg_slider("2024", key, default)


def i_start_slider(key: str, T: int, default: int, stride: int = 30) -> tuple[int, int]:
    """(i_start, t = strided_timesteps[i_start]): where the edit starts; smaller is more noise, more invented."""
    timesteps = lab.strided_timesteps(T, stride)
    i_start = st.slider(
        "i_start",
        0,
        len(timesteps) - 1,
        min(default, len(timesteps) - 1),
        key=key,
        help="the index into the strided timesteps (990, 960, ..., 0) the image is noised to: "
        "0 is pure noise, larger keeps more of the image",
    )
    t = timesteps[i_start]
    describe(i_start=i_start, t=t)
    return i_start, t


def blur_sliders(key: str, H: int, W: int, kernel: int, sigma: float, sigma_max: float = 10.0) -> tuple[int, float]:
    """(kernel size k, sigma) of a Gaussian blur, side by side; k odd, up to what reflect padding allows here."""
    c1, c2 = st.columns(2)
    BACKEND_DEFAULTS.update((f"{key}_kernel", f"{key}_sigma"))  # PixNerd's 512 px opens on σ 16, a digit's 28 px on 0.9
    top = max_kernel_size(H, W)
    kernel = c1.slider(
        "Blur kernel size k",
        1,
        top,
        min(kernel, top),
        step=2,
        key=f"{key}_kernel",
        help=f"odd; at most {top} on {H}x{W} images (reflect padding)",
    )
    sigma = c2.slider(
        "Blur sigma σ",
        0.1,
        sigma_max,
        sigma,
        0.1,
        key=f"{key}_sigma",
        help="the Gaussian's standard deviation, in pixels",
    )
    describe(kernel=kernel, sigma=sigma)
    return kernel, sigma


def equation(latex: str, legend: str) -> None:
    """The course's equation of this page, and which control sets which symbol."""
    st.latex(latex)
    st.caption(legend)


def pair_buttons(kind: str, den, widgets, prefix: str = "") -> None:
    """On a backend that lists pairs of names its illusions work with (den.illusions[kind]: (first, second, judged
    both in how many of 20 seeds)), a button per pair that sets the page's widgets to it: widgets(first, second) ->
    {widget key: value}; the buttons' keys start with prefix (a page's own). The course's prompts stay the page's
    defaults."""
    pairs = den.illusions.get(kind)
    if not pairs:
        return
    st.caption(
        "The course's prompts are beyond this small model: its judge reads them as both in 0 of 20 seeds (its "
        "card). Pairs of its names that work, found by the judge over every pair (tools/search_illusions.py):"
    )
    scale = (
        f"w {CFG_W:g}" if den.prediction == "velocity" else f"γ {CFG_SCALE:g}"
    )  # the scale the buttons set and the judge used
    for col, (i, (first, second, both)) in zip(st.columns(len(pairs)), enumerate(pairs)):
        col.button(
            f"{first} / {second}",
            key=f"{prefix}{kind}_pair_{i}",
            on_click=st.session_state.update,
            args=(widgets(first, second),),
            help=f"judged to read as both in {both} of 20 seeds at {scale}; another seed (sidebar) draws another",
        )


def course_pair_buttons(kind: str, den, widgets, prefix: str = "") -> None:
    """The course notebook's two pairs of an illusion (serving.defaults.FLOW_COURSE_PAIRS), a button each that sets the
    page's widgets (widgets(first, second) -> {key: value}); on a backend of classes, or one that has no name for a
    prompt, what it cannot draw is said instead."""
    pairs = FLOW_COURSE_PAIRS[kind]
    if den.prompts:  # a class backend: its prompt boxes choose classes
        st.caption(
            "The course's pairs (" + "; ".join(f'"{a}" / "{b}"' for a, b in pairs) + ") need a model of free text: "
            "this one draws its classes. Pick a colour backend, or PixNerd, for them."
        )
        return
    cols = st.columns(len(pairs))
    for i, (col, (first, second)) in enumerate(zip(cols, pairs)):
        unread = [p for p in (first, second) if not _reads(den, p)]
        col.button(
            f"the course's: {first.split(' of ')[-1]} / {second.split(' of ')[-1]}",
            key=f"{prefix}{kind}_course_{i}",
            on_click=st.session_state.update,
            args=(widgets(first, second),),
            disabled=bool(unread),
            help=f'"{first}" / "{second}"',
        )
        if unread:
            col.caption("This model has no name for " + " or ".join(f'"{p}"' for p in unread) + ".")


def _reads(den, prompt: str) -> bool:
    try:
        den.name_of(prompt)
    except ValueError:
        return False
    return True


def w_slider(key: str, default: float | None = None) -> float:
    """The Fall 2026 edition's CFG scale w, opening on the backend's default (serving.defaults.flow_w)."""
    return cfg_slider("2026", key, default)


TIMES = tuple(round(k / 100, 2) for k in range(100))  # the times a slider offers: 0.00 .. 0.99


def time_slider(key: str, default: float, label: str = "Time t") -> float:
    """t of the linear flow, in [0, 1): 0 is pure noise, 1 the image."""
    t = st.select_slider(
        label,
        TIMES,
        default,
        key=key,
        format_func=lambda v: f"{v:.2f}",
        help="x_t = (1 − t) ε + t x₁: 0 is pure noise, towards 1 the image",
    )
    describe(t=t)
    return t


def start_slider(key: str, default: float) -> float:
    """The start time t_s of an edit (this edition's i_start): smaller is more noise, more invented."""
    t = st.select_slider(
        "Start time t_s",
        TIMES[1:],
        default,
        key=key,
        format_func=lambda v: f"{v:.2f}",
        help="the time the image is noised to before the Euler steps: near 0 almost pure noise, "
        "larger keeps more of the image",
    )
    describe(t_start=t)
    return t


STEP_SIZES = (0.01, 0.02, 0.05, 0.1, 0.25, 0.5)


def step_size_slider(key: str, default: float = STEP_SIZE) -> float:
    """Euler's step size h: smaller follows the flow more closely (more model calls); larger shows Euler's error."""
    h = st.select_slider(
        "Step size h",
        STEP_SIZES,
        default,
        key=key,
        help="x_{t+h} = x_t + h v: 0.02 is the course's (50 "
        "updates from noise); a large h takes few steps along straight lines, and the picture suffers",
    )
    describe(h=h)
    return h


def null_prompt_note(prompt: str, inert: bool, estimates: str, scale: str) -> None:
    """Say so when guidance cannot act: a class backend given the null prompt (conditional = unconditional)."""
    den = current_backend()
    if (den.prompts or den.names) and prompt == DEFAULT_PROMPT and not inert:
        st.caption(
            f"With the null prompt the conditional and unconditional {estimates} coincide: {scale} changes nothing. "
            f"Pick a {'name' if den.names else 'class'} to guide."
        )
